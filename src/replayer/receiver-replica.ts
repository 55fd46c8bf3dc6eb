import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../obs/index.js';

/** One line of /proc/self/mountinfo, the fields we use. */
interface MountEntry {
  mountPoint: string;
  options: string[];
}

function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The mounts stacked at exactly `path`, bottom first. */
function mountsAt(path: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    const mountPoint = fields[4];
    if (mountPoint === undefined || unescape(mountPoint) !== path) continue;
    out.push({ mountPoint: path, options: (fields[5] ?? '').split(',') });
  }
  return out;
}

function run(args: string[]): string | null {
  const result = spawnSync(args[0] ?? 'false', args.slice(1), { encoding: 'utf8' });
  if (result.error !== undefined) return result.error.message;
  return result.status === 0 ? null : `${args.join(' ')}: ${result.stderr.trim()}`;
}

/**
 * Makes a replica root read-only to local users while this node is its target: a bind
 * mount of the root over itself, remounted read-only. The applier's root fd, opened BEFORE,
 * still writes through the original mount. `marker` (in the state dir) records that the bind
 * is ours, so a daemon that died can remove it at the next start. Returns the undo, or null
 * (logged) when the kernel refuses; mirroring then goes on without the protection.
 */
export function protectReplica(root: string, marker: string, log: Logger):
  (() => void) | null {
  const problem = run(['mount', '--bind', root, root]) ??
    run(['mount', '-o', 'remount,bind,ro', root, root]);
  if (problem !== null) {
    log.warn({ replica: root, problem }, 'cannot make the replica read-only; it stays writable');
    if (mountsAt(root).length > 0) run(['umount', root]);
    return null;
  }
  mkdirSync(dirname(marker), { recursive: true, mode: 0o700 });
  writeFileSync(marker, `${JSON.stringify({ replica: root, pid: process.pid })}\n`);
  return () => {
    const undo = run(['umount', root]);
    if (undo !== null) {
      log.warn({ replica: root, problem: undo }, 'cannot remove the read-only bind');
    }
    else rmSync(marker, { force: true });
  };
}

/**
 * Removes a read-only bind left at `root` by a daemon that died (its marker is still there),
 * so the applier opens the writable root underneath. True if one was removed.
 */
export function clearStaleReplicaBind(root: string, marker: string, log: Logger): boolean {
  let text: string;
  try {
    text = readFileSync(marker, 'utf8');
  } catch {
    return false;
  }
  const top = mountsAt(root).at(-1);
  let cleared = false;
  if (top !== undefined && top.options.includes('ro') && text.includes(JSON.stringify(root))) {
    const problem = run(['umount', root]);
    if (problem !== null) log.warn({ replica: root, problem }, 'cannot remove a stale bind');
    else cleared = true;
  }
  rmSync(marker, { force: true });
  if (cleared) log.info({ replica: root }, 'removed the read-only bind left by a daemon that died');
  return cleared;
}
