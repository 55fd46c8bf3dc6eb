import t from 'tap';
import { ConfigValueInvalidError, parseSize } from './index.js';

t.test('parses bytes, binary and decimal units', async (t) => {
  t.equal(parseSize(0), 0);
  t.equal(parseSize(4096), 4096);
  t.equal(parseSize('4096'), 4096);
  t.equal(parseSize('512B'), 512);
  t.equal(parseSize('16MiB'), 16 * 1024 * 1024);
  t.equal(parseSize('10GiB'), 10 * 2 ** 30);
  t.equal(parseSize('10 GiB'), 10 * 2 ** 30);
  t.equal(parseSize('1.5GiB'), 1.5 * 2 ** 30);
  t.equal(parseSize('2TiB'), 2 * 2 ** 40);
  t.equal(parseSize('2GB'), 2e9);
  t.equal(parseSize('3kB'), 3000);
});

t.test('rejects what is not a whole number of bytes', async (t) => {
  for (const bad of ['', 'GiB', '-1GiB', '10 gigs', '10gib', '0.5B', '1.5', '1e3', '9999999PiB']) {
    t.throws(() => parseSize(bad), ConfigValueInvalidError, bad);
  }
  for (const bad of [-1, 1.5, Number.NaN, 2 ** 60]) {
    t.throws(() => parseSize(bad), ConfigValueInvalidError, String(bad));
  }
});

t.test('the error names the value and what is expected', async (t) => {
  const error = t.throws(() => parseSize('10 gigs')) as ConfigValueInvalidError;
  t.equal(error.code, 'CONFIG_VALUE_INVALID');
  t.match(error.problem, /unknown unit "gigs"/);
  t.match(error.message, /"10 gigs".*expected .*10GiB/);
});
