// Decoders of the set-aside messages (proto/understudy.proto, docs/sync.md "Set-aside").
// Paths follow the manifest rules (relative, no '.', '..' or empty component, no NUL), so no
// peer can name a path outside a replica; every list and string is bounded.
import { WireMalformedError } from './errors.js';
import {
  ERROR_MESSAGE_BYTES_MAX, MANIFEST_PATH_BYTES_MAX, NODE_ID_BYTES_MAX, SET_ASIDE_ERRORS_MAX,
  SET_ASIDE_PATHS_MAX, VAULT_NAME_BYTES_MAX,
} from './limits.js';
import { manifestPathProblem } from './manifest-codec.js';
import { identifier, text, uint32, uint64 } from './message-codec.js';
import type { SetAsideReplyMessage, SetAsideRequestMessage } from './messages.js';

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
  const paths = list(fields, 'paths', what, SET_ASIDE_PATHS_MAX).map((value, i) => {
    if (!(value instanceof Uint8Array)) throw new WireMalformedError(`${what}.paths[${i}]`);
    const path = Buffer.from(value.buffer, value.byteOffset, value.length);
    // The root itself is never set aside.
    const problem = path.length === 0 ? 'is empty' : manifestPathProblem(path);
    if (problem !== null) throw new WireMalformedError(`${what}.paths[${i}] ${problem}`);
    return path;
  });
  if (paths.length === 0) throw new WireMalformedError(`${what}.paths is empty`);
  const syncId = text(fields, 'syncId', what, 20);
  if (!/^[0-9]{1,20}$/.test(syncId)) throw new WireMalformedError(`${what}.syncId is no number`);
  const remove = fields['delete'] ?? false;
  if (typeof remove !== 'boolean') throw new WireMalformedError(`${what}.delete is not a bool`);
  return {
    type: 'setAsideRequest',
    requestId: uint64(fields, 'requestId', what, 1),
    nodeId: identifier(fields, 'nodeId', what, NODE_ID_BYTES_MAX),
    vault: identifier(fields, 'vault', what, VAULT_NAME_BYTES_MAX),
    syncId, paths, delete: remove,
  };
}

/** Decodes the body of a SetAsideReply frame. */
export function decodeSetAsideReply(fields: Fields): SetAsideReplyMessage {
  const what = 'setAsideReply';
  return {
    type: 'setAsideReply',
    requestId: uint64(fields, 'requestId', what, 1),
    moved: uint32(fields, 'moved', what, 0),
    deleted: uint32(fields, 'deleted', what, 0),
    folder: text(fields, 'folder', what, MANIFEST_PATH_BYTES_MAX),
    errors: list(fields, 'errors', what, SET_ASIDE_ERRORS_MAX).map((value, i) => {
      if (typeof value !== 'string' || Buffer.byteLength(value) > ERROR_MESSAGE_BYTES_MAX) {
        throw new WireMalformedError(`${what}.errors[${i}] is not a bounded string`);
      }
      return value;
    }),
  };
}
