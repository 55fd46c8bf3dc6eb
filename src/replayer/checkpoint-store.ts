import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync }
  from 'node:fs';
import { dirname, join } from 'node:path';
import { UnderstudyError } from '../core/index.js';

/** How far a target's replica of one vault has durably got. */
export interface Checkpoint {
  vault: string;
  /** Node id of the source the records came from. */
  source: string;
  epoch: number;
  /** Every record <= seq is applied and durable in the replica. */
  seq: number;
}

/** A checkpoint file that cannot be read back: never guessed around. */
export class CheckpointCorruptError extends UnderstudyError {
  readonly code = 'CHECKPOINT_CORRUPT';
  constructor(readonly file: string, reason: string) {
    super(`checkpoint ${file} is unreadable: ${reason}`,
      'the replica state is unknown: move the file aside and run `understudy sync` for the vault');
  }
}

function isCheckpoint(value: unknown): value is Checkpoint {
  const c = value as Partial<Checkpoint> | null;
  return c !== null && typeof c === 'object' && typeof c.vault === 'string' &&
    typeof c.source === 'string' && Number.isSafeInteger(c.epoch) && (c.epoch ?? 0) >= 1 &&
    Number.isSafeInteger(c.seq) && (c.seq ?? -1) >= 0;
}

/**
 * Persists checkpoints atomically (write a temp file, fsync, rename, fsync the directory),
 * so that after a crash at any instant the file holds either the old or the new one.
 */
export class CheckpointStore {
  constructor(readonly file: string) {}

  /** The stored checkpoint, or null when none was ever stored. */
  load(): Checkpoint | null {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new CheckpointCorruptError(this.file, 'not JSON');
    }
    if (!isCheckpoint(value)) throw new CheckpointCorruptError(this.file, 'fields missing');
    return value;
  }

  /** Replaces the checkpoint durably; returns once it would survive a power cut. */
  store(checkpoint: Checkpoint): void {
    const dir = dirname(this.file);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = join(dir, `.${process.pid}.checkpoint.tmp`);
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(checkpoint)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
    const dirFd = openSync(dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }
}
