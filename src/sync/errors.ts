import { UnderstudyError } from '../core/index.js';

/** A tree could not be scanned: an unreadable directory, file or attribute. */
export class SyncScanError extends UnderstudyError {
  readonly code = 'SYNC_SCAN_FAILED';
  constructor(readonly path: string, reason: string, options?: { cause?: unknown }) {
    super(`cannot scan ${path}: ${reason}`,
      'check the path exists and is readable by the daemon (root), then run it again', options);
  }
}

/** The target could not produce a manifest, or the exchange broke off. */
export class SyncManifestError extends UnderstudyError {
  constructor(readonly code: string, message: string, hint: string,
    options?: { cause?: unknown }) {
    super(message, hint, options);
  }
}
