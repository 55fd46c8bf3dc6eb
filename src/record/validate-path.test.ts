import t from 'tap';
import { PATH_BYTES_MAX, isValidPath, validatePath } from './index.js';

t.test('valid paths are relative, /-separated, with real components', async (t) => {
  const valid = ['', 'a', 'a/b', 'a/b/c.txt', '...', '.a', 'a..', 'a/.b/..c', 'é/ü'];
  for (const path of valid) t.equal(validatePath(Buffer.from(path)), null, JSON.stringify(path));
  t.ok(isValidPath(Buffer.from([0xff, 0xfe, 0x2f, 0x80])), 'any byte but NUL and /');
  t.ok(isValidPath(Buffer.alloc(PATH_BYTES_MAX, 0x61)), 'exactly the limit');
});

t.test('paths that could leave the vault or are ambiguous are refused', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['/a', /absolute/], ['/', /absolute/], ['a/', /ends with/], ['a//b', /empty component/],
    ['.', /\. or \.\./], ['..', /\. or \.\./], ['a/../b', /\. or \.\./], ['a/./b', /\. or \.\./],
    ['a/..', /\. or \.\./], ['./a', /\. or \.\./], ['a\0b', /NUL/],
  ];
  for (const [path, reason] of cases) {
    t.match(validatePath(Buffer.from(path)), reason, JSON.stringify(path));
    t.notOk(isValidPath(Buffer.from(path)));
  }
  t.match(validatePath(Buffer.alloc(PATH_BYTES_MAX + 1, 0x61)), /over the limit/);
});
