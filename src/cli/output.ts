import { UnderstudyError } from '../core/index.js';

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
