// record: the journal format v1 in code (docs/journal-format.md): constants, kinds, framing
// with CRC32C, typed payloads, path rules, and how records are shown.
// Guarantees: every length from bytes is checked against its limit before use; decoding never
// allocates more than the record it reads; the same layout as native/record_codec.*.
// Never: does I/O, or asserts on bytes it was given to decode.
export {
  SEGMENT_MAGIC, JOURNAL_FORMAT_VERSION, SEGMENT_HEADER_BYTES, RECORD_MAGIC,
  RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX, RECORD_BYTES_MAX, WRITE_DATA_BYTES_MAX,
  PATH_BYTES_MAX, XATTR_NAME_BYTES_MAX, XATTR_VALUE_BYTES_MAX, SYMLINK_TARGET_BYTES_MAX,
  SEGMENT_BYTES_MAX_DEFAULT, RECORD_KIND_MAX, RENAME_NOREPLACE, RENAME_EXCHANGE,
  XATTR_CREATE, XATTR_REPLACE, SYNC_FLAG_CHECKSUM, SYNC_FLAG_DELETE,
  RecordKind, type RecordKindName, isRecordKind, recordKindName,
} from './constants.js';
export {
  RecordCorruptError, RecordTruncatedError, RecordInvalidError, type RecordFailureStage,
} from './errors.js';
export { validatePath, isValidPath } from './validate-path.js';
export {
  type RecordHeader, type RecordHeaderInit, type DecodedRecord, encodeRecord,
  decodeRecordBytes, decodeRecordHeader, decodeRecord,
} from './record-codec.js';
export {
  type Payload, type CreatePayload, type MkdirPayload, type SymlinkPayload, type LinkPayload,
  type UnlinkPayload, type RmdirPayload, type RenamePayload, type WritePayload,
  type TruncatePayload, type ChmodPayload, type ChownPayload, type UtimensPayload,
  type SetxattrPayload, type RemovexattrPayload, type FallocatePayload, type SyncBeginPayload,
  type AdoptPayload, type SyncEndPayload, encodePayload, decodePayload, payloadLayout,
} from './payload-codec.js';
export {
  type RecordView, type DescribedValue, describeRecord, formatRecord, formatName,
} from './describe-record.js';
