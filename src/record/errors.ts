import { UnderstudyError } from '../core/index.js';

/**
 * Stage at which a record failed: `frame` (magic, length, CRC: could be a write still in
 * flight or torn by a crash) or `content` (a complete, CRC-valid record that is wrong).
 */
export type RecordFailureStage = 'frame' | 'content';

/** A record's bytes are damaged or break a rule of the format. */
export class RecordCorruptError extends UnderstudyError {
  readonly code = 'RECORD_CORRUPT';
  constructor(readonly offset: number, readonly reason: string,
    readonly stage: RecordFailureStage = 'content') {
    super(`record at byte ${offset} is corrupt: ${reason}`,
      'the journal or batch holding it is damaged; run `understudy journal dump` to see where');
  }
}

/** Fewer bytes are available than the record at `offset` needs. */
export class RecordTruncatedError extends UnderstudyError {
  readonly code = 'RECORD_TRUNCATED';
  constructor(readonly offset: number, readonly bytesNeeded: number,
    readonly bytesAvailable: number) {
    super(`record at byte ${offset} needs ${bytesNeeded} bytes, only ${bytesAvailable} present`,
      'the record is still being written or was torn by a crash; read again later');
  }
}

/** A value handed to the encoder breaks a limit or rule of the format. */
export class RecordInvalidError extends UnderstudyError {
  readonly code = 'RECORD_INVALID';
  constructor(reason: string) {
    super(`record cannot be encoded: ${reason}`,
      'split large writes, and check paths are relative to the vault root');
  }
}
