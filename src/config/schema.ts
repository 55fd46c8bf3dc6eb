// The JSON Schema (draft-07, checked by ajv) of a configuration file, with its defaults.
// `description` doubles as the "expected ..." text of an error, so keep it a noun phrase.

const NODE_ID = {
  type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$',
  description: 'a node id: 1-63 of a-z, 0-9 and "-", starting with a letter or digit',
} as const;

const ABSOLUTE_PATH = {
  type: 'string', minLength: 1, description: 'an absolute path',
} as const;

const HOST_PORT_LIST = {
  type: 'array', minItems: 1, items: { type: 'string', description: 'a "host:port" string' },
  description: 'a list of at least one "host:port"',
} as const;

const SIZE = {
  type: ['integer', 'string'], minimum: 0,
  description: 'a number of bytes or a size such as "10GiB"',
} as const;

const GLOB_LIST = {
  type: 'array', items: { type: 'string', minLength: 1, description: 'a glob' },
  description: 'a list of globs relative to the vault root',
} as const;

/** Minimum of `journalBytesMax`: a journal smaller than this could not hold one segment. */
export const JOURNAL_BYTES_MIN = 16 * 2 ** 20;

/** Default `vaults[].journalBytesMax`. */
export const JOURNAL_BYTES_MAX_DEFAULT = '1GiB';

const NODE = {
  type: 'object', additionalProperties: false, required: ['id', 'stateDir'],
  description: 'a mapping with id, stateDir, listen, tls, insecure, heartbeatIntervalMs, ' +
    'controlSocket',
  properties: {
    id: NODE_ID,
    stateDir: ABSOLUTE_PATH,
    listen: HOST_PORT_LIST,
    tls: {
      type: 'object', additionalProperties: false, description: 'a mapping with key and cert',
      properties: { key: ABSOLUTE_PATH, cert: ABSOLUTE_PATH },
    },
    insecure: { type: 'boolean', default: false, description: 'true or false' },
    heartbeatIntervalMs: {
      type: 'integer', minimum: 10, maximum: 60000, default: 500,
      description: 'a whole number of milliseconds from 10 to 60000',
    },
    controlSocket: ABSOLUTE_PATH,
  },
} as const;

const PEER = {
  type: 'object', additionalProperties: false, required: ['id', 'addresses'],
  description: 'a mapping with id, addresses and fingerprint',
  properties: {
    id: NODE_ID,
    addresses: HOST_PORT_LIST,
    fingerprint: {
      type: 'string', pattern: '^sha256:(([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}|[0-9A-Fa-f]{64})$',
      description: '"sha256:" then 32 hex pairs, with or without ":" between them',
    },
  },
} as const;

const TARGET = {
  type: 'object', additionalProperties: false, required: ['node'],
  description: 'a mapping with node and replica',
  properties: { node: NODE_ID, replica: ABSOLUTE_PATH },
} as const;

const VAULT = {
  type: 'object', additionalProperties: false, required: ['name', 'source', 'path', 'targets'],
  description: 'a mapping with name, source, path, targets, include, exclude, mode, ' +
    'journalBytesMax, sync',
  properties: {
    name: {
      type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$',
      description: 'a vault name: 1-63 of a-z, 0-9, "_" and "-", starting with a letter or digit',
    },
    source: NODE_ID,
    path: ABSOLUTE_PATH,
    targets: {
      type: 'array', minItems: 1, items: TARGET, description: 'a list of at least one target',
    },
    include: { ...GLOB_LIST, default: ['**'] },
    exclude: { ...GLOB_LIST, default: [] },
    mode: { enum: ['async', 'sync'], default: 'async', description: 'async or sync' },
    journalBytesMax: { ...SIZE, default: JOURNAL_BYTES_MAX_DEFAULT },
    sync: {
      type: 'object', additionalProperties: false, default: {},
      description: 'a mapping with fsyncTimeoutMs and onTimeout',
      properties: {
        fsyncTimeoutMs: {
          type: 'integer', minimum: 1, maximum: 3600000, default: 5000,
          description: 'a whole number of milliseconds from 1 to 3600000',
        },
        onTimeout: {
          enum: ['fail', 'degrade'], default: 'fail',
          description: 'fail (fsync returns EIO) or degrade (the vault drops to async)',
        },
      },
    },
  },
} as const;

/** The schema of a whole configuration file; ajv fills in each `default`. */
export const CONFIG_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object', additionalProperties: false, required: ['node'],
  description: 'a mapping with node, peers and vaults',
  properties: {
    node: NODE,
    peers: { type: 'array', items: PEER, default: [], description: 'a list of peers' },
    vaults: { type: 'array', items: VAULT, default: [], description: 'a list of vaults' },
  },
} as const;
