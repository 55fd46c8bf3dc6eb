// Checks the schema cannot express. The data may also have failed the schema, so every
// check reads it defensively and skips what is malformed: the schema already reported it.
import { posix } from 'node:path';
import { ConfigValueInvalidError } from './errors.js';
import type { FieldPath } from './locate.js';
import { HOST_PORT_EXPECTED, parseHostPort } from './parse-host-port.js';
import { SIZE_EXPECTED, parseSize } from './parse-size.js';
import { JOURNAL_BYTES_MIN } from './schema.js';
import { checkOverlaps } from './check-overlaps.js';
import { asList, asMap, asString, type Loose } from './loose.js';

/** One semantic mistake, located by field path. */
export interface Finding {
  readonly path: FieldPath;
  readonly atKey?: boolean;
  readonly problem: string;
  readonly expected: string;
}

/** Collects findings; `add` is the only way to report one. */
export class Findings {
  readonly list: Finding[] = [];
  add(path: FieldPath, problem: string, expected: string, atKey = false): void {
    this.list.push({ path, problem, expected, atKey });
  }
}

const NODE_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * Runs every semantic check on schema-checked (possibly invalid) data and returns the
 * findings and the id of the node this configuration is for.
 */
export function checkConfig(data: unknown, nodeIdOverride?: string): {
  findings: Finding[]; nodeId: string | undefined;
} {
  const findings = new Findings();
  const root = asMap(data) ?? {};
  const node = asMap(root['node']) ?? {};
  const insecure = node['insecure'] === true;
  const nodeId = selectNode(root, nodeIdOverride, findings);
  const peerIds = checkPeers(root, insecure, findings);
  checkListen(root, nodeId, findings);
  checkAbsolutePaths(root, findings);
  checkVaults(root, nodeId, peerIds, findings);
  const stateDir = asString(node['stateDir']);
  if (stateDir !== undefined && posix.isAbsolute(stateDir)) checkOverlaps(root, stateDir, findings);
  return { findings: findings.list, nodeId };
}

function vaultNodes(root: Loose): Set<string> {
  const ids = new Set<string>();
  for (const vault of asList(root['vaults']).map(asMap)) {
    const source = asString(vault?.['source']);
    if (source !== undefined) ids.add(source);
    for (const target of asList(vault?.['targets']).map(asMap)) {
      const id = asString(target?.['node']);
      if (id !== undefined) ids.add(id);
    }
  }
  return ids;
}

function selectNode(root: Loose, override: string | undefined, findings: Findings):
  string | undefined {
  const fileId = asString(asMap(root['node'])?.['id']);
  // An invalid node.id is the schema's to report; who this node is then stays unknown.
  if (override === undefined || override === fileId) {
    return fileId !== undefined && NODE_ID_PATTERN.test(fileId) ? fileId : undefined;
  }
  const where = ['node', 'id'];
  if (!NODE_ID_PATTERN.test(override)) {
    findings.add(where, `--node "${override}" is not a node id`,
      'a node id: 1-63 of a-z, 0-9 and "-", starting with a letter or digit');
    return undefined;
  }
  const peerIds = asList(root['peers']).map((p) => asString(asMap(p)?.['id']));
  if (!peerIds.includes(override) && !vaultNodes(root).has(override)) {
    findings.add(where, `--node ${override} is not declared in this file`,
      'node.id, the id of an entry in peers, or a node named by a vault');
  }
  return override;
}

function checkPeers(root: Loose, insecure: boolean, findings: Findings): Set<string> {
  const firstIndex = new Map<string, number>();
  for (const [i, peer] of asList(root['peers']).map(asMap).entries()) {
    const id = asString(peer?.['id']);
    if (peer === undefined || id === undefined) continue;
    const earlier = firstIndex.get(id);
    if (earlier !== undefined) {
      findings.add(['peers', i, 'id'], `peer ${id} is declared twice (also peers[${earlier}])`,
        'each peer id once');
    } else {
      firstIndex.set(id, i);
    }
    if (peer['fingerprint'] === undefined && !insecure) {
      findings.add(['peers', i], `peer ${id} has no fingerprint`,
        'fingerprint: "sha256:AB:CD:..." (its certificate), or node.insecure: true');
    }
    for (const [j, address] of asList(peer['addresses']).entries()) {
      checkHostPort(['peers', i, 'addresses', j], address, findings);
    }
  }
  return new Set(firstIndex.keys());
}

function checkListen(root: Loose, nodeId: string | undefined, findings: Findings): void {
  const node = asMap(root['node']);
  if (node === undefined) return;
  if (node['listen'] === undefined) {
    const self = asList(root['peers']).some((p) => asMap(p)?.['id'] === nodeId);
    if (!self && nodeId !== undefined) {
      findings.add(['node'], `node ${nodeId} has no listen addresses`,
        `node.listen: ["host:port"], or an entry in peers with id ${nodeId}`);
    }
    return;
  }
  for (const [i, address] of asList(node['listen']).entries()) {
    checkHostPort(['node', 'listen', i], address, findings);
  }
}

function checkHostPort(path: FieldPath, value: unknown, findings: Findings): void {
  if (typeof value !== 'string') return;
  try {
    parseHostPort(value);
  } catch (error) {
    if (!(error instanceof ConfigValueInvalidError)) throw error;
    findings.add(path, `"${value}": ${error.problem}`, HOST_PORT_EXPECTED);
  }
}

function checkAbsolutePaths(root: Loose, findings: Findings): void {
  const node = asMap(root['node']);
  const tls = asMap(node?.['tls']);
  const candidates: [FieldPath, unknown][] = [
    [['node', 'stateDir'], node?.['stateDir']],
    [['node', 'controlSocket'], node?.['controlSocket']],
    [['node', 'tls', 'key'], tls?.['key']],
    [['node', 'tls', 'cert'], tls?.['cert']],
  ];
  for (const [i, vault] of asList(root['vaults']).map(asMap).entries()) {
    candidates.push([['vaults', i, 'path'], vault?.['path']]);
    for (const [j, target] of asList(vault?.['targets']).map(asMap).entries()) {
      candidates.push([['vaults', i, 'targets', j, 'replica'], target?.['replica']]);
    }
  }
  for (const [path, value] of candidates) {
    if (typeof value === 'string' && value !== '' && !posix.isAbsolute(value)) {
      findings.add(path, `"${value}" is a relative path`, 'an absolute path (starting with /)');
    }
  }
}

function checkVaults(root: Loose, nodeId: string | undefined, peerIds: Set<string>,
  findings: Findings): void {
  // Without a valid id for this node, membership cannot be judged: skip those checks.
  const known = nodeId === undefined ? undefined : new Set([...peerIds, nodeId]);
  const knownText = [...(known ?? [])].sort().join(', ');
  const firstIndex = new Map<string, number>();
  for (const [i, vault] of asList(root['vaults']).map(asMap).entries()) {
    if (vault === undefined) continue;
    const name = asString(vault['name']);
    const earlier = name === undefined ? undefined : firstIndex.get(name);
    if (name !== undefined && earlier !== undefined) {
      findings.add(['vaults', i, 'name'],
        `vault ${name} is declared twice (also vaults[${earlier}])`, 'each vault name once');
    } else if (name !== undefined) {
      firstIndex.set(name, i);
    }
    const source = asString(vault['source']);
    if (source !== undefined && known !== undefined && !known.has(source)) {
      findings.add(['vaults', i, 'source'], `node ${source} is neither this node nor a peer`,
        `node.id or a declared peer id (${knownText})`);
    }
    checkTargets(vault, i, source, known, knownText, findings);
    checkGlobs(vault, i, findings);
    checkJournalBytes(vault, i, findings);
  }
}

function checkTargets(vault: Loose, i: number, source: string | undefined,
  known: Set<string> | undefined, knownText: string, findings: Findings): void {
  const seen = new Map<string, number>();
  for (const [j, target] of asList(vault['targets']).map(asMap).entries()) {
    const id = asString(target?.['node']);
    if (id === undefined) continue;
    const path = ['vaults', i, 'targets', j, 'node'];
    if (id === source) {
      findings.add(path, `node ${id} is the source of this vault`,
        'a target other than the source');
    } else if (known !== undefined && !known.has(id)) {
      findings.add(path, `node ${id} is neither this node nor a peer`,
        `node.id or a declared peer id (${knownText})`);
    }
    const earlier = seen.get(id);
    if (earlier !== undefined) {
      findings.add(path, `node ${id} is a target twice (also targets[${earlier}])`,
        'each target node once per vault');
    }
    seen.set(id, j);
  }
}

function checkGlobs(vault: Loose, i: number, findings: Findings): void {
  for (const key of ['include', 'exclude']) {
    for (const [j, glob] of asList(vault[key]).entries()) {
      if (typeof glob !== 'string') continue;
      if (glob.startsWith('/') || glob.split('/').includes('..')) {
        findings.add(['vaults', i, key, j], `"${glob}" leaves the vault root`,
          'a glob relative to the vault root, without a leading "/" or ".." segments');
      }
    }
  }
}

function checkJournalBytes(vault: Loose, i: number, findings: Findings): void {
  const value = vault['journalBytesMax'];
  if (typeof value !== 'string' && typeof value !== 'number') return;
  const path = ['vaults', i, 'journalBytesMax'];
  try {
    const bytes = parseSize(value);
    if (bytes < JOURNAL_BYTES_MIN) {
      findings.add(path, `${JSON.stringify(value)} is ${bytes} bytes, below the minimum`,
        `at least 16MiB (${JOURNAL_BYTES_MIN} bytes)`);
    }
  } catch (error) {
    if (!(error instanceof ConfigValueInvalidError)) throw error;
    findings.add(path, `${JSON.stringify(value)}: ${error.problem}`, SIZE_EXPECTED);
  }
}
