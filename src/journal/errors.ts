import { UnderstudyError } from '../core/index.js';

/** A segment file breaks the format at `offset`; nothing in it was changed. */
export class JournalCorruptError extends UnderstudyError {
  readonly code = 'JOURNAL_CORRUPT';
  constructor(readonly segment: string, readonly offset: number, reason: string,
    options?: { cause?: unknown }) {
    super(`journal segment ${segment} is corrupt at byte ${offset}: ${reason}`,
      'earlier records are intact; segment kept aside; run `understudy verify`', options);
  }
}

/** The seq asked for was already removed from the journal by retention. */
export class JournalSeqGoneError extends UnderstudyError {
  readonly code = 'JOURNAL_SEQ_GONE';
  constructor(readonly dir: string, readonly seq: number, readonly firstSeq: number) {
    super(`journal ${dir} no longer holds seq ${seq}: it starts at seq ${firstSeq}`,
      'the target fell behind retention; resynchronise it with `understudy sync`');
  }
}

/** The journal directory or a segment could not be read or written. */
export class JournalIoError extends UnderstudyError {
  readonly code = 'JOURNAL_IO';
  constructor(readonly path: string, action: string, cause: unknown) {
    super(`cannot ${action} ${path}: ${(cause as Error)?.message ?? String(cause)}`,
      'check the state directory exists, is readable and the disk is healthy', { cause });
  }
}
