import pino, { type Logger } from 'pino';

/** Creates the process logger: JSON lines on stderr, level from UNDERSTUDY_LOG_LEVEL. */
export function createLogger(name: string): Logger {
  return pino({ name, level: process.env['UNDERSTUDY_LOG_LEVEL'] ?? 'info' },
    pino.destination({ fd: 2, sync: true }));
}

export type { Logger };
