// replayer: the target side. Owns applying batches of journal records to a replica root.
// Guarantees: every write stays beneath the replica root (invariant 5); re-applying records
// after a crash is harmless (invariant 3); a resolved apply() is durable up to its lastSeq.
// Never: follows a symlink out of the root, or sets understudy's own trusted.understudy.* xattrs.
export {
  Applier, APPLY_BATCH_BYTES_MAX, pathText, type ApplyError, type ApplyResult,
} from './applier.js';
export { ApplierError, type ApplierErrorCode } from './errors.js';
