// control: the local control socket between the daemon and the `understudy` CLI.
// Guarantees: root only (socket mode 0600); one JSON request per connection, answered by
// progress events and one result or error, all JSON lines.
// Never: decides anything itself; handlers are registered by the daemon.
export { ControlServer, type ControlHandler } from './control-server.js';
export { request, findControlSockets } from './control-client.js';
export { ControlUnavailableError, ControlRequestError } from './errors.js';
export { CONTROL_SOCKET_DIR, type ControlRequest, type ControlReply } from './protocol.js';
