// Confinement (Invariant 5) starts here: vault and replica roots on one node never nest,
// and the state directory (journals, checkpoints, keys) never shares a tree with either.
import type { Findings } from './check-config.js';
import { asList, asMap, asString, type Loose } from './loose.js';
import {
  defaultReplicaPath, isInsideOrEqual, normalizeAbsolute, replicasDir,
} from './config-paths.js';
import type { FieldPath } from './locate.js';

interface TreeRoot {
  readonly node: string;
  readonly dir: string;
  readonly kind: 'vault' | 'replica';
  readonly field: FieldPath;
  readonly label: string;
}

/** Reports nesting between vault paths, replicas, stateDir, keys and the control socket. */
export function checkOverlaps(root: Loose, stateDirRaw: string, findings: Findings): void {
  const stateDir = normalizeAbsolute(stateDirRaw);
  const roots = collectRoots(root, stateDir);
  checkRootsApart(roots, findings);
  for (const tree of roots) checkStateDirApart(tree, stateDir, findings);
  const node = asMap(root['node']) ?? {};
  const tls = asMap(node['tls']) ?? {};
  // Defaults lie below stateDir, which is checked above: only explicit paths are checked.
  const files: [FieldPath, unknown][] = [
    [['node', 'tls', 'key'], tls['key']],
    [['node', 'tls', 'cert'], tls['cert']],
    [['node', 'controlSocket'], node['controlSocket']],
  ];
  for (const [field, file] of files) {
    if (typeof file !== 'string' || !file.startsWith('/')) continue;
    const tree = roots.find((r) => isInsideOrEqual(normalizeAbsolute(file), r.dir));
    if (tree !== undefined) {
      findings.add(field, `${file} is inside the ${tree.label} (${tree.dir})`,
        'a path outside every vault path and replica');
    }
  }
}

function collectRoots(root: Loose, stateDir: string): TreeRoot[] {
  const roots: TreeRoot[] = [];
  const names = new Set<string>();
  for (const [i, vault] of asList(root['vaults']).map(asMap).entries()) {
    const name = asString(vault?.['name']) ?? `#${i}`;
    // A vault declared twice is reported as such, not as overlapping trees.
    if (names.has(name)) continue;
    names.add(name);
    const source = asString(vault?.['source']);
    const path = asString(vault?.['path']);
    if (source !== undefined && path?.startsWith('/') === true) {
      roots.push({ node: source, dir: normalizeAbsolute(path), kind: 'vault',
        field: ['vaults', i, 'path'], label: `path of vault ${name} on ${source}` });
    }
    const targetNodes = new Set<string>();
    for (const [j, target] of asList(vault?.['targets']).map(asMap).entries()) {
      const node = asString(target?.['node']);
      const replica = target?.['replica'] ?? defaultReplicaPath(stateDir, name);
      if (node === undefined || typeof replica !== 'string' || !replica.startsWith('/')) continue;
      // A node named twice is reported as such, not as two overlapping replicas.
      if (targetNodes.has(node)) continue;
      targetNodes.add(node);
      const explicit = target?.['replica'] !== undefined;
      const field = ['vaults', i, 'targets', j, ...(explicit ? ['replica'] : [])];
      roots.push({ node, dir: normalizeAbsolute(replica), kind: 'replica', field,
        label: `replica of vault ${name} on ${node}` });
    }
  }
  return roots;
}

function checkRootsApart(roots: readonly TreeRoot[], findings: Findings): void {
  for (const [i, later] of roots.entries()) {
    for (const earlier of roots.slice(0, i)) {
      if (earlier.node !== later.node) continue;
      if (!isInsideOrEqual(later.dir, earlier.dir) && !isInsideOrEqual(earlier.dir, later.dir)) {
        continue;
      }
      const relation = later.dir === earlier.dir ? 'is the same directory as'
        : isInsideOrEqual(later.dir, earlier.dir) ? 'is inside' : 'contains';
      findings.add(later.field,
        `${later.dir} ${relation} the ${earlier.label} (${earlier.dir})`,
        `vault paths and replicas on node ${later.node} that do not contain one another`);
    }
  }
}

function checkStateDirApart(tree: TreeRoot, stateDir: string, findings: Findings): void {
  if (isInsideOrEqual(stateDir, tree.dir)) {
    findings.add(tree.field, `${tree.dir} contains node.stateDir (${stateDir})`,
      `a ${tree.kind === 'vault' ? 'vault path' : 'replica'} outside node.stateDir, ` +
      'which must never be inside a vault path or replica');
    return;
  }
  if (!isInsideOrEqual(tree.dir, stateDir)) return;
  const replicas = replicasDir(stateDir);
  if (tree.kind === 'replica' && tree.dir !== replicas && isInsideOrEqual(tree.dir, replicas)) {
    return;
  }
  findings.add(tree.field, `${tree.dir} is inside node.stateDir (${stateDir})`,
    tree.kind === 'vault' ? 'a vault path outside node.stateDir'
      : `a replica outside node.stateDir, or below ${replicas}/`);
}
