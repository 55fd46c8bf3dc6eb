/** A request on the control socket: one JSON object on one line. */
export interface ControlRequest {
  method: string;
  params?: Record<string, unknown>;
}

/** One line the server sends back: progress events (0 or more), then a result or an error. */
export type ControlReply =
  | { type: 'event'; event: Record<string, unknown> }
  | { type: 'result'; result: unknown }
  | { type: 'error'; error: { code: string; message: string; hint: string } };

/** Longest request line the server reads; anything longer closes the connection. */
export const CONTROL_LINE_BYTES_MAX = 64 * 1024;

/** Where control sockets live when the config does not say: one per node. */
export const CONTROL_SOCKET_DIR = '/run/understudy';
