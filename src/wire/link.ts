import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { WireError, WireLinkClosedError } from './errors.js';
import { FrameDecoder, encodeBatchFrame, encodeFrame } from './frame-codec.js';
import { FRAME_BYTES_MAX } from './limits.js';
import type { WireMessage } from './messages.js';

/** The logging a link needs; a pino Logger fits it (wire may not import obs). */
export interface WireLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/** Writes JSON lines on stderr, for links made without a logger. */
export const stderrLogger: WireLogger = {
  info: (fields, message) => writeLine('info', fields, message),
  warn: (fields, message) => writeLine('warn', fields, message),
};

function writeLine(level: string, fields: object, message: string): void {
  process.stderr.write(`${JSON.stringify({ level, name: 'wire', ...fields, msg: message })}\n`);
}

/** How a link is built around a connected socket. */
export interface LinkOptions {
  /** The peer as logs name it, e.g. `node-b@198.18.0.2:7400`. */
  peer: string;
  /** The peer's node id as its certificate proved it; null on an insecure link. */
  peerNodeId: string | null;
  frameBytesMax?: number;
  log?: WireLogger;
}

/** Messages held for a consumer that is not reading; past this the socket is paused. */
const INBOX_MESSAGES_MAX = 16;
/** Characters of a reason sent to the peer: far below ERROR_MESSAGE_BYTES_MAX in UTF-8. */
const NOTIFY_CHARS_MAX = 1000;
/** Batches of at most this many record bytes are copied behind their head: one write. */
const BATCH_COPY_BYTES_MAX = 256 * 1024;
/** How long a closing link waits for the peer to read our last frame before destroying. */
const LINGER_MS = 2000;

/**
 * One connection to a peer, carrying framed messages both ways. Read it with 'message'
 * events or with `for await`, not both. Any decode error, socket error or throwing message
 * handler closes the link with a logged reason: nothing here throws out of an event handler.
 * Events: 'message' (message: WireMessage), 'close' (reason: string), emitted once.
 */
export class Link extends EventEmitter {
  readonly peer: string;
  readonly peerNodeId: string | null;
  readonly #socket: Socket;
  readonly #decoder: FrameDecoder;
  readonly #log: WireLogger;
  #inbox: WireMessage[] = [];
  #waiter: ((result: IteratorResult<WireMessage>) => void) | null = null;
  #closeReason: string | null = null;

  constructor(socket: Socket, options: LinkOptions) {
    super();
    this.peer = options.peer;
    this.peerNodeId = options.peerNodeId;
    this.#socket = socket;
    this.#decoder = new FrameDecoder({ frameBytesMax: options.frameBytesMax ?? FRAME_BYTES_MAX });
    this.#log = options.log ?? stderrLogger;
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('error', (error) => this.close(`socket error: ${error.message}`));
    socket.on('end', () => this.close('the peer closed the link'));
    socket.on('close', () => this.close('the connection was lost'));
    this.on('newListener', (event) => {
      if (event === 'message') process.nextTick(() => this.#flushToListeners());
    });
  }

  /** The TLS version in use ('TLSv1.3'), or null on an insecure link. */
  get protocol(): string | null {
    return this.#socket instanceof TLSSocket ? this.#socket.getProtocol() : null;
  }

  /** Why the link closed, or null while it is open. */
  get closeReason(): string | null {
    return this.#closeReason;
  }

  /** True once the link is closed; sending then throws. */
  get closed(): boolean {
    return this.#closeReason !== null;
  }

  /**
   * Queues one message; false means the socket is full: await drained() before more. A
   * batch's records are written from the caller's buffer, not copied: it must not change.
   */
  send(message: WireMessage): boolean {
    if (this.#closeReason !== null) throw new WireLinkClosedError(this.peer, this.#closeReason);
    if (message.type === 'batch') {
      const [head, records] = encodeBatchFrame(message, this.#decoder.frameBytesMax);
      // Two writes of a small batch would be two small TCP segments, and Nagle's algorithm
      // holds the second until the first is acked (a delayed ack: up to 40 ms); a copy of a
      // small batch costs far less. A large one fills whole segments, which are never held.
      if (records.length <= BATCH_COPY_BYTES_MAX) {
        return this.#socket.write(Buffer.concat([head, records]));
      }
      this.#socket.write(head);
      return this.#socket.write(records);
    }
    return this.#socket.write(encodeFrame(message, this.#decoder.frameBytesMax));
  }

  /** Resolves once the socket can take more; rejects with WireLinkClosedError if it closes. */
  drained(): Promise<void> {
    if (this.#closeReason !== null) {
      return Promise.reject(new WireLinkClosedError(this.peer, this.#closeReason));
    }
    if (!this.#socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onDrain = (): void => { this.off('close', onClose); resolve(); };
      const onClose = (reason: string): void => {
        this.#socket.off('drain', onDrain);
        reject(new WireLinkClosedError(this.peer, reason));
      };
      this.#socket.once('drain', onDrain);
      this.once('close', onClose);
    });
  }

  /**
   * Closes the link once and logs why; with `notify`, first tells the peer in an Error frame.
   * Messages already received stay readable through the iterator.
   */
  close(reason: string, notify?: { code: string; message: string }): void {
    if (this.#closeReason !== null) return;
    this.#closeReason = reason;
    this.#log[notify === undefined ? 'info' : 'warn']({ peer: this.peer, reason }, 'link closed');
    if (notify !== undefined && !this.#socket.destroyed) {
      const message = notify.message.slice(0, NOTIFY_CHARS_MAX);
      this.#socket.write(encodeFrame({ type: 'error', vault: '', code: notify.code, message }));
    }
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), LINGER_MS).unref();
    this.#socket.resume(); // Drain what the peer still sends, so it sees our close.
    if (this.#waiter !== null && this.#inbox.length === 0) {
      const waiter = this.#waiter;
      this.#waiter = null;
      waiter({ value: undefined, done: true });
    }
    this.#emitSafely('close', reason);
  }

  /** Yields every message received, in order, until the link closes. */
  async *[Symbol.asyncIterator](): AsyncGenerator<WireMessage, void> {
    for (;;) {
      const message = this.#inbox.shift();
      if (message !== undefined) {
        if (this.#inbox.length < INBOX_MESSAGES_MAX && this.#closeReason === null) {
          this.#socket.resume();
        }
        yield message;
        continue;
      }
      if (this.#closeReason !== null) return;
      const next = await new Promise<IteratorResult<WireMessage>>((resolve) => {
        this.#waiter = resolve;
      });
      if (next.done === true) return;
      yield next.value;
    }
  }

  #receive(chunk: Buffer): void {
    if (this.#closeReason !== null) return;
    let messages: WireMessage[];
    try {
      messages = this.#decoder.push(chunk);
    } catch (error) {
      const wire = error instanceof WireError;
      const code = wire ? error.code : 'WIRE_INTERNAL';
      const text = error instanceof Error ? error.message : String(error);
      this.close(`${code}: ${text}`, { code, message: text });
      return;
    }
    for (const message of messages) {
      if (this.#closeReason !== null) return;
      this.#deliver(message);
      // An Error for the whole link (no vault) is the peer's last word: see wire-protocol.md.
      if (message.type === 'error' && message.vault === '') {
        this.close(`the peer reported ${message.code}: ${message.message}`);
      }
    }
  }

  #deliver(message: WireMessage): void {
    if (this.#waiter !== null) {
      const waiter = this.#waiter;
      this.#waiter = null;
      waiter({ value: message, done: false });
    } else if (this.listenerCount('message') > 0 && this.#inbox.length === 0) {
      this.#emitSafely('message', message);
    } else {
      this.#inbox.push(message);
      if (this.#inbox.length >= INBOX_MESSAGES_MAX) this.#socket.pause();
    }
  }

  #flushToListeners(): void {
    while (this.#inbox.length > 0 && this.listenerCount('message') > 0) {
      this.#emitSafely('message', this.#inbox.shift() as WireMessage);
    }
    if (this.#inbox.length < INBOX_MESSAGES_MAX && this.#closeReason === null) {
      this.#socket.resume();
    }
  }

  #emitSafely(event: 'message' | 'close', value: WireMessage | string): void {
    try {
      this.emit(event, value);
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      this.#log.warn({ peer: this.peer, event, error: text }, 'a link event handler threw');
      this.close(`a ${event} handler threw: ${text}`);
    }
  }
}
