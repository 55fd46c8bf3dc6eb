import { mkdirSync } from 'node:fs';
import { UsageError } from '../core/index.js';
import { JournalReader, type JournalBatch } from '../journal/index.js';
import { RECORD_HEADER_BYTES, describeRecord, formatRecord } from '../record/index.js';
import { resolvePath } from './paths.js';
import { say } from './output.js';

export interface JournalDumpOptions {
  from?: string;
  json?: boolean;
}

export interface JournalApplyOptions {
  from?: string;
  json?: boolean;
}

/** Records read per batch by the journal commands. */
const BATCH_RECORDS_MAX = 4096;
/** Framed bytes per batch handed to the applier. */
const BATCH_BYTES_MAX = 32 << 20;

function parseFrom(from: string | undefined): number | undefined {
  if (from === undefined) return undefined;
  const seq = Number(from);
  if (!Number.isSafeInteger(seq) || seq < 1) {
    throw new UsageError(`--from ${from} is not a seq`, 'give an integer >= 1');
  }
  return seq;
}

/** Reads every batch of a journal (not being written) and passes it to `each`. */
async function eachBatch(dir: string, from: number | undefined,
  each: (batch: JournalBatch) => Promise<void>): Promise<JournalBatch['tornAt']> {
  const reader = new JournalReader(dir);
  try {
    let next = from;
    for (;;) {
      const batch = await reader.readBatch({
        ...(next === undefined ? {} : { from: next }),
        maxRecords: BATCH_RECORDS_MAX, maxBytes: BATCH_BYTES_MAX,
      });
      if (batch.records.length > 0) await each(batch);
      if (batch.records.length === 0 || batch.tornAt !== null) return batch.tornAt;
      next = batch.nextSeq;
    }
  } finally {
    await reader.close();
  }
}

function tornNote(tornAt: JournalBatch['tornAt']): void {
  if (tornAt === null) return;
  process.stderr.write(`understudy: the journal ends in an incomplete record at ` +
    `${tornAt.segment} byte ${tornAt.offset} (still being written, or cut by a crash); ` +
    `records before it are intact\n`);
}

/** `understudy journal dump`: prints records, one line (or JSON object) each. */
export async function journalDumpCommand(dir: string, options: JournalDumpOptions):
  Promise<number> {
  const journalDir = resolvePath(dir);
  const tornAt = await eachBatch(journalDir, parseFrom(options.from), async (batch) => {
    const lines: string[] = [];
    for (const record of batch.records) {
      const view = { header: record.header, payload: record.bytes.subarray(RECORD_HEADER_BYTES) };
      lines.push(options.json === true ? JSON.stringify(describeRecord(view)) : formatRecord(view));
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  });
  tornNote(tornAt);
  return 0;
}

/** `understudy journal apply`: replays a journal into a directory, confined beneath it. */
export async function journalApplyCommand(dir: string, target: string,
  options: JournalApplyOptions): Promise<number> {
  const journalDir = resolvePath(dir);
  mkdirSync(target, { recursive: true });
  const root = resolvePath(target);
  const { Applier } = await import('../replayer/index.js');
  const applier = Applier.open(root);
  const totals = { applied: 0, skipped: 0, errors: 0, lastSeq: 0 };
  let stoppedAt: number | undefined;
  try {
    await eachBatch(journalDir, parseFrom(options.from), async (batch) => {
      if (stoppedAt !== undefined) return;
      const result = await applier.apply(Buffer.concat(batch.records.map((r) => r.bytes)));
      totals.applied += result.applied;
      totals.skipped += result.skipped;
      totals.errors += result.errors.length;
      if (result.lastSeq > 0) totals.lastSeq = result.lastSeq;
      for (const error of result.errors) {
        process.stderr.write(`understudy: seq ${error.seq} ${error.kind} ${error.path}: ` +
          `${error.code}: ${error.message}\n`);
      }
      stoppedAt = result.stoppedAt;
    });
  } finally {
    applier.close();
  }
  if (options.json === true) {
    say(JSON.stringify({ ...totals, ...(stoppedAt === undefined ? {} : { stoppedAt }) }));
  } else {
    say(`understudy: applied ${totals.applied} records up to seq ${totals.lastSeq} into ${root}` +
      ` (${totals.skipped} already applied or superseded, ${totals.errors} errors)`);
    if (stoppedAt !== undefined) say(`understudy: stopped at seq ${stoppedAt}: see the error above`);
  }
  return totals.errors > 0 || stoppedAt !== undefined ? 1 : 0;
}
