// daemon: the composition root: builds a running node from its NodeConfig.
// Guarantees: everything a Node starts (mounts, read-only binds, links, listeners, control
// sockets) is stopped by Node.stop(), also after a failed start.
// Never: imported by another module; decides nothing the modules it wires decide.
export { Node, defaultControlSocket, type NodeOptions } from './node.js';
export type {
  NodeStatus, StatusReply, SourceVaultStatus, TargetVaultStatus, TargetStatus,
} from './status.js';
export type {
  VerifyReport, TargetVerdict, ReportedDifference,
} from './verify-service.js';
