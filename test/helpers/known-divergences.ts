// Where the mount is known, and documented, to differ from the file system under it. Each
// entry names why and states exactly what the mount does instead, so the comparison still
// fails on any other difference (and on a change in these). docs/native-mount.md, "Limits".
import type { Step } from './posix-cases.js';

export interface KnownDivergence {
  reason: string;
  /** Steps left out on both sides: their values follow from the documented difference. */
  ignore: string[];
  /** Turns the plain directory's outcome into the outcome the mount must give. */
  expectOnMount: (plain: Step[]) => Step[];
}

function setValues(steps: Step[], values: Record<string, unknown>): Step[] {
  return steps.map(([label, value]) => [label, label in values ? values[label] : value]);
}

/** The steps of an outcome without the ignored ones. */
export function withoutIgnored(steps: Step[], known: KnownDivergence): Step[] {
  return steps.filter(([label]) => !known.ignore.includes(label));
}

/** Journal records name paths relative to the vault root, at most 4096 bytes. */
const VAULT_PATH_BYTES_MAX = 4096;

export const KNOWN_DIVERGENCES: Record<string, KnownDivergence> = {
  fallocate: {
    reason: 'the kernel FUSE client refuses COLLAPSE_RANGE and INSERT_RANGE itself ' +
      '(EOPNOTSUPP) before they reach the daemon',
    ignore: ['content hash'],
    expectOnMount: (plain) => setValues(plain, {
      'COLLAPSE_RANGE 4K': 'E:ENOTSUP', 'size after collapse': 65536,
      'INSERT_RANGE 4K': 'E:ENOTSUP', 'size after insert': 65536,
    }),
  },
  'o-tmpfile': {
    reason: 'libfuse 3.14 has no tmpfile operation, so the kernel answers EOPNOTSUPP',
    ignore: [],
    expectOnMount: () => [
      ['open O_TMPFILE', 'E:ENOTSUP'],
      ['O_TMPFILE|O_EXCL then linkat refused', 'E:ENOTSUP'],
    ],
  },
  'deep-paths': {
    reason: `a journal record names a path of at most ${VAULT_PATH_BYTES_MAX} bytes, so the ` +
      'mount refuses deeper names with ENAMETOOLONG before changing anything',
    ignore: ['open by path longer than PATH_MAX'],
    expectOnMount: (plain) => [
      ['mkdir level', 'E:ENAMETOOLONG'],
      ...setValues(plain, {
        // 250-byte components plus a slash each: 16 levels fit in 4096 bytes.
        'depth reached': Math.floor(VAULT_PATH_BYTES_MAX / 251),
        'getcwd works': false,
      }),
    ],
  },
};
