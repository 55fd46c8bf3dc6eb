import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { assert, type Epoch, type Seq } from '../core/index.js';
import { checkBatchRecords } from './batch-records.js';
import {
  decodeManifestChunk, decodeManifestError, decodeManifestRequest, entryFields,
} from './manifest-codec.js';
import {
  decodeSetAsideReply, decodeSetAsideRequest, setAsideRequestFields,
} from './set-aside-codec.js';
import { WireMalformedError } from './errors.js';
import {
  EPOCH_MAX, ERROR_CODE_BYTES_MAX, ERROR_MESSAGE_BYTES_MAX, HEARTBEAT_VAULTS_MAX,
  NODE_ID_BYTES_MAX, VAULT_NAME_BYTES_MAX,
} from './limits.js';
import type {
  AckMessage, AdmitMessage, BatchMessage, ErrorMessage, HeartbeatMessage, HelloMessage, Role,
  VaultPosition, Want, WelcomeMessage, WireMessage,
} from './messages.js';

/** proto/ sits two levels above both src/wire/ and dist/wire/. */
const PROTO_PATH = fileURLToPath(new URL('../../proto/understudy.proto', import.meta.url));
const protoRoot = protobuf.loadSync(PROTO_PATH);
const frameType = protoRoot.lookupType('understudy.v1.Frame');
const batchType = protoRoot.lookupType('understudy.v1.Batch');

type Fields = Record<string, unknown>;

const ROLE_NUMBERS: Record<Role, number> = { source: 1, target: 2 };
const WANT_NUMBERS: Record<Want, number> = { forward: 1, receive: 2 };
const UINT64_SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** Why `value` cannot be a node id or vault name (1..bytesMax UTF-8 bytes, printable). */
export function identifierProblem(value: string, bytesMax: number): string | null {
  if (value.length === 0) return 'is empty';
  if (Buffer.byteLength(value, 'utf8') > bytesMax) return `is over ${bytesMax} bytes`;
  // Control characters would forge log lines; U+FFFD is what invalid UTF-8 decodes to.
  if (/[\u0000-\u001f\u007f\ufffd]/u.test(value)) return 'holds a control or invalid character';
  return null;
}

/** Shared with manifest-codec.ts. */
export function identifier(fields: Fields, name: string, what: string, bytesMax: number): string {
  const value = fields[name];
  if (typeof value !== 'string') throw new WireMalformedError(`${what}.${name} is not a string`);
  const problem = identifierProblem(value, bytesMax);
  if (problem !== null) throw new WireMalformedError(`${what}.${name} ${problem}`);
  return value;
}

/** Shared with manifest-codec.ts. */
export function text(fields: Fields, name: string, what: string, bytesMax: number): string {
  const value = fields[name];
  if (typeof value !== 'string') throw new WireMalformedError(`${what}.${name} is not a string`);
  if (Buffer.byteLength(value, 'utf8') > bytesMax) {
    throw new WireMalformedError(`${what}.${name} is over ${bytesMax} bytes`);
  }
  return value;
}

/** protobufjs decodes a uint64 as a Long (two 32-bit halves) when it does not fit 32 bits. */
function isLong(value: unknown): value is { low: number; high: number } {
  return typeof value === 'object' && value !== null &&
    typeof (value as { low?: unknown }).low === 'number' &&
    typeof (value as { high?: unknown }).high === 'number';
}

/** A uint64 field as a JS number; a Long beyond 2^53 - 1 is refused, never rounded. */
export function uint64(fields: Fields, name: string, what: string, min: number): number {
  const value = fields[name];
  let big: bigint;
  if (typeof value === 'number') big = BigInt(value);
  else if (isLong(value)) big = (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0);
  else throw new WireMalformedError(`${what}.${name} is not an integer`);
  if (big > UINT64_SAFE_MAX) throw new WireMalformedError(`${what}.${name} ${big} is over 2^53`);
  if (big < BigInt(min)) throw new WireMalformedError(`${what}.${name} ${big} is below ${min}`);
  return Number(big);
}

/** Shared with manifest-codec.ts. */
export function uint32(fields: Fields, name: string, what: string, min: number): number {
  const value = fields[name];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > EPOCH_MAX) {
    throw new WireMalformedError(`${what}.${name} ${String(value)} is not a u32 >= ${min}`);
  }
  return value;
}

/** A bytes field as a Buffer view of the frame (never a copy); unset is empty. */
export function bytesField(fields: Fields, name: string, what: string): Buffer {
  const value = fields[name];
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.length);
  // protobufjs leaves an unset bytes field at its shared empty-array default.
  if (Array.isArray(value) && value.length === 0) return Buffer.alloc(0);
  throw new WireMalformedError(`${what}.${name} is not bytes`);
}

const epoch = (fields: Fields, what: string): Epoch => uint32(fields, 'epoch', what, 1) as Epoch;
const seq = (fields: Fields, name: string, what: string, min: number): Seq =>
  uint64(fields, name, what, min) as Seq;
const vaultName = (fields: Fields, what: string, name = 'vault'): string =>
  identifier(fields, name, what, VAULT_NAME_BYTES_MAX);
const nodeId = (fields: Fields, what: string): string =>
  identifier(fields, 'nodeId', what, NODE_ID_BYTES_MAX);

function enumValue<T extends string>(fields: Fields, name: string, what: string,
  numbers: Record<T, number>): T {
  const value = fields[name];
  for (const [key, number] of Object.entries(numbers) as Array<[T, number]>) {
    if (value === number) return key;
  }
  throw new WireMalformedError(`${what}.${name} ${String(value)} is not a known value`);
}

/** Decodes the body of an Admit frame. */
export function decodeAdmit(fields: Fields): AdmitMessage {
  return {
    type: 'admit',
    protocolVersion: uint32(fields, 'protocolVersion', 'admit', 1),
    nodeId: nodeId(fields, 'admit'),
  };
}

/** Decodes the body of a Hello frame. */
export function decodeHello(fields: Fields): HelloMessage {
  return {
    type: 'hello',
    protocolVersion: uint32(fields, 'protocolVersion', 'hello', 1),
    nodeId: nodeId(fields, 'hello'),
    vault: vaultName(fields, 'hello'),
    epoch: epoch(fields, 'hello'),
    lastDurableSeq: seq(fields, 'lastDurableSeq', 'hello', 0),
    role: enumValue(fields, 'role', 'hello', ROLE_NUMBERS),
    want: enumValue(fields, 'want', 'hello', WANT_NUMBERS),
    ...(fields['resync'] === true ? { resync: true as const } : {}),
  };
}

/** Decodes the body of a Welcome frame. */
export function decodeWelcome(fields: Fields): WelcomeMessage {
  return {
    type: 'welcome',
    nodeId: nodeId(fields, 'welcome'),
    vault: vaultName(fields, 'welcome'),
    epoch: epoch(fields, 'welcome'),
    resumeFromSeq: seq(fields, 'resumeFromSeq', 'welcome', 1),
  };
}

/** Decodes the body of a Batch frame and checks every record it carries (CRC, seqs). */
export function decodeBatch(fields: Fields): BatchMessage {
  const vault = vaultName(fields, 'batch');
  const batchEpoch = epoch(fields, 'batch');
  const firstSeq = seq(fields, 'firstSeq', 'batch', 1);
  const lastSeq = seq(fields, 'lastSeq', 'batch', firstSeq);
  const recordCount = uint32(fields, 'recordCount', 'batch', 1);
  if (recordCount !== lastSeq - firstSeq + 1) {
    throw new WireMalformedError(`batch of seqs ${firstSeq}..${lastSeq} claims ` +
      `${recordCount} records`);
  }
  const records = bytesField(fields, 'records', 'batch');
  checkBatchRecords(records, { epoch: batchEpoch, firstSeq, lastSeq, recordCount });
  return { type: 'batch', vault, epoch: batchEpoch, firstSeq, lastSeq, recordCount, records };
}

/** Decodes the body of an Ack frame. */
export function decodeAck(fields: Fields): AckMessage {
  return {
    type: 'ack',
    vault: vaultName(fields, 'ack'),
    epoch: epoch(fields, 'ack'),
    durableSeq: seq(fields, 'durableSeq', 'ack', 0),
  };
}

function decodeVaultPosition(fields: Fields, index: number): VaultPosition {
  const what = `heartbeat.vaults[${index}]`;
  return {
    vault: vaultName(fields, what),
    epoch: epoch(fields, what),
    lastSeq: seq(fields, 'lastSeq', what, 0),
    durableSeq: seq(fields, 'durableSeq', what, 0),
  };
}

/** Decodes the body of a Heartbeat frame. */
export function decodeHeartbeat(fields: Fields): HeartbeatMessage {
  const vaults = fields['vaults'];
  if (!Array.isArray(vaults)) throw new WireMalformedError('heartbeat.vaults is not a list');
  if (vaults.length > HEARTBEAT_VAULTS_MAX) {
    throw new WireMalformedError(`heartbeat carries ${vaults.length} vaults, over ` +
      `${HEARTBEAT_VAULTS_MAX}`);
  }
  return {
    type: 'heartbeat',
    nodeId: nodeId(fields, 'heartbeat'),
    epoch: epoch(fields, 'heartbeat'),
    sentAtMs: uint64(fields, 'sentAtMs', 'heartbeat', 0),
    vaults: vaults.map((position: Fields, index) => decodeVaultPosition(position, index)),
  };
}

/** Decodes the body of an Error frame. */
export function decodeError(fields: Fields): ErrorMessage {
  const code = identifier(fields, 'code', 'error', ERROR_CODE_BYTES_MAX);
  const vault = text(fields, 'vault', 'error', VAULT_NAME_BYTES_MAX);
  if (vault !== '') vaultName(fields, 'error');
  return { type: 'error', code, message: text(fields, 'message', 'error', ERROR_MESSAGE_BYTES_MAX),
    vault };
}

const DECODERS: Record<WireMessage['type'], (fields: Fields) => WireMessage> = {
  admit: decodeAdmit, hello: decodeHello, welcome: decodeWelcome, batch: decodeBatch,
  ack: decodeAck, heartbeat: decodeHeartbeat, error: decodeError,
  manifestRequest: decodeManifestRequest, manifestChunk: decodeManifestChunk,
  manifestError: decodeManifestError,
  setAsideRequest: decodeSetAsideRequest, setAsideReply: decodeSetAsideReply,
};

/** Decodes one frame body (without its length prefix) into a checked domain message. */
export function decodeMessage(body: Buffer): WireMessage {
  let frame: Fields;
  try {
    frame = frameType.decode(body) as unknown as Fields;
  } catch (error) {
    throw new WireMalformedError(`protobuf does not parse (${(error as Error).message})`,
      { cause: error });
  }
  const kind = frame['body'];
  if (typeof kind !== 'string' || !Object.hasOwn(DECODERS, kind)) {
    throw new WireMalformedError('frame carries no message this version knows');
  }
  const fields = frame[kind];
  assert(typeof fields === 'object' && fields !== null, 'protobufjs sets the oneof member');
  return DECODERS[kind as WireMessage['type']](fields as Fields);
}

function toFields(message: WireMessage): Fields {
  switch (message.type) {
    case 'hello':
      return { ...message, role: ROLE_NUMBERS[message.role], want: WANT_NUMBERS[message.want] };
    case 'manifestChunk':
      return { ...message, entries: message.entries.map(entryFields) };
    case 'setAsideRequest':
      return setAsideRequestFields(message);
    default:
      return { ...message };
  }
}

/** Our own numbers: protobufjs would silently encode a fraction or a rounded seq. */
function checkNumbers(message: WireMessage): void {
  const objects: object[] = message.type === 'heartbeat' ? [message, ...message.vaults] : [message];
  for (const value of objects.flatMap((object) => Object.values(object))) {
    if (typeof value === 'number') {
      assert(Number.isSafeInteger(value) && value >= 0, `${message.type}: ${value} is no u64`);
    }
  }
}

/**
 * The protobuf encoding of a Batch body without its records field (field 6, the last one),
 * so that the caller can send the records from where they lie instead of copying them.
 */
export function encodeBatchFields(message: BatchMessage): Uint8Array {
  checkNumbers(message);
  const { vault, epoch, firstSeq, lastSeq, recordCount } = message;
  return batchType.encode({ vault, epoch, firstSeq, lastSeq, recordCount }).finish();
}

/** Appends the protobuf encoding of `message` to `writer`; the caller frames it. */
export function encodeMessageInto(message: WireMessage, writer: protobuf.Writer): void {
  checkNumbers(message);
  const fields = toFields(message);
  delete fields['type'];
  frameType.encode({ [message.type]: fields }, writer);
}
