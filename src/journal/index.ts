// journal: the source's segment files on disk: listing, reading, tailing, torn-tail recovery.
// Guarantees: records come out in seq order, contiguous, CRC-checked, epochs never going down;
// a torn tail is only ever found in the newest segment; damage elsewhere is JournalCorruptError.
// Never: modifies or deletes a segment while reading; only recoverJournal cuts a torn tail,
// and it keeps the cut bytes aside first.
export { JournalCorruptError, JournalSeqGoneError, JournalIoError } from './errors.js';
export { encodeSegmentHeader, decodeSegmentHeader } from './segment-header.js';
export { type SegmentInfo, listSegments, segmentName } from './list-segments.js';
export { SegmentReader, type SegmentStep } from './segment-reader.js';
export {
  JournalReader, type JournalRecord, type JournalBatch, type TornAt, type ReadBatchOptions,
  type JournalReaderOptions, type FollowOptions,
} from './journal-reader.js';
export { recoverJournal, type JournalRecovery, type TornTailCut } from './recover-journal.js';
