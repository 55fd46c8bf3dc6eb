/** Every error the world can cause carries a stable `code` and a `hint` saying what to do. */
export abstract class UnderstudyError extends Error {
  abstract readonly code: string;

  constructor(message: string, readonly hint: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Raised by `assert`: a bug in understudy, never a condition of the world. */
export class AssertionFailedError extends Error {
  constructor(message: string) {
    super(`assertion failed: ${message}`);
    this.name = 'AssertionFailedError';
  }
}

/** Checks one of our own invariants; never use it on bytes from disk, wire, config or CLI. */
export function assert(condition: unknown, message = 'invariant violated'): asserts condition {
  if (!condition) throw new AssertionFailedError(message);
}

/** A bad command-line argument or missing prerequisite the operator can fix. */
export class UsageError extends UnderstudyError {
  readonly code = 'CLI_USAGE';
  constructor(message: string, hint: string, options?: { cause?: unknown }) {
    super(message, hint, options);
  }
}
