// Decoders of the set-aside messages (proto/understudy.proto, docs/sync.md "Set-aside").
// Paths follow the manifest rules (relative, no '.', '..' or empty component, no NUL), so no
// peer can name a path outside a replica; every list and string is bounded.
import { WireMalformedError } from './errors.js';
import {
  ERROR_MESSAGE_BYTES_MAX, MANIFEST_PATH_BYTES_MAX, NODE_ID_BYTES_MAX, SET_ASIDE_ERRORS_MAX,
  SET_ASIDE_PATHS_MAX, VAULT_NAME_BYTES_MAX,
} from './limits.js';
import { ENTRY_TYPE_NUMBERS, int64, manifestPathProblem } from './manifest-codec.js';
import { bytesField, identifier, text, uint32, uint64 } from './message-codec.js';
import type {
  ManifestEntryType, SetAsideEntryMessage, SetAsideReplyMessage, SetAsideRequestMessage,
} from './messages.js';

type Fields = Record<string, unknown>;

function list(fields: Fields, name: string, what: string, max: number): unknown[] {
  const value = fields[name] ?? [];
  if (!Array.isArray(value)) throw new WireMalformedError(`${what}.${name} is not a list`);
  if (value.length > max) {
    throw new WireMalformedError(`${what}.${name} has ${value.length} items, over ${max}`);
  }
  return value;
}

/** Decodes the body of a SetAsideRequest frame. */
export function decodeSetAsideRequest(fields: Fields): SetAsideRequestMessage {
  const what = 'setAsideRequest';
  const entries = list(fields, 'entries', what, SET_ASIDE_PATHS_MAX)
    .map((value, i) => decodeEntry(value as Fields, `${what}.entries[${i}]`));
  if (entries.length === 0) throw new WireMalformedError(`${what}.entries is empty`);
  const syncId = text(fields, 'syncId', what, 20);
  if (!/^[0-9]{1,20}$/.test(syncId)) throw new WireMalformedError(`${what}.syncId is no number`);
  const remove = fields['delete'] ?? false;
  if (typeof remove !== 'boolean') throw new WireMalformedError(`${what}.delete is not a bool`);
  return {
    type: 'setAsideRequest',
    requestId: uint64(fields, 'requestId', what, 1),
    nodeId: identifier(fields, 'nodeId', what, NODE_ID_BYTES_MAX),
    vault: identifier(fields, 'vault', what, VAULT_NAME_BYTES_MAX),
    syncId, entries, delete: remove,
  };
}

const NS_PER_SEC = 1_000_000_000n;

function decodeEntry(fields: Fields, what: string): SetAsideEntryMessage {
  const path = bytesField(fields, 'path', what);
  // The root itself is never set aside.
  const problem = path.length === 0 ? 'is empty' : manifestPathProblem(path);
  if (problem !== null) throw new WireMalformedError(`${what}.path ${problem}`);
  const type = (Object.keys(ENTRY_TYPE_NUMBERS) as ManifestEntryType[])
    .find((t) => ENTRY_TYPE_NUMBERS[t] === fields['type']);
  if (type === undefined) throw new WireMalformedError(`${what}.type ${String(fields['type'])}`);
  const nsec = uint32(fields, 'mtimeNsec', what, 0);
  if (nsec >= 1e9) throw new WireMalformedError(`${what}.mtimeNsec ${nsec}`);
  return { path, type, size: uint64(fields, 'size', what, 0),
    mtimeNs: int64(fields, 'mtimeSec', what) * NS_PER_SEC + BigInt(nsec) };
}

/** The protobuf fields of a SetAsideRequest (types as numbers, mtime as sec + nsec). */
export function setAsideRequestFields(message: SetAsideRequestMessage): Fields {
  return { ...message, entries: message.entries.map((e) => {
    const sec = e.mtimeNs / NS_PER_SEC - (e.mtimeNs % NS_PER_SEC < 0n ? 1n : 0n);
    return { path: e.path, type: ENTRY_TYPE_NUMBERS[e.type], size: e.size,
      mtimeSec: Number(sec), mtimeNsec: Number(e.mtimeNs - sec * NS_PER_SEC) };
  }) };
}

/** Decodes the body of a SetAsideReply frame. */
export function decodeSetAsideReply(fields: Fields): SetAsideReplyMessage {
  const what = 'setAsideReply';
  return {
    type: 'setAsideReply',
    requestId: uint64(fields, 'requestId', what, 1),
    moved: uint32(fields, 'moved', what, 0),
    deleted: uint32(fields, 'deleted', what, 0),
    changed: uint32(fields, 'changed', what, 0),
    folder: text(fields, 'folder', what, MANIFEST_PATH_BYTES_MAX),
    errors: list(fields, 'errors', what, SET_ASIDE_ERRORS_MAX).map((value, i) => {
      if (typeof value !== 'string' || Buffer.byteLength(value) > ERROR_MESSAGE_BYTES_MAX) {
        throw new WireMalformedError(`${what}.errors[${i}] is not a bounded string`);
      }
      return value;
    }),
  };
}
