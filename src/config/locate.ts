import { isMap, isScalar, isSeq, type Document, type LineCounter } from 'yaml';

/** A field's place in the data: keys and list indexes from the root. */
export type FieldPath = readonly (string | number)[];

/** Renders `['vaults', 0, 'targets', 1, 'node']` as `vaults[0].targets[1].node`. */
export function formatFieldPath(path: FieldPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out;
}

/** Converts an ajv instancePath (`/vaults/0/name`) into a FieldPath. */
export function fromJsonPointer(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer.slice(1).split('/').map((raw) => {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    return /^(0|[1-9]\d*)$/.test(segment) ? Number(segment) : segment;
  });
}

/**
 * Finds the 1-based line and column of a field in the YAML document: its value, or its key
 * when `atKey`. A field that is absent (a default) resolves to its nearest present ancestor.
 */
export function locateField(doc: Document, lineCounter: LineCounter, path: FieldPath,
  atKey = false): { line: number; col: number } {
  let node: unknown = doc.contents;
  let offset = rangeStart(node) ?? 0;
  for (const [depth, segment] of path.entries()) {
    const last = depth === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === segment);
      if (pair === undefined) break;
      const keyOffset = rangeStart(pair.key);
      if (last && atKey && keyOffset !== undefined) {
        offset = keyOffset;
        break;
      }
      node = pair.value;
      offset = rangeStart(node) ?? keyOffset ?? offset;
    } else if (isSeq(node) && typeof segment === 'number') {
      node = node.items[segment];
      if (node === undefined) break;
      offset = rangeStart(node) ?? offset;
    } else {
      break;
    }
  }
  return lineCounter.linePos(offset);
}

function rangeStart(node: unknown): number | undefined {
  if (node === null || typeof node !== 'object' || !('range' in node)) return undefined;
  const range = (node as { range?: readonly number[] | null }).range;
  return range?.[0] ?? undefined;
}
