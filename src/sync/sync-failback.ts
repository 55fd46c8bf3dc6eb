import { copyFile, lstat, mkdir, readlink, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { formatRecord, type Payload, type RecordHeader } from '../record/index.js';

/** One record of the returning node's journal (src/journal's JournalReader yields these). */
export interface TailRecord {
  header: RecordHeader;
  payload: Payload;
}

/** What was set aside of a returning node's unmirrored tail. */
export interface UnmirroredTail {
  /** `<stateDir>/set-aside/<vault>/<timestamp>-unmirrored`. */
  folder: string;
  /** Records after `mirroredSeq`: the writes the new source never saw. */
  records: number;
  firstSeq: number;
  lastSeq: number;
  /** Paths those records touched, copied from the vault as it is now. */
  copied: string[];
  /** Paths touched that no longer exist (removed by a later record of the tail). */
  gone: string[];
}

/** What `setAsideUnmirrored` needs. */
export interface SetAsideUnmirroredOptions {
  vault: string;
  stateDir: string;
  /** The returning node's vault tree (its backing dir, not mounted). */
  vaultDir: string;
  /** The journal's records, in seq order (all of them, or from mirroredSeq + 1). */
  records: AsyncIterable<TailRecord>;
  /** The checkpoint of the replica the new source took over: records <= it were mirrored. */
  mirroredSeq: number;
  nowMs: number;
}

function tailPaths(payload: Payload): Buffer[] {
  const out: Buffer[] = [];
  if ('path' in payload && payload.path.length > 0) out.push(payload.path);
  if ('newPath' in payload && payload.newPath.length > 0) out.push(payload.newPath);
  return out;
}

/** Copies one path (file, symlink or an empty directory) into `folder`; false if gone. */
async function keep(vaultDir: string, folder: string, path: Buffer): Promise<boolean> {
  const from = join(vaultDir, path.toString('utf8'));
  const to = join(folder, 'files', path.toString('utf8'));
  let st;
  try {
    st = await lstat(from);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  await mkdir(dirname(to), { recursive: true });
  if (st.isFile()) await copyFile(from, to);
  else if (st.isSymbolicLink()) await symlink(await readlink(from), to);
  else if (st.isDirectory()) await mkdir(to, { recursive: true });
  return true;
}

/**
 * Failback groundwork (docs/sync.md, "Failback"): before a returning old source becomes a
 * target and is synced, the records of its journal after `mirroredSeq` (writes the new
 * source never received) are set aside, never thrown away (invariant 6): every path they
 * touched is copied as it is now into `<stateDir>/set-aside/<vault>/<ts>-unmirrored/files/`,
 * and `records.txt` lists the records. The journal segments are left in place (the caller
 * keeps them; nothing here deletes anything).
 */
export async function setAsideUnmirrored(o: SetAsideUnmirroredOptions): Promise<UnmirroredTail> {
  const stamp = new Date(o.nowMs).toISOString().replaceAll(':', '-');
  const folder = join(o.stateDir, 'set-aside', o.vault, `${stamp}-unmirrored`);
  const lines: string[] = [];
  const paths = new Map<string, Buffer>();
  let firstSeq = 0;
  let lastSeq = 0;
  for await (const record of o.records) {
    if (record.header.seq <= o.mirroredSeq) continue;
    if (firstSeq === 0) firstSeq = record.header.seq;
    lastSeq = record.header.seq;
    lines.push(formatRecord(record));
    for (const path of tailPaths(record.payload)) paths.set(path.toString('latin1'), path);
  }
  const tail: UnmirroredTail = { folder, records: lines.length, firstSeq, lastSeq, copied: [],
    gone: [] };
  if (lines.length === 0) return tail;
  await mkdir(folder, { recursive: true, mode: 0o700 });
  for (const path of [...paths.values()].sort(Buffer.compare)) {
    const text = path.toString('utf8');
    if (await keep(o.vaultDir, folder, path)) tail.copied.push(text);
    else tail.gone.push(text);
  }
  await writeFile(join(folder, 'records.txt'), `# records after seq ${o.mirroredSeq} that the ` +
    `new source never received (vault ${o.vault})\n${lines.join('\n')}\n`);
  return tail;
}
