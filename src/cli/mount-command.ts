import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { UsageError } from '../core/index.js';
import { createLogger } from '../obs/index.js';
import { isWithin, resolvePath } from './paths.js';
import { say } from './output.js';

export interface MountCommandOptions {
  backing?: string;
  journal?: string;
  epoch?: string;
  writebackCache?: boolean;
}

/** Where journals live when the operator does not say: outside every vault. */
export const JOURNAL_ROOT_DEFAULT = '/var/lib/understudy/journals';

/** Checks everything the operator can get wrong before touching the kernel. */
function preflight(mountpoint: string, backing: string, journalDir: string): void {
  if (process.getuid?.() !== 0) {
    throw new UsageError('mounting needs root',
      'run as root (sudo): the mount serves every user (allow_other) and keeps their owners');
  }
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    throw new UsageError('/dev/fuse is missing or not accessible',
      'load the fuse module (`modprobe fuse`) or, in a container, pass --device /dev/fuse');
  }
  for (const [what, dir] of [['mount point', mountpoint], ['backing directory', backing]]) {
    let isDir = false;
    try {
      isDir = statSync(dir as string).isDirectory();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOTCONN') continue;  // stale: cleared later
      throw new UsageError(`${what} ${dir} does not exist`, `create it first: mkdir -p ${dir}`);
    }
    if (!isDir) throw new UsageError(`${what} ${dir} is not a directory`, 'give a directory');
  }
  if (isWithin(journalDir, backing) || isWithin(journalDir, mountpoint)) {
    throw new UsageError(`journal directory ${journalDir} lies inside the mirrored tree`,
      'put the journal outside the vault, e.g. under /var/lib/understudy/journals');
  }
  try {
    mkdirSync(journalDir, { recursive: true, mode: 0o700 });
    accessSync(journalDir, constants.W_OK);
  } catch (error) {
    throw new UsageError(`journal directory ${journalDir} is not writable`,
      'choose a writable directory with --journal, or fix its permissions',
      { cause: error });
  }
}

/** `understudy mount`: mounts a vault in the foreground until SIGINT or SIGTERM. */
export async function mountCommand(dir: string, options: MountCommandOptions): Promise<number> {
  const mountpoint = resolvePath(dir);
  const backing = options.backing === undefined ? mountpoint : resolvePath(options.backing);
  const journalDir = resolvePath(options.journal ??
    join(JOURNAL_ROOT_DEFAULT, mountpoint.replaceAll('/', '_').replace(/^_/, '') ||
      basename(mountpoint)));
  const epoch = options.epoch === undefined ? 1 : Number(options.epoch);
  if (!Number.isInteger(epoch) || epoch < 1 || epoch > 0xffffffff) {
    throw new UsageError(`--epoch ${options.epoch} is not a valid epoch`, 'give an integer >= 1');
  }
  preflight(mountpoint, backing, journalDir);

  const log = createLogger('understudy-mount');
  const { Mount, clearStaleMount } = await import('../mount/index.js');
  if (clearStaleMount(mountpoint)) {
    log.warn({ mountpoint }, 'cleared a stale mount left by a daemon that died');
  }
  const mount = await Mount.open({
    mountpoint, backing, journalDir, epoch, writebackCache: options.writebackCache === true,
  });
  say(`understudy: mounted ${mountpoint} (backing ${backing}, journal ${journalDir})`);
  say('understudy: press Ctrl-C to unmount');

  // The FUSE threads do not keep Node's event loop alive; this timer does, until a signal.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  await new Promise<void>((resolveStop) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'unmounting');
      resolveStop();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGHUP', () => stop('SIGHUP'));
  });
  clearInterval(keepAlive);
  await mount.unmount();
  const stats = mount.stats();
  say(`understudy: unmounted ${mountpoint}; journal at seq ${stats.lastSeq} ` +
    `(${stats.records} records, ${stats.journalBytes} bytes this run)`);
  return 0;
}
