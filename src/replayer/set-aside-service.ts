// The target side of set-aside (docs/sync.md, "Set-aside"; invariant 6): answers a
// SetAsideRequest that opened a link of its own. Checks the peer is the vault's source, then
// moves each named object out of the replica into <stateDir>/set-aside/<vault>/<ISO time>-
// <syncId>/<path> (rename; across file systems a copy then a removal), or removes it when the
// operator asked for --delete, logging each. Paths are resolved beneath the replica's
// writable root one component at a time with lstat: a symlink or a non-directory on the way
// refuses the path, and the last component is moved itself, never what it points to.
import { closeSync, cpSync, lstatSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import { constants } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../obs/index.js';
import type { BigIntStats } from 'node:fs';
import {
  SET_ASIDE_ERRORS_MAX, type ManifestEntryType, type SetAsideEntryMessage,
  type SetAsideReplyMessage, type SetAsideRequestMessage, type WireMessage,
} from '../wire/index.js';

/** The slice of a Link the service uses. */
export interface SetAsideLink {
  send(message: WireMessage): unknown;
  readonly closed: boolean;
  close(reason: string): void;
}

/** One received vault as the service sees it. */
export interface SetAsideVault {
  name: string;
  source: string;
  /** A writable path to the replica root (its fd under /proc/self/fd: beneath the ro bind). */
  writableRoot: string;
  /** Runs `fn` while no batch is being applied to the replica (the receiver serialises). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

/** What one request did. */
export interface SetAsideResult {
  moved: number;
  deleted: number;
  /** Left in place: no longer the object the manifest showed. */
  changed: number;
  folder: string;
  errors: string[];
}

/** A writable handle on a replica root, opened before the read-only bind goes over it. */
export interface ReplicaRootHandle {
  /** `/proc/self/fd/<fd>`: paths beneath it reach the original (writable) mount. */
  path: string;
  close(): void;
}

/**
 * Opens the replica root directory (no symlink at the root itself) and keeps the fd, so that
 * set-aside can write beneath the read-only bind that protectReplica puts over the path.
 */
export function openReplicaRoot(replica: string): ReplicaRootHandle {
  const fd = openSync(replica, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  let open = true;
  return { path: `/proc/self/fd/${fd}`,
    close: () => { if (open) { open = false; closeSync(fd); } } };
}

const text = (path: Buffer): string => {
  const s = path.toString('utf8');
  return Buffer.from(s, 'utf8').equals(path) ? s : `base64:${path.toString('base64')}`;
};

const SLASH = 0x2f;
const under = (base: Buffer | string, relative: Buffer): Buffer =>
  Buffer.concat([Buffer.from(base), Buffer.from('/'), relative]);

/** Why `relative` cannot be reached beneath `root` without following a link, or null. */
function pathProblem(root: string, relative: Buffer): string | null {
  for (let slash = relative.indexOf(SLASH); slash >= 0;
    slash = relative.indexOf(SLASH, slash + 1)) {
    let stat;
    try {
      stat = lstatSync(under(root, relative.subarray(0, slash)));
    } catch (error) {
      return (error as NodeJS.ErrnoException).code ?? 'lstat failed';
    }
    if (!stat.isDirectory()) {
      return `${text(relative.subarray(0, slash))} is not a directory (links are not followed)`;
    }
  }
  return null;
}

function typeOf(stat: BigIntStats): ManifestEntryType {
  if (stat.isFile()) return 'file';
  if (stat.isDirectory()) return 'dir';
  if (stat.isSymbolicLink()) return 'symlink';
  if (stat.isFIFO()) return 'fifo';
  if (stat.isSocket()) return 'socket';
  return stat.isCharacterDevice() ? 'chr' : 'blk';
}

/** True when `stat` is still the object the target's manifest showed (type, size, mtime). */
function sameObject(stat: BigIntStats, expected: SetAsideEntryMessage): boolean {
  const type = typeOf(stat);
  const sized = type === 'file' || type === 'symlink';
  return type === expected.type && (!sized || Number(stat.size) === expected.size) &&
    stat.mtimeNs === expected.mtimeNs;
}

/** A free name for `dest`: itself, or with .1, .2, ... (the same path set aside twice). */
function freeName(dest: Buffer): Buffer {
  for (let i = 0; ; i += 1) {
    const name = i === 0 ? dest : Buffer.concat([dest, Buffer.from(`.${i}`)]);
    try {
      lstatSync(name);
    } catch {
      return name;
    }
  }
}

/** Moves `from` to `to`; across file systems copies (links kept as links) then removes. */
function moveObject(from: Buffer, to: Buffer): void {
  mkdirSync(to.subarray(0, to.lastIndexOf(SLASH)), { recursive: true, mode: 0o700 });
  try {
    renameSync(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    const [a, b] = [from.toString('utf8'), to.toString('utf8')];
    if (!Buffer.from(a).equals(from) || !Buffer.from(b).equals(to)) throw error;
    cpSync(a, b, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true,
      errorOnExist: true, force: false });
    rmSync(from, { recursive: true });
  }
}

/**
 * Moves (or removes) the request's paths beneath the vault's writable root, under the
 * receiver's exclusive turn. `folder` is the set-aside folder of this sync. Never throws for
 * one path: its failure becomes an error line (and a log line), the others go on.
 */
export async function setAsidePaths(vault: SetAsideVault, request: SetAsideRequestMessage,
  folder: string, log: Logger): Promise<SetAsideResult> {
  return vault.exclusive(async () => {
    const result: SetAsideResult = { moved: 0, deleted: 0, changed: 0, folder, errors: [] };
    for (const expected of request.entries) {
      const raw = expected.path;
      // Raw bytes end to end: a path need not be UTF-8.
      const shown = text(raw);
      const problem = pathProblem(vault.writableRoot, raw);
      const from = under(vault.writableRoot, raw);
      try {
        if (problem !== null) throw new Error(problem);
        if (!sameObject(lstatSync(from, { bigint: true }), expected)) {
          // Records of the stream reached it after the manifest: the stream owns it now.
          result.changed += 1;
          log.info({ vault: vault.name, path: shown }, 'set-aside: left in place, it changed ' +
            'since the manifest (a later sync pass looks at it again)');
          continue;
        }
        if (request.delete) {
          rmSync(from, { recursive: true });
          result.deleted += 1;
          log.warn({ vault: vault.name, path: shown, syncId: request.syncId },
            'sync --delete: removed an object only the target had');
        } else {
          const to = freeName(under(folder, raw));
          moveObject(from, to);
          result.moved += 1;
          log.warn({ vault: vault.name, path: shown, to: text(to), syncId: request.syncId },
            'sync: set aside an object the source does not have (or of another type)');
        }
      } catch (error) {
        const e = error as NodeJS.ErrnoException;
        if (e.code === 'ENOENT' && problem === null) continue;  // gone already: nothing to keep
        const line = `${shown}: ${e.code ?? ''} ${e.message}`.trim();
        log.error({ vault: vault.name, path: shown, err: error }, 'set-aside failed; the ' +
          'object stays in the replica');
        if (result.errors.length < SET_ASIDE_ERRORS_MAX) result.errors.push(line.slice(0, 4000));
      }
    }
    return result;
  });
}

/** The set-aside folder of one sync: `<stateDir>/set-aside/<vault>/<ISO time>-<syncId>`. */
export function setAsideFolder(stateDir: string, vault: string, syncId: string,
  nowMs: number): string {
  return join(stateDir, 'set-aside', vault, `${new Date(nowMs).toISOString()}-${syncId}`);
}

/**
 * Serves one SetAsideRequest on `link` for `vault` (null: this node does not receive it).
 * `peer` is the authenticated node id (null on an insecure link). Never throws; closes the
 * link at the end. `folderOf(syncId)` names the folder (one per sync, kept across passes).
 */
export async function serveSetAside(link: SetAsideLink, request: SetAsideRequestMessage,
  peer: string | null, vault: SetAsideVault | null, folderOf: (syncId: string) => string,
  log: Logger): Promise<void> {
  const fail = (code: string, message: string): void => {
    log.warn({ vault: request.vault, peer, code }, `set-aside refused: ${message}`);
    if (!link.closed) link.send({ type: 'error', code, message, vault: request.vault });
  };
  try {
    const who = peer ?? request.nodeId;
    if (vault === null) {
      return fail('SET_ASIDE_VAULT_UNKNOWN', `this node is not a target of vault ${request.vault}`);
    }
    if (who !== vault.source || request.nodeId !== who) {
      return fail('SET_ASIDE_NOT_SOURCE', `node ${who} is not the source of vault ${vault.name}`);
    }
    const result = await setAsidePaths(vault, request, folderOf(request.syncId), log);
    const reply: SetAsideReplyMessage = { type: 'setAsideReply', requestId: request.requestId,
      moved: result.moved, deleted: result.deleted, changed: result.changed,
      folder: result.folder.slice(0, 4096), errors: result.errors };
    if (!link.closed) link.send(reply);
  } catch (error) {
    fail('SET_ASIDE_FAILED', `vault ${request.vault}: ${(error as Error).message}`);
  } finally {
    link.close('set-aside answered');
  }
}
