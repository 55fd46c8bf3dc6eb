import protobuf from 'protobufjs';
import { assert } from '../core/index.js';
import { WireFrameTooLargeError, WireMalformedError } from './errors.js';
import { FRAME_BYTES_MAX, FRAME_PREFIX_BYTES, SMALL_FRAME_BYTES_MAX } from './limits.js';
import { decodeMessage, encodeBatchFields, encodeMessageInto } from './message-codec.js';
import type { BatchMessage, WireMessage } from './messages.js';

/** Frame field number of Batch: the only one-byte tag allowed past SMALL_FRAME_BYTES_MAX. */
const BATCH_FIELD = 3;
/** Field number of Batch.records (proto/understudy.proto), its last field. */
const RECORDS_FIELD = 6;
/** Protobuf wire type of bytes and embedded messages. */
const LENGTH_DELIMITED = 2;

/** Bytes of the varint encoding of `value` (a u32). */
function varintBytes(value: number): number {
  let bytes = 1;
  for (let rest = value; rest > 0x7f; rest = Math.floor(rest / 128)) bytes += 1;
  return bytes;
}

function writeVarint(out: Buffer, at: number, value: number): number {
  let rest = value;
  let end = at;
  while (rest > 0x7f) {
    out[end++] = (rest & 0x7f) | 0x80;
    rest = Math.floor(rest / 128);
  }
  out[end++] = rest;
  return end;
}

/** Encodes one message as a frame: 4-byte big-endian body length, then the protobuf body. */
export function encodeFrame(message: WireMessage, frameBytesMax = FRAME_BYTES_MAX): Buffer {
  const writer = protobuf.Writer.create();
  writer.fixed32(0); // Room for the prefix, so the body is never copied a second time.
  encodeMessageInto(message, writer);
  const frame = Buffer.from(writer.finish());
  const bodyBytes = frame.length - FRAME_PREFIX_BYTES;
  assert(bodyBytes > 0 && bodyBytes <= frameBytesMax,
    `${message.type} frame of ${bodyBytes} bytes is over ${frameBytesMax}: split it`);
  frame.writeUInt32BE(bodyBytes, 0);
  return frame;
}

/**
 * Encodes a Batch frame as two buffers to send one after the other: a small head (prefix,
 * tags, lengths and the other fields) and `message.records` itself, never copied. Together
 * they are byte for byte what encodeFrame gives (protobufjs writes fields in number order
 * and records is the last).
 */
export function encodeBatchFrame(message: BatchMessage, frameBytesMax = FRAME_BYTES_MAX):
  [head: Buffer, records: Buffer] {
  const fields = encodeBatchFields(message);
  const { records } = message;
  const batchBytes = fields.length + 1 + varintBytes(records.length) + records.length;
  const bodyBytes = 1 + varintBytes(batchBytes) + batchBytes;
  assert(bodyBytes <= frameBytesMax,
    `batch frame of ${bodyBytes} bytes is over ${frameBytesMax}: split it`);
  const head = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + bodyBytes - records.length);
  let at = head.writeUInt32BE(bodyBytes, 0);
  head[at++] = (BATCH_FIELD << 3) | LENGTH_DELIMITED;
  at = writeVarint(head, at, batchBytes);
  head.set(fields, at);
  at += fields.length;
  head[at++] = (RECORDS_FIELD << 3) | LENGTH_DELIMITED;
  at = writeVarint(head, at, records.length);
  assert(at === head.length, 'the head is exactly the bytes before the records');
  return [head, records];
}

/** The limit for a body whose first byte is `tag`: small unless a batch or a two-byte tag. */
function bodyBytesMaxFor(tag: number, frameBytesMax: number): number {
  const oneByteTag = (tag & 0x80) === 0;
  if (oneByteTag && tag >> 3 !== BATCH_FIELD) return Math.min(SMALL_FRAME_BYTES_MAX, frameBytesMax);
  return frameBytesMax;
}

/**
 * Splits a byte stream into frames and decodes them. Every length is checked before its
 * bytes are buffered; the first error poisons the decoder, since the stream cannot be
 * resynchronised after it.
 */
export class FrameDecoder {
  readonly frameBytesMax: number;
  #chunks: Buffer[] = [];
  #bufferedBytes = 0;
  /** Body length of the frame being received, once its prefix (and tag byte) are checked. */
  #bodyBytes: number | null = null;
  #failure: Error | null = null;

  constructor(options: { frameBytesMax?: number } = {}) {
    this.frameBytesMax = options.frameBytesMax ?? FRAME_BYTES_MAX;
    assert(Number.isSafeInteger(this.frameBytesMax) && this.frameBytesMax > 0 &&
      this.frameBytesMax <= 0xffffffff, 'frameBytesMax is a positive u32');
  }

  /** Bytes received and not yet decoded. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /** Takes the next chunk of the stream; returns the messages it completed, in order. */
  push(chunk: Buffer): WireMessage[] {
    if (this.#failure !== null) throw this.#failure;
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#bufferedBytes += chunk.length;
    }
    const messages: WireMessage[] = [];
    try {
      for (let message = this.#next(); message !== null; message = this.#next()) {
        messages.push(message);
      }
    } catch (error) {
      this.#failure = error as Error;
      this.#chunks = [];
      this.#bufferedBytes = 0;
      throw error;
    }
    return messages;
  }

  #next(): WireMessage | null {
    if (this.#bodyBytes === null) {
      if (this.#bufferedBytes < FRAME_PREFIX_BYTES + 1) return null;
      const head = this.#peek(FRAME_PREFIX_BYTES + 1);
      const bodyBytes = head.readUInt32BE(0);
      if (bodyBytes === 0) throw new WireMalformedError('zero-length frame');
      if (bodyBytes > this.frameBytesMax) {
        throw new WireFrameTooLargeError(bodyBytes, this.frameBytesMax);
      }
      const bodyBytesMax = bodyBytesMaxFor(head[FRAME_PREFIX_BYTES] ?? 0, this.frameBytesMax);
      if (bodyBytes > bodyBytesMax) throw new WireFrameTooLargeError(bodyBytes, bodyBytesMax);
      this.#bodyBytes = bodyBytes;
    }
    if (this.#bufferedBytes < FRAME_PREFIX_BYTES + this.#bodyBytes) return null;
    this.#take(FRAME_PREFIX_BYTES);
    const body = this.#take(this.#bodyBytes);
    this.#bodyBytes = null;
    return decodeMessage(body);
  }

  /** Merges leading chunks until the first holds at least `bytes` (buffered) bytes. */
  #gather(bytes: number): Buffer {
    assert(bytes <= this.#bufferedBytes);
    let gathered = 0;
    let count = 0;
    while (gathered < bytes) gathered += (this.#chunks[count++] as Buffer).length;
    if (count > 1) this.#chunks.splice(0, count, Buffer.concat(this.#chunks.slice(0, count)));
    return this.#chunks[0] as Buffer;
  }

  /** The first `bytes` buffered bytes, without consuming them. */
  #peek(bytes: number): Buffer {
    return this.#gather(bytes).subarray(0, bytes);
  }

  /** Consumes `bytes` buffered bytes; they are known to be there. */
  #take(bytes: number): Buffer {
    const head = this.#gather(bytes);
    if (head.length === bytes) this.#chunks.shift();
    else this.#chunks[0] = head.subarray(bytes);
    this.#bufferedBytes -= bytes;
    return head.subarray(0, bytes);
  }
}
