import { UnderstudyError } from '../core/index.js';

/** What to do about a mount failure, by errno name. */
const HINTS: Record<string, string> = {
  EPERM: 'run the daemon as root: the mount serves every user and keeps their owners',
  ENODEV: 'load the fuse kernel module (modprobe fuse) and make /dev/fuse available',
  ENOENT: 'create the directory (mountpoint, backing dir or journal dir) first',
  ENOTDIR: 'the mountpoint and the backing must be directories',
  EBUSY: 'something is already mounted there: unmount it (or run `understudy unmount`) first',
  EACCES: 'give the daemon (root) write access to the journal dir; check it is not read-only',
  EROFS: 'the journal dir is on a read-only file system: choose a writable state dir',
  ENOSPC: 'free space on the journal dir file system',
  EIO: 'see the daemon log (stderr) for what libfuse or the journal reported',
};

/** A mount, unmount or journal flush failed; `errno` is the errno name from the kernel. */
export class MountError extends UnderstudyError {
  readonly code: string;
  readonly errno?: string;
  readonly syscall?: string;

  constructor(message: string, code: string, hint: string,
    details: { errno?: string; syscall?: string; cause?: unknown } = {}) {
    super(message, hint, { cause: details.cause });
    this.code = code;
    if (details.errno !== undefined) this.errno = details.errno;
    if (details.syscall !== undefined) this.syscall = details.syscall;
  }
}

/** The journal dir lies inside the vault: every journal append would be captured again. */
export class MountJournalInsideVaultError extends MountError {
  constructor(journalDir: string, vault: string) {
    super(`journal dir ${journalDir} is inside the vault ${vault}`, 'MOUNT_JOURNAL_INSIDE_VAULT',
      'keep journals under the node state dir, outside every vault');
  }
}

/** Converts an error thrown by the native addon (code = errno name) into a MountError. */
export function toMountError(error: unknown, what: string): MountError {
  if (error instanceof MountError) return error;
  const e = error as { code?: unknown; syscall?: unknown; message?: unknown };
  const errno = typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code) ? e.code : undefined;
  const syscall = typeof e.syscall === 'string' ? e.syscall : undefined;
  const message = typeof e.message === 'string' ? e.message : String(error);
  const code = `MOUNT_${errno ?? 'FAILED'}`;
  const hint = (errno !== undefined ? HINTS[errno] : undefined) ?? 'see the cause for details';
  return new MountError(`${what}: ${message}`, code, hint, { errno, syscall, cause: error });
}

/** A vault include/exclude glob is not valid (native/path_filter.h gives the syntax). */
export class MountGlobInvalidError extends MountError {
  constructor(reason: string, options: { cause?: unknown } = {}) {
    super(`vault include/exclude: ${reason}`, 'MOUNT_GLOB_INVALID',
      'fix the glob in the vault config: relative to the vault root, no "." or ".." ' +
      'components, "[" closed by "]"', options);
  }
}
