import { UnderstudyError } from '../core/index.js';

/** Codes an Applier throws or rejects with. */
export type ApplierErrorCode =
  | 'APPLY_ROOT_OPEN_FAILED' // the replica root cannot be opened
  | 'APPLY_BATCH_TOO_LARGE' // over APPLY_BATCH_BYTES_MAX; nothing applied
  | 'APPLY_NOT_DURABLE' // applied but syncfs failed: do not checkpoint
  | 'APPLY_CLOSED' // apply() after close()
  | 'APPLY_FAILED'; // anything else the addon reported

/** A whole batch (not one record) could not be applied or made durable. */
export class ApplierError extends UnderstudyError {
  constructor(
    readonly code: ApplierErrorCode,
    message: string,
    hint: string,
    /** The errno name behind it ("EIO"), when there is one. */
    readonly errno?: string,
    options?: { cause?: unknown },
  ) {
    super(message, hint, options);
  }
}
