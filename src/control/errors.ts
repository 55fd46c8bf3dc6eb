import { UnderstudyError } from '../core/index.js';

/** The CLI could not reach a daemon, or the daemon refused the request. */
export class ControlUnavailableError extends UnderstudyError {
  readonly code = 'CONTROL_UNAVAILABLE';
  constructor(message: string, hint: string, options?: { cause?: unknown }) {
    super(message, hint, options);
  }
}

/** The daemon answered a request with an error of its own. */
export class ControlRequestError extends UnderstudyError {
  constructor(readonly code: string, message: string, hint: string) {
    super(message, hint);
  }
}
