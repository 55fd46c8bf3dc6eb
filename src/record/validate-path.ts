import { PATH_BYTES_MAX } from './constants.js';

const SLASH = 0x2f;
const DOT = 0x2e;

/**
 * Why `path` breaks the path rules of docs/journal-format.md, or null when it obeys them:
 * relative, `/`-separated, no empty, `.` or `..` component, no NUL, at most PATH_BYTES_MAX.
 * The empty path (the vault root) is valid here; callers decide whether a kind may name it.
 */
export function validatePath(path: Buffer): string | null {
  if (path.length > PATH_BYTES_MAX) return `path of ${path.length} bytes is over the limit`;
  if (path.length === 0) return null;
  if (path.includes(0)) return 'path contains NUL';
  if (path[0] === SLASH) return 'path is absolute';
  if (path[path.length - 1] === SLASH) return 'path ends with /';
  let start = 0;
  while (start <= path.length) {
    let end = path.indexOf(SLASH, start);
    if (end === -1) end = path.length;
    const parts = end - start;
    if (parts === 0) return 'path has an empty component';
    if (path[start] === DOT && (parts === 1 || (parts === 2 && path[start + 1] === DOT))) {
      return 'path has a . or .. component';
    }
    start = end + 1;
  }
  return null;
}

/** True when `path` obeys the journal's path rules (the empty path is the vault root). */
export function isValidPath(path: Buffer): boolean {
  return validatePath(path) === null;
}
