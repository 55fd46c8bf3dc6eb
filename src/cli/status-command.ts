import { UsageError } from '../core/index.js';
import { findControlSockets, request } from '../control/index.js';
import type { NodeStatus, StatusReply } from '../daemon/index.js';
import { say } from './output.js';

/** Options of `understudy status`. */
export interface StatusCommandOptions {
  json?: boolean;
  socket?: string;
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'number' && !Number.isInteger(value)) return value.toFixed(1);
  return String(value);
}

/** The last error with its age: it stays after recovery, so the age tells old from new. */
function errorCell(error: string | null, atMs: number | null | undefined, nowMs: number): string {
  if (error === null) return '-';
  if (atMs === null || atMs === undefined) return error;
  const s = Math.max(0, Math.round((nowMs - atMs) / 1000));
  const age = s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
  return `${error} (${age} ago)`;
}

function bytesText(bytes: number | null): string {
  if (bytes === null) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The rows of the status table: one per (vault, target) on a source, one per received vault. */
export function statusRows(nodes: readonly NodeStatus[], nowMs = Date.now()): string[][] {
  const rows: string[][] = [['NODE', 'VAULT', 'ROLE', 'PEER', 'STATE', 'JOURNAL', 'ACKED',
    'LAG', 'LAG BYTES', 'LAG S', 'ADDRESS', 'LAST ERROR']];
  for (const node of nodes) {
    for (const vault of node.vaults) {
      if (vault.role === 'source') {
        const mode = vault.modeNote === null ? vault.mode : `${vault.mode}*`;
        for (const t of vault.targets) {
          const percent = t.sync?.percent ?? null;
          const state = t.sync === null || t.sync === undefined ? t.state
            : `syncing ${percent === null ? t.sync.phase : `${Math.floor(percent)}%`}`;
          rows.push([node.node, vault.vault, `source/${mode}`, t.node, state,
            cell(vault.journal.lastSeq), cell(t.ackedSeq), cell(t.lagRecords),
            bytesText(t.lagBytes), cell(t.lagSeconds), cell(t.address),
            errorCell(t.lastError, t.lastErrorAtMs, nowMs)]);
        }
      } else {
        rows.push([node.node, vault.vault, vault.readOnly ? 'target/ro' : 'target', vault.source,
          vault.state, '-', cell(vault.checkpointSeq), '-', '-', '-', '-',
          errorCell(vault.lastError, vault.lastErrorAtMs, nowMs)]);
      }
    }
  }
  return rows;
}

/** One line per sync or verify in progress (and per last sync), under the table. */
export function activityLines(nodes: readonly NodeStatus[], nowMs: number): string[] {
  const lines: string[] = [];
  const since = (atMs: number): string => `${Math.max(0, Math.round((nowMs - atMs) / 1000))} s`;
  for (const node of nodes) {
    for (const vault of node.vaults) {
      if (vault.role !== 'source') continue;
      for (const t of vault.targets) {
        const who = `${vault.vault} -> ${t.node}`;
        const sync = t.sync;
        if (sync !== null && sync !== undefined) {
          const percent = sync.percent === null ? '' : ` (${sync.percent.toFixed(1)}%)`;
          lines.push(`~ ${who}: sync pass ${sync.pass}, ${sync.phase}: ${sync.entries}/` +
            `${sync.totalEntries} files, ${bytesText(sync.bytes)}/${bytesText(sync.totalBytes)}` +
            `${percent}, running for ${since(sync.startedAtMs)}`);
        }
        if (t.verify !== null && t.verify !== undefined) {
          lines.push(`~ ${who}: verify ${t.verify.phase}, running for ` +
            `${since(t.verify.startedAtMs)}`);
        }
        const last = t.lastSync;
        if (last !== null && last !== undefined && (sync === null || sync === undefined)) {
          lines.push(`  ${who}: last sync ${since(last.endedAtMs)} ago: ${last.entries} ` +
            `files, ${bytesText(last.dataBytes)} in ${(last.elapsedMs / 1000).toFixed(1)} s` +
            (last.setAside > 0 ? `, ${last.setAside} set aside in ${last.setAsideFolder} ` +
              '(on the target)' : ''));
        }
      }
    }
  }
  return lines;
}

/** Aligns rows into columns. */
export function formatTable(rows: readonly string[][]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((value, i) => { widths[i] = Math.max(widths[i] ?? 0, value.length); });
  }
  return rows.map((row) => row.map((value, i) =>
    (i === row.length - 1 ? value : value.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

/**
 * `understudy status`: asks the daemon(s) on this machine (every /run/understudy/*.sock, or
 * --socket) for every vault's state and lag, and prints a table or JSON.
 */
export async function statusCommand(options: StatusCommandOptions): Promise<number> {
  const sockets = options.socket !== undefined ? [options.socket] : findControlSockets();
  if (sockets.length === 0) {
    throw new UsageError('no understudy daemon is running here (no socket in /run/understudy)',
      'start one with `understudy serve --config <file>` or `understudy demo`, or give --socket');
  }
  const nodes: NodeStatus[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const socket of sockets) {
    try {
      const reply = await request(socket, 'status') as StatusReply;
      for (const node of reply.nodes) {
        // A node answers on two sockets (its configured one and /run/understudy/<id>.sock).
        const key = `${node.node}/${node.pid}`;
        if (!seen.has(key)) nodes.push(node);
        seen.add(key);
      }
    } catch (error) {
      problems.push(`${socket}: ${(error as Error).message}`);
    }
  }
  if (nodes.length === 0) {
    throw new UsageError(`no daemon answered: ${problems.join('; ')}`,
      'is `understudy serve` running? remove stale sockets in /run/understudy');
  }
  if (options.json === true) {
    say(JSON.stringify({ nodes, problems }, null, 2));
  } else {
    say(formatTable(statusRows(nodes)));
    for (const line of activityLines(nodes, Date.now())) say(line);
    for (const node of nodes) {
      for (const vault of node.vaults) {
        if (vault.role === 'source' && vault.modeNote !== null) {
          say(`* ${vault.vault}: ${vault.modeNote}`);
        }
      }
    }
    for (const problem of problems) process.stderr.write(`understudy: ${problem}\n`);
  }
  return 0;
}
