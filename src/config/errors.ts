import { UnderstudyError } from '../core/index.js';

/** One mistake in a configuration file, located at the YAML node it concerns. */
export interface ConfigProblem {
  readonly file: string;
  /** 1-based; 0 when the mistake has no place in the file (such as a missing file). */
  readonly line: number;
  /** 1-based; 0 when `line` is 0. */
  readonly col: number;
  /** Dotted field path such as `vaults[0].targets[1].node`; empty for the whole file. */
  readonly field: string;
  readonly problem: string;
  readonly expected: string;
}

/** Formats one problem as `<file>:<line>:<col>: <field>: <problem>; expected <expected>`. */
export function formatConfigProblem(p: ConfigProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.col}` : p.file;
  const field = p.field === '' ? '(file)' : p.field;
  return `${where}: ${field}: ${p.problem}; expected ${p.expected}`;
}

/** Every mistake found in one configuration file, reported together. */
export class ConfigInvalidError extends UnderstudyError {
  readonly code = 'CONFIG_INVALID';

  constructor(readonly file: string, readonly problems: readonly ConfigProblem[],
    hint = 'fix each place listed; docs/config.md describes every field and rule',
    options?: { cause?: unknown }) {
    super(ConfigInvalidError.describe(file, problems), hint, options);
  }

  private static describe(file: string, problems: readonly ConfigProblem[]): string {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    return `configuration ${file} is invalid (${count}):\n` +
      problems.map((p) => `  ${formatConfigProblem(p)}`).join('\n');
  }
}

/** One value (a size, an address) that does not parse; `loadConfig` adds the file position. */
export class ConfigValueInvalidError extends UnderstudyError {
  readonly code = 'CONFIG_VALUE_INVALID';

  constructor(readonly value: unknown, readonly problem: string, readonly expected: string) {
    super(`${JSON.stringify(value)}: ${problem}; expected ${expected}`,
      `write it as ${expected}`);
  }
}
