import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { UnderstudyError } from '../core/index.js';
import { CONTROL_LINE_BYTES_MAX, type ControlReply, type ControlRequest } from './protocol.js';

/** Handles one request; may emit progress events before it resolves. */
export type ControlHandler = (params: Record<string, unknown>,
  emit: (event: Record<string, unknown>) => void) => Promise<unknown>;

function write(socket: Socket, reply: ControlReply): void {
  if (!socket.destroyed) socket.write(`${JSON.stringify(reply)}\n`);
}

/**
 * The daemon's side of the control socket: a Unix socket only root can open (mode 0600),
 * one JSON request line per connection, answered by JSON lines.
 */
export class ControlServer {
  readonly #handlers = new Map<string, ControlHandler>();
  #server: Server | null = null;

  constructor(readonly socketPath: string) {}

  /** Registers the handler of `method`. */
  handle(method: string, handler: ControlHandler): void {
    this.#handlers.set(method, handler);
  }

  /** Starts listening, replacing a socket file left by a daemon that died. */
  async listen(): Promise<void> {
    mkdirSync(dirname(this.socketPath), { recursive: true, mode: 0o755 });
    rmSync(this.socketPath, { force: true });
    const server = createServer((socket) => this.#serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    chmodSync(this.socketPath, 0o600);
    this.#server = server;
  }

  /** Stops listening and removes the socket file. */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (server === null) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(this.socketPath, { force: true });
  }

  #serve(socket: Socket): void {
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline < 0) {
        if (buffered.length > CONTROL_LINE_BYTES_MAX) socket.destroy();
        return;
      }
      socket.removeAllListeners('data');
      void this.#answer(socket, buffered.slice(0, newline));
    });
  }

  async #answer(socket: Socket, line: string): Promise<void> {
    let request: ControlRequest;
    try {
      request = JSON.parse(line) as ControlRequest;
      if (typeof request.method !== 'string') throw new Error('no method');
    } catch {
      write(socket, { type: 'error', error: { code: 'CONTROL_MALFORMED',
        message: 'the request is not a JSON object with a method', hint: 'use the CLI' } });
      socket.end();
      return;
    }
    const handler = this.#handlers.get(request.method);
    try {
      if (handler === undefined) {
        throw Object.assign(new Error(`unknown method ${request.method}`), { code: 'CONTROL_UNKNOWN' });
      }
      const result = await handler(request.params ?? {}, (event) =>
        write(socket, { type: 'event', event }));
      write(socket, { type: 'result', result });
    } catch (error) {
      const e = error as Partial<UnderstudyError> & { message?: string };
      write(socket, { type: 'error', error: { code: e.code ?? 'INTERNAL',
        message: e.message ?? String(error), hint: e.hint ?? 'see the daemon log' } });
    }
    socket.end();
  }
}
