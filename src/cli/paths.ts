import { realpathSync } from 'node:fs';
import { relative, resolve, isAbsolute } from 'node:path';

/** Resolves a path the operator gave, following symlinks when it exists. */
export function resolvePath(path: string): string {
  const absolute = resolve(path);
  try {
    return realpathSync(absolute);
  } catch {
    return absolute;
  }
}

/** True when `inner` is `outer` itself or lies beneath it. */
export function isWithin(inner: string, outer: string): boolean {
  const rel = relative(outer, inner);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}
