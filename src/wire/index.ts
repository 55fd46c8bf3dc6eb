// wire: framing, the protobuf codec (proto/understudy.proto), limits, keys and TLS links.
// Guarantees: every length is checked before it is buffered; every decoded message is a
// checked domain object; batch records are CRC-checked, contiguous, and never re-encoded;
// a peer is admitted only by the pinned fingerprint of its certificate (mutual TLS 1.3).
// Never: throws out of a socket event (bad bytes close that link with a logged reason),
// decides what a message means for a vault (forwarder, replayer and failover do).
export {
  WireError, WireFrameTooLargeError, WireMalformedError, WirePeerUntrustedError,
  WirePeerRefusedError, WireConnectError, WireLinkClosedError, WireKeyError,
  WireFingerprintInvalidError,
} from './errors.js';
export {
  PROTOCOL_VERSION, FRAME_PREFIX_BYTES, FRAME_BYTES_MAX, SMALL_FRAME_BYTES_MAX,
  NODE_ID_BYTES_MAX, VAULT_NAME_BYTES_MAX, ERROR_CODE_BYTES_MAX, ERROR_MESSAGE_BYTES_MAX,
  HEARTBEAT_VAULTS_MAX, MANIFEST_CHUNK_ENTRIES_MAX, MANIFEST_CHUNK_BYTES_TARGET,
  MANIFEST_PATH_BYTES_MAX, MANIFEST_REQUEST_PATHS_MAX, XATTR_NAME_BYTES_MAX,
  XATTR_VALUE_BYTES_MAX, MANIFEST_ENTRY_XATTRS_MAX, MANIFEST_LINK_KEY_BYTES_MAX,
  MANIFEST_BLOCK_HASHES_BYTES_MAX, MANIFEST_BLOCK_HASH_BYTES, SET_ASIDE_PATHS_MAX,
  SET_ASIDE_ERRORS_MAX,
} from './limits.js';
export type {
  WireMessage, WireMessageType, AdmitMessage, HelloMessage, WelcomeMessage, BatchMessage,
  AckMessage, HeartbeatMessage, VaultPosition, ErrorMessage, Role, Want,
  ManifestRequestMessage, ManifestChunkMessage, ManifestErrorMessage, ManifestEntryMessage,
  ManifestEntryType, SetAsideRequestMessage, SetAsideReplyMessage, SetAsideEntryMessage,
} from './messages.js';
export { encodedEntryBytes } from './manifest-codec.js';
export { encodeFrame, encodeBatchFrame, FrameDecoder } from './frame-codec.js';
export { decodeMessage, identifierProblem } from './message-codec.js';
export { checkBatchRecords, type BatchClaim } from './batch-records.js';
export {
  keygen, certFingerprint, derFingerprint, parseFingerprint, readKeyPair, KEY_FILE, CERT_FILE,
  type KeygenResult, type KeyPair,
} from './keygen.js';
export { Link, stderrLogger, type LinkOptions, type WireLogger } from './link.js';
export {
  listenTls, connectTls, WireServer, type ListenOptions, type ConnectOptions, type TlsIdentity,
  type Security,
} from './tls-transport.js';
