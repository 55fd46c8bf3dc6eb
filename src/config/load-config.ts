import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { checkConfig, type Finding } from './check-config.js';
import { ConfigInvalidError, type ConfigProblem } from './errors.js';
import { formatFieldPath, fromJsonPointer, locateField } from './locate.js';
import { resolveConfig, type RawConfig } from './resolve-config.js';
import { CONFIG_SCHEMA } from './schema.js';
import type { NodeConfig } from './types.js';

/** Options of `loadConfig`; `nodeId` (from `--node`) overrides `node.id` of the file. */
export interface LoadConfigOptions {
  readonly nodeId?: string;
}

let validator: ValidateFunction | undefined;

function validate(data: unknown): readonly ErrorObject[] {
  validator ??= new Ajv({ allErrors: true, useDefaults: true, verbose: true,
    allowUnionTypes: true }).compile(CONFIG_SCHEMA);
  return validator(data) ? [] : validator.errors ?? [];
}

/**
 * Reads and checks a configuration file synchronously (it runs once, at start-up) and
 * resolves it for one node. Every mistake in the file is reported in one ConfigInvalidError.
 */
export function loadConfig(file: string, opts: LoadConfigOptions = {}): NodeConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    const problem = code === 'ENOENT' ? 'no such file'
      : `cannot be read (${code}: ${(error as Error).message})`;
    throw new ConfigInvalidError(file,
      [{ file, line: 0, col: 0, field: '', problem, expected: 'a readable YAML file' }],
      'check the path given to --config; examples/understudy.yaml is a commented starting point',
      { cause: error });
  }
  return parseConfig(text, file, opts);
}

/** Checks configuration text as `loadConfig` does; `file` names it in messages. */
export function parseConfig(text: string, file: string, opts: LoadConfigOptions = {}):
  NodeConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigInvalidError(file, doc.errors.map((error) => {
      const { line, col } = lineCounter.linePos(error.pos[0]);
      return { file, line, col, field: '', problem: `YAML syntax: ${firstLine(error.message)}`,
        expected: 'valid YAML' };
    }));
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  const schemaErrors = validate(data);
  const { findings, nodeId } = checkConfig(data, opts.nodeId);
  const schemaFindings = schemaErrors.map((error) => schemaFinding(error));
  // A field the schema rejected is reported once: semantic findings below it are echoes.
  const rejected = schemaFindings.map((finding) => formatFieldPath(finding.path));
  const isEcho = (finding: Finding): boolean => rejected.some((field) => {
    const path = formatFieldPath(finding.path);
    return field === '' || path === field || path.startsWith(`${field}.`) ||
      path.startsWith(`${field}[`);
  });
  const problems = [...schemaFindings, ...findings.filter((finding) => !isEcho(finding))]
    .map((finding) => toProblem(finding, file, doc, lineCounter));
  if (problems.length > 0 || nodeId === undefined) {
    throw new ConfigInvalidError(file, sortProblems(problems));
  }
  return resolveConfig(data as RawConfig, nodeId, resolve(file));
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}

function toProblem(finding: Finding, file: string, doc: Document, lineCounter: LineCounter):
  ConfigProblem {
  const { line, col } = locateField(doc, lineCounter, finding.path, finding.atKey);
  return { file, line, col, field: formatFieldPath(finding.path), problem: finding.problem,
    expected: finding.expected };
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.sort((a, b) => a.line - b.line || a.col - b.col);
}

/** Turns one ajv error into a finding that names the field and what it should be. */
function schemaFinding(error: ErrorObject): Finding {
  const path = fromJsonPointer(error.instancePath);
  const schema = (error.parentSchema ?? {}) as {
    description?: string; properties?: Record<string, { description?: string }>;
  };
  const expected = schema.description ?? error.message ?? 'a valid value';
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params['additionalProperty']);
      const known = Object.keys(schema.properties ?? {}).join(', ');
      return { path: [...path, key], atKey: true, problem: `unknown field "${key}"`,
        expected: `one of ${known}` };
    }
    case 'required': {
      const key = String(params['missingProperty']);
      return { path: [...path, key], problem: 'missing',
        expected: schema.properties?.[key]?.description ?? 'a value' };
    }
    case 'pattern':
      return { path, problem: `${describe(error.data)} is not in the expected form`, expected };
    case 'enum':
      return { path, problem: `${describe(error.data)} is not one of the allowed values`,
        expected };
    case 'type':
      return { path, problem: `${describe(error.data)} is not ${String(params['type'])}`,
        expected };
    default:
      return { path, problem: `${describe(error.data)} ${error.message ?? 'is invalid'}`,
        expected };
  }
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value';
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (typeof value === 'object') return 'a mapping';
  return JSON.stringify(value);
}
