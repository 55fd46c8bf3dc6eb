// config: the node configuration file (YAML): schema, load, check, resolve for one node.
// Guarantees: a NodeConfig has every default applied, sizes in bytes, absolute paths, and
// passed every check; every mistake in a file is reported at once, with file:line:col.
// Never: opens sockets, creates directories or reads keys; it only reads the one file.
export { loadConfig, parseConfig, type LoadConfigOptions } from './load-config.js';
export {
  ConfigInvalidError, ConfigValueInvalidError, formatConfigProblem, type ConfigProblem,
} from './errors.js';
export { parseSize, SIZE_EXPECTED } from './parse-size.js';
export { parseHostPort, HOST_PORT_EXPECTED, type HostPort } from './parse-host-port.js';
export { vaultsAsSource, vaultsAsTarget, peerById } from './vault-roles.js';
export { CONFIG_SCHEMA, JOURNAL_BYTES_MIN, JOURNAL_BYTES_MAX_DEFAULT } from './schema.js';
export type {
  NodeConfig, NodeSettings, PeerConfig, VaultConfig, VaultTargetConfig, TargetVaultConfig,
  VaultMode, SyncTimeoutPolicy,
} from './types.js';
