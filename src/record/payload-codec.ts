import type { Fid } from '../core/index.js';
import {
  PATH_BYTES_MAX, RECORD_PAYLOAD_BYTES_MAX, RecordKind, SYMLINK_TARGET_BYTES_MAX,
  WRITE_DATA_BYTES_MAX, XATTR_NAME_BYTES_MAX, XATTR_VALUE_BYTES_MAX, type RecordKindName,
} from './constants.js';
import { RecordCorruptError, RecordInvalidError } from './errors.js';
import { validatePath } from './validate-path.js';

/** A file in the vault was created (create, open with O_CREAT, mknod). */
export interface CreatePayload {
  kind: 'CREATE'; fid: Fid; mode: number; uid: number; gid: number; rdev: bigint;
  mtimeNs: bigint; parentMtimeNs: bigint; path: Buffer;
}
/** A directory was created. */
export interface MkdirPayload {
  kind: 'MKDIR'; fid: Fid; mode: number; uid: number; gid: number;
  mtimeNs: bigint; parentMtimeNs: bigint; path: Buffer;
}
/** A symlink was created at `path` pointing to `target`. */
export interface SymlinkPayload {
  kind: 'SYMLINK'; fid: Fid; uid: number; gid: number; mtimeNs: bigint;
  parentMtimeNs: bigint; path: Buffer; target: Buffer;
}
/** A hard link `newPath` was made to the existing `path`. */
export interface LinkPayload {
  kind: 'LINK'; fid: Fid; newParentMtimeNs: bigint; path: Buffer; newPath: Buffer;
}
/** A name was removed. */
export interface UnlinkPayload { kind: 'UNLINK'; fid: Fid; parentMtimeNs: bigint; path: Buffer }
/** A directory was removed. */
export interface RmdirPayload { kind: 'RMDIR'; fid: Fid; parentMtimeNs: bigint; path: Buffer }
/** `path` was renamed to `newPath`; `replacedFid` is 0n when nothing was at the destination. */
export interface RenamePayload {
  kind: 'RENAME'; fid: Fid; replacedFid: Fid; flags: number; oldParentMtimeNs: bigint;
  newParentMtimeNs: bigint; path: Buffer; newPath: Buffer;
}
/** `data` landed at `offset` of the file. */
export interface WritePayload {
  kind: 'WRITE'; fid: Fid; offset: bigint; mtimeNs: bigint; path: Buffer; data: Buffer;
}
/** The file's size was set. */
export interface TruncatePayload {
  kind: 'TRUNCATE'; fid: Fid; size: bigint; mtimeNs: bigint; path: Buffer;
}
/** Permission bits changed. */
export interface ChmodPayload { kind: 'CHMOD'; fid: Fid; mode: number; path: Buffer }
/** Owner changed; `mode` is the mode after (setuid/setgid may have been cleared). */
export interface ChownPayload {
  kind: 'CHOWN'; fid: Fid; uid: number; gid: number; mode: number; path: Buffer;
}
/** Access and modification times were set. */
export interface UtimensPayload {
  kind: 'UTIMENS'; fid: Fid; atimeNs: bigint; mtimeNs: bigint; path: Buffer;
}
/** An extended attribute was set. */
export interface SetxattrPayload {
  kind: 'SETXATTR'; fid: Fid; flags: number; path: Buffer; name: Buffer; value: Buffer;
}
/** An extended attribute was removed. */
export interface RemovexattrPayload { kind: 'REMOVEXATTR'; fid: Fid; path: Buffer; name: Buffer }
/** Space was allocated or punched; `sizeAfter` is the file size that resulted. */
export interface FallocatePayload {
  kind: 'FALLOCATE'; fid: Fid; mode: number; offset: bigint; length: bigint;
  sizeAfter: bigint; mtimeNs: bigint; path: Buffer;
}

/** A sync of `path` ("" = the whole vault) starts; flags are SYNC_FLAG_*. */
export interface SyncBeginPayload {
  kind: 'SYNC_BEGIN'; syncId: bigint; flags: number; path: Buffer;
}
/** The object at `path` becomes the source's `fid` with these attributes, content kept. */
export interface AdoptPayload {
  kind: 'ADOPT'; fid: Fid; mode: number; uid: number; gid: number; size: bigint;
  mtimeNs: bigint; path: Buffer;
}
/** The sync `syncId` ended after emitting `entries` objects and `dataBytes` of data. */
export interface SyncEndPayload {
  kind: 'SYNC_END'; syncId: bigint; entries: bigint; dataBytes: bigint;
}

/** The typed payload of any record; `kind` is the discriminant. */
export type Payload =
  | CreatePayload | MkdirPayload | SymlinkPayload | LinkPayload | UnlinkPayload
  | RmdirPayload | RenamePayload | WritePayload | TruncatePayload | ChmodPayload
  | ChownPayload | UtimensPayload | SetxattrPayload | RemovexattrPayload | FallocatePayload
  | SyncBeginPayload | AdoptPayload | SyncEndPayload;

type FieldType = 'fid' | 'u32' | 'u64' | 'ns' | 'path' | 'bytes' | 'data';
type Field = readonly [name: string, type: FieldType, bytesMax?: number];

/** Field order per kind, exactly as the table in docs/journal-format.md. */
const LAYOUTS: { readonly [K in RecordKindName]: readonly Field[] } = {
  CREATE: [['fid', 'fid'], ['mode', 'u32'], ['uid', 'u32'], ['gid', 'u32'], ['rdev', 'u64'],
    ['mtimeNs', 'ns'], ['parentMtimeNs', 'ns'], ['path', 'path']],
  MKDIR: [['fid', 'fid'], ['mode', 'u32'], ['uid', 'u32'], ['gid', 'u32'],
    ['mtimeNs', 'ns'], ['parentMtimeNs', 'ns'], ['path', 'path']],
  SYMLINK: [['fid', 'fid'], ['uid', 'u32'], ['gid', 'u32'], ['mtimeNs', 'ns'],
    ['parentMtimeNs', 'ns'], ['path', 'path'], ['target', 'bytes', SYMLINK_TARGET_BYTES_MAX]],
  LINK: [['fid', 'fid'], ['newParentMtimeNs', 'ns'], ['path', 'path'], ['newPath', 'path']],
  UNLINK: [['fid', 'fid'], ['parentMtimeNs', 'ns'], ['path', 'path']],
  RMDIR: [['fid', 'fid'], ['parentMtimeNs', 'ns'], ['path', 'path']],
  RENAME: [['fid', 'fid'], ['replacedFid', 'fid'], ['flags', 'u32'],
    ['oldParentMtimeNs', 'ns'], ['newParentMtimeNs', 'ns'], ['path', 'path'],
    ['newPath', 'path']],
  WRITE: [['fid', 'fid'], ['offset', 'u64'], ['mtimeNs', 'ns'], ['path', 'path'],
    ['data', 'data', WRITE_DATA_BYTES_MAX]],
  TRUNCATE: [['fid', 'fid'], ['size', 'u64'], ['mtimeNs', 'ns'], ['path', 'path']],
  CHMOD: [['fid', 'fid'], ['mode', 'u32'], ['path', 'path']],
  CHOWN: [['fid', 'fid'], ['uid', 'u32'], ['gid', 'u32'], ['mode', 'u32'], ['path', 'path']],
  UTIMENS: [['fid', 'fid'], ['atimeNs', 'ns'], ['mtimeNs', 'ns'], ['path', 'path']],
  SETXATTR: [['fid', 'fid'], ['flags', 'u32'], ['path', 'path'],
    ['name', 'bytes', XATTR_NAME_BYTES_MAX], ['value', 'bytes', XATTR_VALUE_BYTES_MAX]],
  REMOVEXATTR: [['fid', 'fid'], ['path', 'path'], ['name', 'bytes', XATTR_NAME_BYTES_MAX]],
  FALLOCATE: [['fid', 'fid'], ['mode', 'u32'], ['offset', 'u64'], ['length', 'u64'],
    ['sizeAfter', 'u64'], ['mtimeNs', 'ns'], ['path', 'path']],
  SYNC_BEGIN: [['syncId', 'u64'], ['flags', 'u32'], ['path', 'path']],
  ADOPT: [['fid', 'fid'], ['mode', 'u32'], ['uid', 'u32'], ['gid', 'u32'], ['size', 'u64'],
    ['mtimeNs', 'ns'], ['path', 'path']],
  SYNC_END: [['syncId', 'u64'], ['entries', 'u64'], ['dataBytes', 'u64']],
};

/** Kinds that act on an object's attributes and so may name the vault root (empty path). */
const ROOT_KINDS: ReadonlySet<RecordKindName> =
  new Set(['CHMOD', 'CHOWN', 'UTIMENS', 'SETXATTR', 'REMOVEXATTR', 'SYNC_BEGIN']);

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const CREATE_TYPES: ReadonlySet<number> =
  new Set([0o100000, 0o010000, 0o140000, 0o020000, 0o060000]);
const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

/** The field order of a kind (for describe and tests). */
export function payloadLayout(kind: RecordKindName): readonly Field[] {
  return LAYOUTS[kind];
}

/** Why a decoded or to-be-encoded payload breaks a rule beyond its layout, or null. */
function checkPayloadRules(kind: RecordKindName, fields: Record<string, unknown>): string | null {
  for (const [name, type] of LAYOUTS[kind]) {
    if (type !== 'path') continue;
    const path = fields[name] as Buffer;
    const problem = validatePath(path);
    if (problem !== null) return `${name}: ${problem}`;
    if (path.length === 0 && !(name === 'path' && ROOT_KINDS.has(kind))) {
      return `${name}: a ${kind} record cannot name the vault root`;
    }
  }
  const mode = fields['mode'] as number;
  if (kind === 'CREATE' && !CREATE_TYPES.has(mode & S_IFMT)) {
    return `CREATE mode 0${mode.toString(8)} is not a regular file, fifo, socket or device`;
  }
  if (kind === 'MKDIR' && (mode & S_IFMT) !== S_IFDIR) {
    return `MKDIR mode 0${mode.toString(8)} is not a directory`;
  }
  if (kind === 'ADOPT' && (mode & S_IFMT) !== S_IFREG && (mode & S_IFMT) !== S_IFDIR) {
    return `ADOPT mode 0${mode.toString(8)} is not a regular file or a directory`;
  }
  const flags = fields['flags'] as number;
  if ((kind === 'RENAME' || kind === 'SETXATTR') && flags > 2) {
    return `${kind} flags ${flags} are not 0, 1 or 2`;
  }
  if (kind === 'SYNC_BEGIN' && flags > 3) return `SYNC_BEGIN flags ${flags} are not 0 to 3`;
  return null;
}

/** Encodes a typed payload into its on-disk bytes; RecordInvalidError on a broken limit. */
export function encodePayload(payload: Payload): Buffer {
  const fields = payload as unknown as Record<string, unknown>;
  const layout = LAYOUTS[payload.kind];
  const parts: Buffer[] = [];
  for (const [name, type, bytesMax] of layout) {
    parts.push(encodeField(name, type, bytesMax, fields[name]));
  }
  const problem = checkPayloadRules(payload.kind, fields);
  if (problem !== null) throw new RecordInvalidError(problem);
  const out = Buffer.concat(parts);
  if (out.length > RECORD_PAYLOAD_BYTES_MAX) {
    throw new RecordInvalidError(`payload of ${out.length} bytes is over the limit`);
  }
  return out;
}

function encodeField(name: string, type: FieldType, bytesMax: number | undefined,
  value: unknown): Buffer {
  if (type === 'u32') {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 ||
      value > 0xffffffff) throw new RecordInvalidError(`${name} is not a u32`);
    const out = Buffer.alloc(4);
    out.writeUInt32LE(value);
    return out;
  }
  if (type === 'fid' || type === 'u64' || type === 'ns') {
    const [low, high] = type === 'ns' ? [I64_MIN, I64_MAX] : [0n, U64_MAX];
    if (typeof value !== 'bigint' || value < low || value > high) {
      throw new RecordInvalidError(`${name} is not ${type === 'ns' ? 'an i64' : 'a u64'}`);
    }
    const out = Buffer.alloc(8);
    if (type === 'ns') out.writeBigInt64LE(value); else out.writeBigUInt64LE(value);
    return out;
  }
  if (!Buffer.isBuffer(value)) throw new RecordInvalidError(`${name} is not a Buffer`);
  const max = type === 'path' ? PATH_BYTES_MAX : (bytesMax ?? 0);
  if (value.length > max) {
    throw new RecordInvalidError(`${name} of ${value.length} bytes is over the limit ${max}`);
  }
  if (type === 'data') return value;
  const length = Buffer.alloc(4);
  length.writeUInt32LE(value.length);
  return Buffer.concat([length, value]);
}

/**
 * Decodes a payload of `kind` into its typed form; Buffers in it are views into `bytes`.
 * Throws RecordCorruptError (naming `recordOffset`) when the bytes break the layout or rules.
 */
export function decodePayload(kind: RecordKind, bytes: Buffer, recordOffset = 0): Payload {
  const name = RecordKind[kind] as RecordKindName | undefined;
  if (name === undefined) throw new RecordCorruptError(recordOffset, `unknown kind ${kind}`);
  const fields: Record<string, unknown> = { kind: name };
  let at = 0;
  const fail = (reason: string): never => {
    throw new RecordCorruptError(recordOffset, `${name} payload: ${reason}`);
  };
  for (const [field, type, bytesMax] of LAYOUTS[name]) {
    const left = bytes.length - at;
    if (type === 'u32') {
      if (left < 4) fail(`${field} runs past the payload`);
      fields[field] = bytes.readUInt32LE(at);
      at += 4;
    } else if (type === 'fid' || type === 'u64' || type === 'ns') {
      if (left < 8) fail(`${field} runs past the payload`);
      fields[field] = type === 'ns' ? bytes.readBigInt64LE(at) : bytes.readBigUInt64LE(at);
      at += 8;
    } else if (type === 'data') {
      if (left > (bytesMax ?? 0)) fail(`${field} of ${left} bytes is over the limit`);
      fields[field] = bytes.subarray(at);
      at = bytes.length;
    } else {
      if (left < 4) fail(`${field} length runs past the payload`);
      const length = bytes.readUInt32LE(at);
      const max = type === 'path' ? PATH_BYTES_MAX : (bytesMax ?? 0);
      if (length > max) fail(`${field} of ${length} bytes is over the limit ${max}`);
      if (left - 4 < length) fail(`${field} of ${length} bytes runs past the payload`);
      fields[field] = bytes.subarray(at + 4, at + 4 + length);
      at += 4 + length;
    }
  }
  if (at !== bytes.length) fail(`${bytes.length - at} trailing bytes`);
  const problem = checkPayloadRules(name, fields);
  if (problem !== null) fail(problem);
  return fields as unknown as Payload;
}
