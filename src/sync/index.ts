// sync: manifests of trees, block hashes, their comparison, and the manifest exchange with a
// target (docs/sync.md). Guarantees: scans never follow symlinks and never change a tree;
// understudy's own trusted.understudy.* xattrs are never scanned; diffs are pure.
// Never: loads the addon (xattr reading is injected), writes to a vault or a replica.
export {
  pathText, pathFromText, type EntryType, type Xattr, type ManifestEntry, type Manifest,
} from './manifest.js';
export {
  BLOCK_BYTES_MIN, BLOCK_BYTES_MAX, FILE_BLOCKS_MAX, BLOCK_HASH_BYTES, HASH_READ_BYTES,
  blockSizeFor, blockCount, isValidBlockSize, hashBlock, hashBuffer, blockHashAt, hashFile,
  type HashFileOptions,
} from './block-hashes.js';
export {
  scanTree, scanManifest, OWN_XATTR_PREFIX, type XattrReader, type ScanOptions,
  type BlockHasher,
  type ScanProgress,
} from './scan-tree.js';
export {
  diffManifests, DIFFERENCE_KINDS, type Difference, type DifferenceKind, type DiffOptions,
} from './diff.js';
export {
  requestManifest, type ManifestRequestLink, type ManifestRequestOptions, type ManifestProgress,
} from './manifest-exchange.js';
export { requestSetAside, type SetAsideRequestOptions } from './set-aside-exchange.js';
export { SyncScanError, SyncManifestError } from './errors.js';
export {
  planSync, blockRanges, splitRanges, type SyncPlan, type EmitStep, type TimesStep,
  type PlanOptions,
} from './sync-plan.js';
export {
  runSync, type SyncEmitter, type SyncEmitOutcome, type SetAsideOutcome, type SyncEvent,
  type SyncRunOptions, type SyncSummary,
} from './sync-runner.js';
export {
  SyncService, SyncError, type SyncSource, type SyncServiceOptions, type SyncActivity,
} from './sync-service.js';
export {
  setAsideUnmirrored, type TailRecord, type UnmirroredTail, type SetAsideUnmirroredOptions,
} from './sync-failback.js';
