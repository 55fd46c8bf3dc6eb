import { posix } from 'node:path';

/** Normalises an absolute path: no `.`/`..` segments, no doubled or trailing `/`. */
export function normalizeAbsolute(path: string): string {
  const normal = posix.normalize(path);
  return normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
}

/** True when `inner` is `outer` or lies below it; both normalised and absolute. */
export function isInsideOrEqual(inner: string, outer: string): boolean {
  if (outer === '/') return true;
  return inner === outer || inner.startsWith(`${outer}/`);
}

/** Where a target keeps the replica of `vault` when the file names none. */
export function defaultReplicaPath(stateDir: string, vault: string): string {
  return posix.join(stateDir, 'replicas', vault);
}

/** The one part of stateDir where replicas may live. */
export function replicasDir(stateDir: string): string {
  return posix.join(stateDir, 'replicas');
}

/** Default TLS key, certificate and control socket paths below stateDir. */
export function defaultNodePaths(stateDir: string): {
  key: string; cert: string; controlSocket: string;
} {
  return {
    key: posix.join(stateDir, 'keys', 'node.key'),
    cert: posix.join(stateDir, 'keys', 'node.crt'),
    controlSocket: posix.join(stateDir, 'control.sock'),
  };
}
