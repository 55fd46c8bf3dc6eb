import { ConfigValueInvalidError } from './errors.js';

const UNIT_BYTES: Readonly<Record<string, number>> = {
  B: 1,
  KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40, PiB: 2 ** 50,
  kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, PB: 1e15,
};

const SIZE_PATTERN = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/;

/** What `parseSize` accepts, as shown in error messages. */
export const SIZE_EXPECTED =
  'a whole number of bytes or a size such as "512MiB", "10GiB" or "2GB" ' +
  '(units B, KiB, MiB, GiB, TiB, PiB, kB, MB, GB, TB, PB)';

/**
 * Parses a size given as bytes (a non-negative safe integer) or as a string with a binary
 * (KiB = 1024) or decimal (kB = 1000) unit; the result must be a whole number of bytes.
 */
export function parseSize(value: number | string): number {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return value;
    throw new ConfigValueInvalidError(value, 'not a whole number of bytes', SIZE_EXPECTED);
  }
  const match = SIZE_PATTERN.exec(value.trim());
  if (match === null) throw new ConfigValueInvalidError(value, 'not a size', SIZE_EXPECTED);
  const [, amount = '', unit = ''] = match;
  const unitBytes = UNIT_BYTES[unit === '' ? 'B' : unit];
  if (unitBytes === undefined) {
    throw new ConfigValueInvalidError(value, `unknown unit "${unit}"`, SIZE_EXPECTED);
  }
  const bytes = Number(amount) * unitBytes;
  if (!Number.isSafeInteger(bytes)) {
    const problem = Number.isInteger(bytes) ? 'too large' : 'not a whole number of bytes';
    throw new ConfigValueInvalidError(value, problem, SIZE_EXPECTED);
  }
  return bytes;
}
