/** Layout: docs/journal-format.md; mirrored in native/record_codec.h. */
export const SEGMENT_MAGIC: Buffer = Buffer.from('USJRNL01', 'ascii');
/** The only journal format version this reader understands. */
export const JOURNAL_FORMAT_VERSION = 1;
/** Bytes of the header at the start of every segment file. */
export const SEGMENT_HEADER_BYTES = 32;
/** First four bytes of every record: "USR1" as a little-endian u32. */
export const RECORD_MAGIC = 0x31525355;
/** Bytes of the fixed record header that precedes each payload. */
export const RECORD_HEADER_BYTES = 40;
/** Largest payload a record may carry (2 MiB). */
export const RECORD_PAYLOAD_BYTES_MAX = 2 << 20;
/** Largest framed record: header plus the largest payload. */
export const RECORD_BYTES_MAX = RECORD_HEADER_BYTES + RECORD_PAYLOAD_BYTES_MAX;
/** Largest data a single WRITE record carries (1 MiB). */
export const WRITE_DATA_BYTES_MAX = 1 << 20;
/** Largest path, in bytes, relative to the vault root. */
export const PATH_BYTES_MAX = 4096;
/** Largest extended attribute name. */
export const XATTR_NAME_BYTES_MAX = 255;
/** Largest extended attribute value. */
export const XATTR_VALUE_BYTES_MAX = 65536;
/** Largest symlink target. */
export const SYMLINK_TARGET_BYTES_MAX = 4095;
/** Default size at which the writer starts a new segment (64 MiB). */
export const SEGMENT_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;

/** Record kinds, numbered as in docs/journal-format.md. */
export enum RecordKind {
  CREATE = 1,
  MKDIR = 2,
  SYMLINK = 3,
  LINK = 4,
  UNLINK = 5,
  RMDIR = 6,
  RENAME = 7,
  WRITE = 8,
  TRUNCATE = 9,
  CHMOD = 10,
  CHOWN = 11,
  UTIMENS = 12,
  SETXATTR = 13,
  REMOVEXATTR = 14,
  FALLOCATE = 15,
  SYNC_BEGIN = 16,
  ADOPT = 17,
  SYNC_END = 18,
}
/** Highest kind a version 1 reader accepts. */
export const RECORD_KIND_MAX = 18;
/** SYNC_BEGIN flag: the sync compared every file by block checksums (`--checksum`). */
export const SYNC_FLAG_CHECKSUM = 1;
/** SYNC_BEGIN flag: objects only on the target are removed, not set aside (`--delete`). */
export const SYNC_FLAG_DELETE = 2;

/** The name of a record kind ("WRITE"). */
export type RecordKindName = keyof typeof RecordKind;

/** True when `kind` is a kind this version understands. */
export function isRecordKind(kind: number): kind is RecordKind {
  return Number.isInteger(kind) && kind >= 1 && kind <= RECORD_KIND_MAX;
}

/** The name of a kind for messages ("WRITE"), or "UNKNOWN". */
export function recordKindName(kind: number): RecordKindName | 'UNKNOWN' {
  return isRecordKind(kind) ? (RecordKind[kind] as RecordKindName) : 'UNKNOWN';
}

/** RENAME flags. */
export const RENAME_NOREPLACE = 1;
/** RENAME flag: the two names swap objects. */
export const RENAME_EXCHANGE = 2;
/** SETXATTR flag: fail if the attribute exists. */
export const XATTR_CREATE = 1;
/** SETXATTR flag: fail if the attribute is missing. */
export const XATTR_REPLACE = 2;
