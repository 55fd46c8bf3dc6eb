import { createHash, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { WireFingerprintInvalidError, WireKeyError } from './errors.js';
import { NODE_ID_BYTES_MAX } from './limits.js';
import { identifierProblem } from './message-codec.js';

/** File name of a node's private key (PKCS#8 PEM, mode 0600) inside its keys directory. */
export const KEY_FILE = 'node.key';
/** File name of a node's self-signed certificate (PEM) inside its keys directory. */
export const CERT_FILE = 'node.crt';

/** What keygen made: where, and the fingerprint peers put in their trusted set. */
export interface KeygenResult {
  keyPath: string;
  certPath: string;
  fingerprint: string;
}

/** A node's key pair as TLS wants it, with the certificate's fingerprint. */
export interface KeyPair {
  key: string;
  cert: string;
  fingerprint: string;
  nodeId: string;
}

const SIGNING = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const FINGERPRINT_PATTERN = /^sha256:([0-9A-F]{2}:){31}[0-9A-F]{2}$/;

/** Formats the SHA-256 of DER bytes as `sha256:AB:CD:...`. */
function formatFingerprint(der: Buffer): string {
  const hex = createHash('sha256').update(der).digest('hex').toUpperCase();
  return `sha256:${hex.match(/../g)?.join(':') ?? ''}`;
}

/** The fingerprint of a PEM certificate, formatted `sha256:AB:CD:...` (upper-case hex). */
export function certFingerprint(pem: string | Buffer): string {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (error) {
    throw new WireKeyError('WIRE_KEY_INVALID', 'not a PEM certificate',
      'give the node.crt written by `understudy keygen`', { cause: error });
  }
  return formatFingerprint(cert.raw);
}

/** The fingerprint of a DER certificate as TLS hands it over (`getPeerCertificate().raw`). */
export function derFingerprint(der: Buffer): string {
  return formatFingerprint(der);
}

/** Checks and normalises a fingerprint from config (case and spaces around it do not matter). */
export function parseFingerprint(text: string): string {
  const normal = text.trim().replace(/^SHA256:/i, 'sha256:');
  const fingerprint = `sha256:${normal.slice('sha256:'.length).toUpperCase()}`;
  if (!normal.startsWith('sha256:') || !FINGERPRINT_PATTERN.test(fingerprint)) {
    throw new WireFingerprintInvalidError(text);
  }
  return fingerprint;
}

function pem(label: string, der: ArrayBuffer): string {
  const lines = Buffer.from(der).toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** A P-256 key and a self-signed certificate for `nodeId` (CN), as PEM. */
async function makeKeyPair(nodeId: string): Promise<{ key: string; cert: string }> {
  // @peculiar/x509 needs the Reflect metadata polyfill; load both only when a key is made.
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as Crypto);
  const keys = await webcrypto.subtle.generateKey(SIGNING, true, ['sign', 'verify']);
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f; // A positive serial number.
  const name = new x509.Name([{ CN: [nodeId] }]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name,
    notBefore: new Date(Date.now() - 24 * 3600 * 1000), // Allows for peers' clock skew.
    // RFC 5280 4.1.2.5: no well-defined expiry; trust is the pinned fingerprint.
    notAfter: new Date('9999-12-31T23:59:59Z'),
    signingAlgorithm: SIGNING,
    keys,
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true)],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { key: pem('PRIVATE KEY', pkcs8), cert: cert.toString('pem') + '\n' };
}

async function writeNew(path: string, text: string, mode: number, force: boolean):
  Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  const file = await open(temporary, 'wx', mode);
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    // link() refuses an existing name: a key is never overwritten without force.
    if (force) await rename(temporary, path);
    else await link(temporary, path);
  } finally {
    if (!force) await unlink(temporary).catch(() => undefined);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/**
 * Makes a node's P-256 private key (mode 0600) and self-signed certificate (CN = nodeId) in
 * `dir` (created 0700). Refuses to replace an existing key or certificate unless `force`.
 */
export async function keygen(dir: string, nodeId: string, options: { force?: boolean } = {}):
  Promise<KeygenResult> {
  const problem = identifierProblem(nodeId, NODE_ID_BYTES_MAX);
  if (problem !== null) {
    throw new WireKeyError('WIRE_KEY_INVALID', `node id "${nodeId}" ${problem}`,
      `a node id is 1 to ${NODE_ID_BYTES_MAX} printable bytes`);
  }
  const keyPath = join(dir, KEY_FILE);
  const certPath = join(dir, CERT_FILE);
  const force = options.force === true;
  for (const path of [keyPath, certPath]) {
    if (!force && await exists(path)) {
      throw new WireKeyError('WIRE_KEY_EXISTS', `${path} already exists`,
        'peers trust the present key; pass --force only to replace it, then give them ' +
        'the new fingerprint');
    }
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { key, cert } = await makeKeyPair(nodeId);
  await writeNew(keyPath, key, 0o600, force);
  await writeNew(certPath, cert, 0o644, force);
  return { keyPath, certPath, fingerprint: certFingerprint(cert) };
}

/** Reads the key pair keygen wrote in `dir`; refuses a key others may read. */
export async function readKeyPair(dir: string): Promise<KeyPair> {
  const keyPath = join(dir, KEY_FILE);
  const certPath = join(dir, CERT_FILE);
  let key: string;
  let cert: string;
  try {
    if (((await stat(keyPath)).mode & 0o077) !== 0) {
      throw new WireKeyError('WIRE_KEY_INVALID', `${keyPath} is readable by other users`,
        `run \`chmod 600 ${keyPath}\`, and make a new key if others may have read it`);
    }
    [key, cert] = await Promise.all([readFile(keyPath, 'utf8'), readFile(certPath, 'utf8')]);
  } catch (error) {
    if (error instanceof WireKeyError) throw error;
    throw new WireKeyError('WIRE_KEY_INVALID', `cannot read the key pair in ${dir}`,
      'run `understudy keygen` to make one', { cause: error });
  }
  const nodeId = new X509Certificate(cert).subject.replace(/^CN=/, '');
  return { key, cert, fingerprint: certFingerprint(cert), nodeId };
}
