import { readdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { ControlRequestError, ControlUnavailableError } from './errors.js';
import { CONTROL_SOCKET_DIR, type ControlReply } from './protocol.js';

/** Control sockets of the daemons running here (the CLI's default when none is named). */
export function findControlSockets(dir = CONTROL_SOCKET_DIR): string[] {
  try {
    return readdirSync(dir).filter((name) => name.endsWith('.sock')).sort()
      .map((name) => join(dir, name));
  } catch {
    return [];
  }
}

/** Sends one request and resolves with its result; `onEvent` sees progress events. */
export function request(socketPath: string, method: string, params: Record<string, unknown> = {},
  onEvent?: (event: Record<string, unknown>) => void): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let buffered = '';
    let settled = false;
    const settle = (fn: () => void): void => {
      if (!settled) { settled = true; fn(); }
    };
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify({ method, params })}\n`));
    socket.on('error', (error) => settle(() => reject(new ControlUnavailableError(
      `cannot reach the daemon at ${socketPath}: ${error.message}`,
      'is `understudy serve` (or `understudy demo`) running? are you root?', { cause: error }))));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const reply = JSON.parse(buffered.slice(0, newline)) as ControlReply;
        buffered = buffered.slice(newline + 1);
        if (reply.type === 'event') onEvent?.(reply.event);
        else if (reply.type === 'result') settle(() => resolve(reply.result));
        else settle(() => reject(new ControlRequestError(reply.error.code, reply.error.message,
          reply.error.hint)));
      }
    });
    socket.on('close', () => settle(() => reject(new ControlUnavailableError(
      `the daemon at ${socketPath} closed the connection without an answer`,
      'see the daemon log'))));
  });
}
