import { UsageError } from '../core/index.js';
import { ControlRequestError, findControlSockets, request } from '../control/index.js';
import type { SyncSummary } from '../sync/index.js';
import { say } from './output.js';
import { ProgressBar } from './progress.js';

/** Options of `understudy sync`. */
export interface SyncCommandOptions {
  target?: string;
  checksum?: boolean;
  delete?: boolean;
  json?: boolean;
  socket?: string;
}

function progressSample(event: Record<string, unknown>): Parameters<ProgressBar['update']>[0] |
  null {
  const n = (key: string): number => (typeof event[key] === 'number' ? event[key] as number : 0);
  const target = String(event['target'] ?? '');
  if (event['event'] === 'phase') {
    return { label: `${target}: pass ${n('pass')}: ${String(event['phase'])}`, files: 0,
      bytes: 0 };
  }
  if (event['event'] !== 'progress') return null;
  return { label: `${target}: pass ${n('pass')}: sending`, files: n('entries'),
    bytes: n('bytes'), totalFiles: n('totalEntries'), totalBytes: n('totalBytes') };
}

/** Asks each daemon here until the vault's source answers (others say SYNC_NOT_SOURCE). */
async function syncOnSource(vault: string, options: SyncCommandOptions,
  onEvent: (event: Record<string, unknown>) => void): Promise<{ targets: SyncSummary[] }> {
  const sockets = options.socket !== undefined ? [options.socket] : findControlSockets();
  if (sockets.length === 0) {
    throw new UsageError('no understudy daemon is running here (no socket in /run/understudy)',
      'run sync on the vault\'s source node, or give --socket');
  }
  const params = { vault, checksum: options.checksum === true, delete: options.delete === true,
    ...(options.target === undefined ? {} : { target: options.target }) };
  let last: unknown = null;
  for (const socket of sockets) {
    try {
      return await request(socket, 'sync', params, onEvent) as { targets: SyncSummary[] };
    } catch (error) {
      if (error instanceof ControlRequestError && error.code === 'SYNC_NOT_SOURCE') {
        last = error;
        continue;
      }
      throw error;
    }
  }
  throw last ?? new UsageError(`no daemon here is the source of vault ${vault}`,
    'run sync on the source node');
}

/**
 * `understudy sync <vault>`: brings the vault's targets to the source's state while writes
 * go on (docs/sync.md). Exit 0 when done, 2 on an error (thrown; main.ts reports it).
 */
export async function syncCommand(vault: string, options: SyncCommandOptions): Promise<number> {
  const bar = new ProgressBar();
  const onEvent = (event: Record<string, unknown>): void => {
    if (options.json === true) {
      say(JSON.stringify({ type: 'progress', ...event }));
      return;
    }
    const sample = progressSample(event);
    if (sample !== null) bar.update(sample);
  };
  let answer: { targets: SyncSummary[] };
  try {
    answer = await syncOnSource(vault, options, onEvent);
  } finally {
    bar.clear();
  }
  if (options.json === true) {
    say(JSON.stringify({ type: 'summary', vault, ...answer }));
    return 0;
  }
  for (const s of answer.targets) {
    say(`vault ${s.vault} -> ${s.target}: synced ${s.entries} entries, ${s.dataBytes} data ` +
      `bytes in ${s.records} records, ${s.passes} pass(es), seqs ${s.beginSeq}..${s.endSeq}, ` +
      `${(s.elapsedMs / 1000).toFixed(1)} s`);
    if (s.keptOnTarget.length > 0) {
      say(`  ${s.keptOnTarget.length} object(s) only on the target were kept there: ` +
        s.keptOnTarget.slice(0, 10).join(', '));
    }
    if (s.remaining > 0) {
      say(`  ${s.remaining} difference(s) seen at the last pass: writes in flight; ` +
        '`understudy verify` when writes pause');
    }
  }
  return 0;
}
