import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { certFingerprint, keygen, parseFingerprint, readKeyPair } from './keygen.js';

function tmp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-keygen-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('keygen makes a 0600 P-256 key and a self-signed certificate for the node', async (t) => {
  const dir = join(tmp(t), 'keys');
  const made = await keygen(dir, 'node-a');
  t.equal(statSync(made.keyPath).mode & 0o777, 0o600, 'key mode');
  t.equal(statSync(dir).mode & 0o777, 0o700, 'directory mode');
  const cert = new X509Certificate(readFileSync(made.certPath));
  t.equal(cert.subject, 'CN=node-a');
  t.equal(cert.issuer, 'CN=node-a');
  t.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  t.ok(cert.verify(cert.publicKey), 'self-signed');
  t.match(made.fingerprint, /^sha256:([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  t.equal(made.fingerprint, `sha256:${cert.fingerprint256}`, 'same as OpenSSL computes');
  t.equal(certFingerprint(readFileSync(made.certPath, 'utf8')), made.fingerprint);
  const pair = await readKeyPair(dir);
  t.equal(pair.nodeId, 'node-a');
  t.equal(pair.fingerprint, made.fingerprint);
});

t.test('keygen refuses to replace a key unless forced', async (t) => {
  const dir = tmp(t);
  const first = await keygen(dir, 'node-a');
  await t.rejects(keygen(dir, 'node-a'), { code: 'WIRE_KEY_EXISTS' });
  t.equal(certFingerprint(readFileSync(first.certPath)), first.fingerprint, 'untouched');
  const second = await keygen(dir, 'node-a', { force: true });
  t.not(second.fingerprint, first.fingerprint, 'a new key');
  t.equal(statSync(second.keyPath).mode & 0o777, 0o600);
});

t.test('keygen refuses a bad node id; readKeyPair refuses a key others can read', async (t) => {
  const dir = tmp(t);
  await t.rejects(keygen(dir, ''), { code: 'WIRE_KEY_INVALID' });
  await t.rejects(keygen(dir, 'x'.repeat(129)), { code: 'WIRE_KEY_INVALID' });
  const made = await keygen(dir, 'node-a');
  chmodSync(made.keyPath, 0o644);
  await t.rejects(readKeyPair(dir), { code: 'WIRE_KEY_INVALID', message: /readable by other/ });
});

t.test('parseFingerprint normalises case and refuses anything else', async (t) => {
  const upper = `sha256:${Array.from({ length: 32 }, (_, i) => i.toString(16).padStart(2, '0'))
    .join(':').toUpperCase()}`;
  t.equal(parseFingerprint(` ${upper.toLowerCase().replace('sha256', 'SHA256')} `), upper);
  t.throws(() => parseFingerprint(upper.slice(0, -3)), { code: 'WIRE_FINGERPRINT_INVALID' });
  t.throws(() => parseFingerprint(upper.replace('sha256:', 'sha1:')),
    { code: 'WIRE_FINGERPRINT_INVALID' });
});
