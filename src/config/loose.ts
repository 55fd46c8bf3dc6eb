// Defensive readers for parsed YAML that may have failed the schema.

/** A loosely typed view of parsed YAML. */
export type Loose = Record<string, unknown>;

/** The value as a mapping, or undefined. */
export function asMap(value: unknown): Loose | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? value as Loose : undefined;
}

/** The value as a list, or an empty list. */
export function asList(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** The value as a string, or undefined. */
export function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
