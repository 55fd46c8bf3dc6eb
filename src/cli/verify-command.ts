import { UsageError } from '../core/index.js';
import { ControlRequestError, findControlSockets, request } from '../control/index.js';
import type { VerifyReport } from '../daemon/index.js';
import { say } from './output.js';
import { ProgressBar } from './progress.js';

/** Options of `understudy verify`. */
export interface VerifyCommandOptions {
  target?: string;
  json?: boolean;
  /** False with --no-checksum: compare size and mtime only, not content. */
  checksum?: boolean;
  socket?: string;
}

function progressSample(event: Record<string, unknown>): Parameters<ProgressBar['update']>[0] |
  null {
  const n = (key: string): number | undefined =>
    (typeof event[key] === 'number' ? event[key] as number : undefined);
  const target = String(event['target'] ?? '');
  if (event['event'] === 'phase') {
    const phase = String(event['phase']);
    if (phase === 'done') return null;
    return { label: phase === 'target' ? `${target}: waiting for the target's scan`
      : `${target}: scanning the source`, files: 0, bytes: 0 };
  }
  if (event['event'] !== 'progress') return null;
  if (event['side'] === 'target') {
    return { label: event['phase'] === 'waiting'
      ? `${target}: target catching up (at seq ${n('targetCheckpointSeq') ?? 0})`
      : `${target}: receiving the target's manifest`, files: n('entries') ?? 0, bytes: 0 };
  }
  const totalFiles = n('totalEntries');
  const totalBytes = n('totalBytes');
  return { label: `${target}: scanning the source`, files: n('entries') ?? 0,
    bytes: n('bytes') ?? 0, ...(totalFiles === undefined ? {} : { totalFiles }),
    ...(totalBytes === undefined ? {} : { totalBytes }) };
}

/** Asks each daemon here until the vault's source answers (others say VERIFY_NOT_SOURCE). */
async function verifyOnSource(vault: string, options: VerifyCommandOptions,
  onEvent: (event: Record<string, unknown>) => void): Promise<VerifyReport> {
  const sockets = options.socket !== undefined ? [options.socket] : findControlSockets();
  if (sockets.length === 0) {
    throw new UsageError('no understudy daemon is running here (no socket in /run/understudy)',
      'run verify on the vault\'s source node, or give --socket');
  }
  const params = { vault, withHashes: options.checksum !== false,
    ...(options.target === undefined ? {} : { target: options.target }) };
  let last: unknown = null;
  for (const socket of sockets) {
    try {
      return await request(socket, 'verify', params, onEvent) as VerifyReport;
    } catch (error) {
      if (error instanceof ControlRequestError && error.code === 'VERIFY_NOT_SOURCE') {
        last = error;
        continue;
      }
      throw error;
    }
  }
  throw last ?? new UsageError(`no daemon here is the source of vault ${vault}`,
    'run verify on the source node');
}

/**
 * `understudy verify <vault>`: compares the vault with its targets' replicas (content by
 * block hashes unless --no-checksum) and lists every difference. Exit 0 identical, 1
 * differences, 2 error (thrown; main.ts reports it). Changes nothing.
 */
export async function verifyCommand(vault: string, options: VerifyCommandOptions):
  Promise<number> {
  const bar = new ProgressBar();
  const onEvent = (event: Record<string, unknown>): void => {
    if (options.json === true) {
      say(JSON.stringify({ type: 'progress', ...event }));
      return;
    }
    const sample = progressSample(event);
    if (sample !== null) bar.update(sample);
  };
  let report: VerifyReport;
  try {
    report = await verifyOnSource(vault, options, onEvent);
  } finally {
    bar.clear();
  }
  if (options.json === true) {
    say(JSON.stringify({ type: 'summary', ...report }));
    return report.identical ? 0 : 1;
  }
  for (const target of report.targets) {
    const head = `vault ${report.vault} -> ${target.target}: ${target.entries} entries, ` +
      `compared at seq ${target.atSeq} (target at ${target.targetAtSeq})`;
    say(target.identical ? `${head}: identical` :
      `${head}: ${target.differences.length} difference(s)`);
    for (const d of target.differences) say(`  ${d.kind.padEnd(8)} ${d.path}  ${d.detail}`);
    if (target.writesDuringRecheck > 0 && !target.identical) {
      say(`  note: ${target.writesDuringRecheck} record(s) were written during the re-check; ` +
        'run verify again when writes pause');
    }
  }
  if (!report.withHashes) say('note: --no-checksum: content compared by size and mtime only');
  if (!report.xattrsCompared) say('note: xattrs not compared (the addon lacks listXattrs)');
  return report.identical ? 0 : 1;
}
