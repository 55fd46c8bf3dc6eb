// mount: the FUSE capture layer's typed wrapper; the only importer of the .node file.
// Guarantees: a mutation through a Mount is journaled before the application sees it succeed,
// in the order it took effect; failures are MountError with code MOUNT_<ERRNO> and a hint.
// Never: runs JavaScript per file operation (the FUSE threads are native); the onWritten
// wake-up is coalesced and carries only the newest written seq.
export { Mount, clearStaleMount, type MountOptions, type MountStats,
  type SyncPolicy, type SyncEmitRequest, type SyncEmitResult, type SyncEmitStep,
  SYNC_EMIT_MANY_STEPS_MAX } from './mount.js';
export { MountError, MountJournalInsideVaultError, MountGlobInvalidError } from './errors.js';
export { PathFilter } from './path-filter.js';
