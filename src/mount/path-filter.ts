import { MountGlobInvalidError } from './errors.js';
import { nativeAddon } from './native.js';

/**
 * A vault's include/exclude globs, matched by the very code the mount journals with
 * (native/path_filter.*), so scanners see exactly the mirrored set. Immutable.
 */
export class PathFilter {
  readonly #handle: object;

  private constructor(handle: object) {
    this.#handle = handle;
  }

  /** Checks the globs; throws MountGlobInvalidError naming the first invalid one. */
  static create(include: readonly string[], exclude: readonly string[]): PathFilter {
    try {
      return new PathFilter(nativeAddon().createPathFilter(include, exclude));
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'EINVAL') throw error;
      throw new MountGlobInvalidError((error as Error).message, { cause: error });
    }
  }

  /**
   * Whether the object at `path` (vault-relative bytes, empty = the root) is mirrored: a
   * directory unless it or an ancestor is excluded; anything else when it or an ancestor is
   * included and neither it nor an ancestor is excluded.
   */
  matches(path: Buffer, isDir: boolean): boolean {
    return nativeAddon().pathFilterMatches(this.#handle, path, isDir);
  }
}
