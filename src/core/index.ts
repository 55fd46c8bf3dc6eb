// core: the vocabulary (Seq, Epoch, Fid), UnderstudyError and assert.
// Guarantees: no I/O, no dependencies beyond Node built-ins.
// Never: imports another understudy module.
export { UnderstudyError, AssertionFailedError, UsageError, assert } from './errors.js';
export { type Seq, type Epoch, type Fid, toSeq, toEpoch } from './types.js';
