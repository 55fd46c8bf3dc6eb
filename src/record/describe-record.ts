import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { RecordKind, type RecordKindName } from './constants.js';
import { decodePayload, payloadLayout, type Payload } from './payload-codec.js';
import type { RecordHeader } from './record-codec.js';

/** A record to show: its header and its payload, typed or still as bytes. */
export interface RecordView {
  header: RecordHeader;
  payload: Payload | Buffer;
}

/** A JSON value as describeRecord produces it. */
export type DescribedValue = string | number | boolean | { bytes: number; sha256: string };

/** Hex digits of the SHA-256 prefix shown for data. */
const SHA256_PREFIX_HEX = 16;

function typed(record: RecordView): Payload {
  const { payload, header } = record;
  return Buffer.isBuffer(payload) ? decodePayload(header.kind, payload) : payload;
}

/**
 * A plain JSON-able object for `journal dump --json`: bigints as decimal strings, names as
 * UTF-8 when valid (else base64, with `<field>Encoding: 'base64'`), data as length + digest.
 */
export function describeRecord(record: RecordView): Record<string, DescribedValue> {
  const payload = typed(record);
  const { header } = record;
  const out: Record<string, DescribedValue> = {
    seq: header.seq,
    epoch: header.epoch,
    kind: RecordKind[header.kind] as RecordKindName,
    timeNs: header.timeNs.toString(),
    payloadBytes: header.payloadBytes,
  };
  const fields = payload as unknown as Record<string, unknown>;
  for (const [name, type] of payloadLayout(payload.kind)) {
    const value = fields[name];
    if (typeof value === 'bigint') {
      out[name] = value.toString();
    } else if (typeof value === 'number') {
      out[name] = value;
    } else if (Buffer.isBuffer(value) && type === 'data') {
      const digest = createHash('sha256').update(value).digest('hex');
      out[name] = { bytes: value.length, sha256: digest.slice(0, SHA256_PREFIX_HEX) };
    } else if (Buffer.isBuffer(value)) {
      if (isUtf8(value)) {
        out[name] = value.toString('utf8');
      } else {
        out[name] = value.toString('base64');
        out[`${name}Encoding`] = 'base64';
      }
    }
  }
  return out;
}

/** Shows a name so that any byte is visible: plain when tame UTF-8, else quoted with \xNN. */
export function formatName(name: Buffer): string {
  if (name.length === 0) return '""';
  const text = name.toString('utf8');
  if (isUtf8(name) && !/[\s\p{Cc}"\\]/u.test(text)) return text;
  let out = '"';
  for (const byte of name) {
    const plain = byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c;
    out += plain ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return `${out}"`;
}

function octal(mode: number): string {
  return `0${mode.toString(8)}`;
}

function details(p: Payload): string {
  switch (p.kind) {
    case 'CREATE': return `mode=${octal(p.mode)} uid=${p.uid} gid=${p.gid} rdev=${p.rdev}`;
    case 'MKDIR': return `mode=${octal(p.mode)} uid=${p.uid} gid=${p.gid}`;
    case 'SYMLINK': return `-> ${formatName(p.target)}`;
    case 'LINK': return `-> ${formatName(p.newPath)}`;
    case 'UNLINK': case 'RMDIR': return `fid=${p.fid}`;
    case 'RENAME': return `-> ${formatName(p.newPath)} flags=${p.flags}`;
    case 'WRITE': return `offset=${p.offset} bytes=${p.data.length}`;
    case 'TRUNCATE': return `size=${p.size}`;
    case 'CHMOD': return `mode=${octal(p.mode)}`;
    case 'CHOWN': return `uid=${p.uid} gid=${p.gid} mode=${octal(p.mode)}`;
    case 'UTIMENS': return `atimeNs=${p.atimeNs} mtimeNs=${p.mtimeNs}`;
    case 'SETXATTR':
      return `name=${formatName(p.name)} bytes=${p.value.length} flags=${p.flags}`;
    case 'REMOVEXATTR': return `name=${formatName(p.name)}`;
    case 'FALLOCATE':
      return `mode=${p.mode} offset=${p.offset} length=${p.length} sizeAfter=${p.sizeAfter}`;
    case 'SYNC_BEGIN': return `syncId=${p.syncId} flags=${p.flags}`;
    case 'ADOPT':
      return `mode=${octal(p.mode)} uid=${p.uid} gid=${p.gid} size=${p.size}`;
    case 'SYNC_END': return `syncId=${p.syncId} entries=${p.entries} dataBytes=${p.dataBytes}`;
  }
}

/** One human line: `seq=12 epoch=1 WRITE a/b.txt offset=0 bytes=4096`. */
export function formatRecord(record: RecordView): string {
  const payload = typed(record);
  const { header } = record;
  const path = 'path' in payload ? `${formatName(payload.path)} ` : '';
  return `seq=${header.seq} epoch=${header.epoch} ${payload.kind} ${path}${details(payload)}`;
}
