import { mkdir, open, rename } from 'node:fs/promises';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync }
  from 'node:fs';
import { dirname, join } from 'node:path';
import { TargetStateCorruptError } from './errors.js';

/** What the source persists about one target of one vault. */
export interface TargetState {
  vault: string;
  node: string;
  /** Every record <= ackedSeq is durable on the target (it said so in an Ack). */
  ackedSeq: number;
  needsResync: boolean;
  /** Why it needs a resync, and since when (ms since the Unix epoch). */
  reason?: string;
  markedAtMs?: number;
  /**
   * A sync of this target is owed (docs/sync.md, automatic sync): set when it resumed past
   * its checkpoint for a resync, cleared once the sync's SYNC_END is acked. Absent in older
   * files: owed only by a target that never acked anything (its first connect).
   */
  syncPending?: boolean;
  /** When its last sync ended (ms since the Unix epoch). */
  syncedAtMs?: number;
}

function isTargetState(value: unknown): value is TargetState {
  const s = value as Partial<TargetState> | null;
  return s !== null && typeof s === 'object' && typeof s.vault === 'string' &&
    typeof s.node === 'string' && Number.isSafeInteger(s.ackedSeq) && (s.ackedSeq ?? -1) >= 0 &&
    typeof s.needsResync === 'boolean';
}

/**
 * The file stateDir/vaults/<vault>/targets/<node>.json, replaced atomically (temp file,
 * fsync, rename, fsync of the directory), so a crash leaves the old or the new state.
 */
export class TargetStateStore {
  constructor(readonly file: string, readonly vault: string, readonly node: string) {}

  /** The path of a target's state file below a node's state directory. */
  static at(stateDir: string, vault: string, node: string): TargetStateStore {
    return new TargetStateStore(join(stateDir, 'vaults', vault, 'targets', `${node}.json`),
      vault, node);
  }

  /** The stored state, or a fresh one (nothing acked) when none was ever stored. */
  load(): TargetState {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return { vault: this.vault, node: this.node, ackedSeq: 0, needsResync: false };
      }
      throw error;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new TargetStateCorruptError(this.file, 'not JSON');
    }
    if (!isTargetState(value)) throw new TargetStateCorruptError(this.file, 'fields missing');
    return value;
  }

  /** Replaces the state durably, off the event loop (temp file, fsync, rename, dir fsync). */
  async save(state: TargetState): Promise<void> {
    const dir = dirname(this.file);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = join(dir, `.${this.node}.${process.pid}.tmp`);
    const file = await open(tmp, 'w', 0o600);
    try {
      await file.writeFile(`${JSON.stringify(state)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, this.file);
    const dirHandle = await open(dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  }

  /** Replaces the state durably. */
  store(state: TargetState): void {
    const dir = dirname(this.file);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = join(dir, `.${this.node}.${process.pid}.tmp`);
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(state)}\n`);
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
