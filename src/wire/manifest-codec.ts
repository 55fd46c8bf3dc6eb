// Decoders and field mapping of the manifest messages (proto/understudy.proto, docs/sync.md).
// Every length is checked against src/wire/limits.ts; paths are checked to be relative and
// free of '.', '..' and empty components, so no peer can name a path outside a tree.
import { WireMalformedError } from './errors.js';
import {
  ERROR_CODE_BYTES_MAX, ERROR_MESSAGE_BYTES_MAX, MANIFEST_BLOCK_HASH_BYTES,
  MANIFEST_BLOCK_HASHES_BYTES_MAX, MANIFEST_CHUNK_ENTRIES_MAX, MANIFEST_ENTRY_XATTRS_MAX,
  MANIFEST_LINK_KEY_BYTES_MAX, MANIFEST_PATH_BYTES_MAX, MANIFEST_REQUEST_PATHS_MAX,
  NODE_ID_BYTES_MAX, VAULT_NAME_BYTES_MAX, XATTR_NAME_BYTES_MAX, XATTR_VALUE_BYTES_MAX,
} from './limits.js';
import { bytesField, identifier, text, uint32, uint64 } from './message-codec.js';
import type {
  ManifestChunkMessage, ManifestEntryMessage, ManifestEntryType, ManifestErrorMessage,
  ManifestRequestMessage,
} from './messages.js';
import type { Seq } from '../core/index.js';

type Fields = Record<string, unknown>;

/** EntryType numbers of proto/understudy.proto. */
export const ENTRY_TYPE_NUMBERS: Record<ManifestEntryType, number> = {
  file: 1, dir: 2, symlink: 3, fifo: 4, socket: 5, chr: 6, blk: 7,
};
const ENTRY_TYPES = Object.keys(ENTRY_TYPE_NUMBERS) as ManifestEntryType[];
const NS_PER_SEC = 1_000_000_000n;
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

function list(fields: Fields, name: string, what: string, max: number): unknown[] {
  const value = fields[name] ?? [];
  if (!Array.isArray(value)) throw new WireMalformedError(`${what}.${name} is not a list`);
  if (value.length > max) {
    throw new WireMalformedError(`${what}.${name} has ${value.length} items, over ${max}`);
  }
  return value;
}

function bool(fields: Fields, name: string, what: string): boolean {
  const value = fields[name] ?? false;
  if (typeof value !== 'boolean') throw new WireMalformedError(`${what}.${name} is not a bool`);
  return value;
}

function limitedBytes(fields: Fields, name: string, what: string, max: number): Buffer {
  const value = bytesField(fields, name, what);
  if (value.length > max) {
    throw new WireMalformedError(`${what}.${name} of ${value.length} bytes is over ${max}`);
  }
  return value;
}

/** Why `path` is not a relative path inside a tree ('' is the root), or null. */
export function manifestPathProblem(path: Buffer): string | null {
  if (path.length === 0) return null;
  if (path.length > MANIFEST_PATH_BYTES_MAX) return `is over ${MANIFEST_PATH_BYTES_MAX} bytes`;
  if (path.includes(0)) return 'holds a NUL byte';
  let start = 0;
  for (;;) {
    const end = path.indexOf(0x2f, start);
    const part = path.subarray(start, end < 0 ? path.length : end);
    if (part.length === 0 || part.equals(DOT) || part.equals(DOTDOT)) {
      return 'has an empty, "." or ".." component';
    }
    if (end < 0) return null;
    start = end + 1;
  }
}

function manifestPath(value: Buffer, what: string): Buffer {
  const problem = manifestPathProblem(value);
  if (problem !== null) throw new WireMalformedError(`${what} ${problem}`);
  return value;
}

/** A signed 64-bit field (a number or a Long) as a bigint. */
export function int64(fields: Fields, name: string, what: string): bigint {
  const value = fields[name] ?? 0;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === 'object' && value !== null && typeof (value as { low?: unknown }).low ===
    'number' && typeof (value as { high?: unknown }).high === 'number') {
    const { low, high } = value as { low: number; high: number };
    return BigInt.asIntN(64, (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0));
  }
  throw new WireMalformedError(`${what}.${name} is not an integer`);
}

/** Decodes the body of a ManifestRequest frame. */
export function decodeManifestRequest(fields: Fields): ManifestRequestMessage {
  const what = 'manifestRequest';
  const paths = list(fields, 'paths', what, MANIFEST_REQUEST_PATHS_MAX).map((value, i) => {
    if (!(value instanceof Uint8Array)) throw new WireMalformedError(`${what}.paths[${i}]`);
    const path = Buffer.from(value.buffer, value.byteOffset, value.length);
    return manifestPath(path, `${what}.paths[${i}]`);
  });
  return {
    type: 'manifestRequest',
    requestId: uint64(fields, 'requestId', what, 1),
    nodeId: identifier(fields, 'nodeId', what, NODE_ID_BYTES_MAX),
    vault: identifier(fields, 'vault', what, VAULT_NAME_BYTES_MAX),
    atSeq: uint64(fields, 'atSeq', what, 0) as Seq,
    withHashes: bool(fields, 'withHashes', what),
    paths,
    waitMsMax: uint32(fields, 'waitMsMax', what, 0),
  };
}

function decodeXattr(fields: Fields, what: string): { name: Buffer; value: Buffer } {
  const name = limitedBytes(fields, 'name', what, XATTR_NAME_BYTES_MAX);
  if (name.length === 0 || name.includes(0)) {
    throw new WireMalformedError(`${what}.name is empty or holds a NUL byte`);
  }
  return { name, value: limitedBytes(fields, 'value', what, XATTR_VALUE_BYTES_MAX) };
}

function decodeEntry(fields: Fields, what: string): ManifestEntryMessage {
  const typeNumber = fields['type'];
  const type = ENTRY_TYPES.find((t) => ENTRY_TYPE_NUMBERS[t] === typeNumber);
  if (type === undefined) throw new WireMalformedError(`${what}.type ${String(typeNumber)}`);
  const mtimeNsec = uint32(fields, 'mtimeNsec', what, 0);
  if (mtimeNsec >= 1e9) throw new WireMalformedError(`${what}.mtimeNsec ${mtimeNsec}`);
  const blockSize = uint32(fields, 'blockSize', what, 0);
  if (blockSize !== 0 && (blockSize < 4096 || (blockSize & (blockSize - 1)) !== 0)) {
    throw new WireMalformedError(`${what}.blockSize ${blockSize} is not a power of two >= 4096`);
  }
  const blockHashes = limitedBytes(fields, 'blockHashes', what, MANIFEST_BLOCK_HASHES_BYTES_MAX);
  if (blockHashes.length % MANIFEST_BLOCK_HASH_BYTES !== 0 ||
    (blockSize === 0 && blockHashes.length > 0)) {
    throw new WireMalformedError(`${what}.blockHashes of ${blockHashes.length} bytes`);
  }
  const linkKey = text(fields, 'linkKey', what, MANIFEST_LINK_KEY_BYTES_MAX);
  return {
    path: manifestPath(bytesField(fields, 'path', what), `${what}.path`),
    type, size: uint64(fields, 'size', what, 0), mode: uint32(fields, 'mode', what, 0) & 0o7777,
    uid: uint32(fields, 'uid', what, 0), gid: uint32(fields, 'gid', what, 0),
    mtimeNs: int64(fields, 'mtimeSec', what) * NS_PER_SEC + BigInt(mtimeNsec),
    rdev: uint64(fields, 'rdev', what, 0),
    target: limitedBytes(fields, 'target', what, MANIFEST_PATH_BYTES_MAX),
    xattrs: list(fields, 'xattrs', what, MANIFEST_ENTRY_XATTRS_MAX)
      .map((x, i) => decodeXattr(x as Fields, `${what}.xattrs[${i}]`)),
    nlink: uint32(fields, 'nlink', what, 0), linkKey, blockSize,
    firstBlock: uint64(fields, 'firstBlock', what, 0), blockHashes,
  };
}

/** Decodes the body of a ManifestChunk frame. */
export function decodeManifestChunk(fields: Fields): ManifestChunkMessage {
  const what = 'manifestChunk';
  return {
    type: 'manifestChunk',
    requestId: uint64(fields, 'requestId', what, 1),
    entries: list(fields, 'entries', what, MANIFEST_CHUNK_ENTRIES_MAX)
      .map((entry, i) => decodeEntry(entry as Fields, `${what}.entries[${i}]`)),
    done: bool(fields, 'done', what),
    atSeq: uint64(fields, 'atSeq', what, 0) as Seq,
    checkpointSeq: uint64(fields, 'checkpointSeq', what, 0) as Seq,
  };
}

/** Decodes the body of a ManifestError frame. */
export function decodeManifestError(fields: Fields): ManifestErrorMessage {
  const what = 'manifestError';
  return {
    type: 'manifestError',
    requestId: uint64(fields, 'requestId', what, 0),
    code: identifier(fields, 'code', what, ERROR_CODE_BYTES_MAX),
    message: text(fields, 'message', what, ERROR_MESSAGE_BYTES_MAX),
  };
}

/** The protobuf fields of a ManifestEntryMessage (enum number, mtime split in sec + nsec). */
export function entryFields(entry: ManifestEntryMessage): Fields {
  const sec = entry.mtimeNs / NS_PER_SEC - (entry.mtimeNs % NS_PER_SEC < 0n ? 1n : 0n);
  const nsec = entry.mtimeNs - sec * NS_PER_SEC;
  return {
    ...entry, type: ENTRY_TYPE_NUMBERS[entry.type], mtimeSec: Number(sec),
    mtimeNsec: Number(nsec), mtimeNs: undefined,
  };
}

/** Bytes an entry takes on the wire, roughly (an upper estimate), for splitting chunks. */
export function encodedEntryBytes(entry: ManifestEntryMessage): number {
  let bytes = 96 + entry.path.length + entry.target.length + entry.linkKey.length +
    entry.blockHashes.length;
  for (const x of entry.xattrs) bytes += 8 + x.name.length + x.value.length;
  return bytes;
}
