import { UnderstudyError } from '../core/index.js';

/**
 * For commands that print and end (status, verify, journal dump, ...): a reader that went
 * away (`understudy status | head -3`) is not an error of ours, so stop quietly as other
 * command-line tools do instead of dying on an unhandled EPIPE. Not for the daemons.
 */
export function endQuietlyOnClosedStdout(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}

/** Writes one line for the operator on stdout. */
export function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Prints an error with its hint on stderr and returns the exit code for it. */
export function reportError(error: unknown): number {
  if (error instanceof UnderstudyError) {
    process.stderr.write(`understudy: ${error.message}\n  hint: ${error.hint}\n`);
    if (process.env['UNDERSTUDY_DEBUG'] && error.cause) console.error(error.cause);
    return 2;
  }
  process.stderr.write(`understudy: unexpected error (a bug; please report it):\n`);
  console.error(error);
  return 70;
}
