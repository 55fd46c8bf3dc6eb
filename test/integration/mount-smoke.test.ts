// Smoke tests of the FUSE capture layer through src/mount: passthrough, journal records,
// concurrency, ownership for other users, unmount with open files, stale mounts.
// Needs root and /dev/fuse (skipped with the reason, failed under CI=true). Run with
// UNDERSTUDY_NATIVE=/path/to/understudy_native.node to test a build outside build/.
import t, { type Test } from 'tap';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodePayload, decodeRecord, recordKindName, SEGMENT_HEADER_BYTES,
} from '../../src/record/index.js';
import type { Payload } from '../../src/record/index.js';
import { Mount, MountError, clearStaleMount } from '../../src/mount/index.js';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'mount tests need root';
  try {
    fs.accessSync('/dev/fuse', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return 'mount tests need /dev/fuse';
  }
  return undefined;
}

interface JournalEntry { seq: number; kind: string; payload: Payload }

/** Reads every record of every segment in `dir`, in file order. */
function readJournal(dir: string): JournalEntry[] {
  const out: JournalEntry[] = [];
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.seg')).sort()) {
    const bytes = fs.readFileSync(join(dir, name));
    for (let at = SEGMENT_HEADER_BYTES; at < bytes.length;) {
      const r = decodeRecord(bytes, at);
      out.push({ seq: r.header.seq, kind: recordKindName(r.header.kind),
        payload: decodePayload(r.header.kind, r.payload, at) });
      at += r.recordBytes;
    }
  }
  return out;
}

function pathOf(p: Payload): string {
  return 'path' in p ? p.path.toString() : '';
}

function mounted(path: string): boolean {
  return fs.readFileSync('/proc/mounts', 'utf8').split('\n')
    .some((line) => line.split(' ')[1] === path);
}

/** A temp dir with vault/, backing/ and journal/; unmounted and removed at teardown. */
function scratch(t: Test): { root: string; vault: string; backing: string; journal: string } {
  const root = fs.mkdtempSync(join(tmpdir(), 'us-mount-'));
  const dirs = { root, vault: join(root, 'vault'), backing: join(root, 'backing'),
    journal: join(root, 'journal') };
  for (const d of [dirs.vault, dirs.backing, dirs.journal]) fs.mkdirSync(d);
  fs.chmodSync(root, 0o755);
  t.teardown(() => {
    for (const d of [dirs.vault, dirs.backing]) {
      if (mounted(d)) spawnSync('umount', ['-l', d]);
    }
    fs.rmSync(root, { recursive: true, force: true });
  });
  return dirs;
}

async function withMount(t: Test, o: Parameters<typeof Mount.open>[0],
  body: (m: Mount) => Promise<void> | void): Promise<Mount> {
  const m = await Mount.open(o);
  try {
    await body(m);
  } finally {
    await m.unmount();
  }
  return m;
}

const reason = skipReason();
if (reason !== undefined) {
  if (process.env.CI === 'true') t.fail(reason);
  else t.comment(`skipped: ${reason}`);
} else {
  t.test('mount over: namespace and data ops pass through and are journaled in order',
    async (t) => {
      const d = scratch(t);
      fs.writeFileSync(join(d.vault, 'before.txt'), 'was here');
      let notified = 0;
      await withMount(t, { mountpoint: d.vault, journalDir: d.journal,
        onWritten: (seq) => { notified = Math.max(notified, seq); } }, async (m) => {
        const v = (p: string): string => join(d.vault, p);
        t.equal(fs.readFileSync(v('before.txt'), 'utf8'), 'was here', 'old content visible');
        t.ok(mounted(d.vault), 'mounted over the backing dir');
        t.match(fs.readFileSync('/proc/mounts', 'utf8'), `understudy ${d.vault} fuse.understudy`);
        fs.mkdirSync(v('dir'));
        fs.writeFileSync(v('dir/a'), 'hello');
        fs.renameSync(v('dir/a'), v('dir/b'));
        fs.symlinkSync('dir/b', v('sym'));
        fs.linkSync(v('dir/b'), v('hard'));
        fs.chmodSync(v('hard'), 0o640);
        execFileSync('setfattr', ['-n', 'user.k', '-v', 'val', v('dir/b')]);
        fs.unlinkSync(v('hard'));
        fs.rmSync(v('before.txt'));
        t.equal(fs.readFileSync(v('sym'), 'utf8'), 'hello');
        t.equal(execFileSync('getfattr', ['--only-values', '-n', 'user.k', v('dir/b')],
          { encoding: 'utf8' }), 'val');
        await m.flush();
        const s = m.stats();
        t.equal(s.durableSeq, s.lastSeq, 'flush makes the journal durable up to lastSeq');
        t.equal(s.journalErrors, 0);
        t.ok((s.ops.write ?? 0) >= 1 && (s.ops.create ?? 0) >= 1, 'ops are counted');
      });
      const records = readJournal(d.journal);
      t.same(records.map((r) => r.seq), records.map((_, i) => i + 1), 'seqs 1, 2, 3, ...');
      t.same(records.map((r) => `${r.kind} ${pathOf(r.payload)}`), [
        'MKDIR dir', 'CREATE dir/a', 'WRITE dir/a', 'RENAME dir/a', 'SYMLINK sym', 'LINK dir/b',
        'CHMOD dir/b', 'SETXATTR dir/b', 'UNLINK hard', 'UNLINK before.txt',
      ]);
      const write = records[2]?.payload;
      t.ok(write?.kind === 'WRITE' && write.data.toString() === 'hello' && write.offset === 0n);
      const rename = records[3]?.payload;
      t.ok(rename?.kind === 'RENAME' && rename.newPath.toString() === 'dir/b');
      const chmod = records[6]?.payload;
      t.ok(chmod?.kind === 'CHMOD' && chmod.mode === 0o640);
      t.equal(notified, records.length, 'onWritten reported the newest written seq');
      // After unmount the backing holds exactly what was done through the mount.
      t.same(fs.readdirSync(d.vault).sort(), ['dir', 'sym']);
      t.equal(fs.readFileSync(join(d.vault, 'dir/b'), 'utf8'), 'hello');
      t.equal(fs.readlinkSync(join(d.vault, 'sym')), 'dir/b');
    });

  t.test('separate mountpoint: appends record where bytes landed; hidden xattrs', async (t) => {
    const d = scratch(t);
    await withMount(t, { mountpoint: d.vault, backing: d.backing, journalDir: d.journal },
      async () => {
        const f = join(d.vault, 'log');
        fs.writeFileSync(f, 'abc');
        fs.appendFileSync(f, 'defg');
        fs.appendFileSync(f, 'hi');
        fs.truncateSync(f, 4);
        const when = new Date('2020-01-02T03:04:05Z');
        fs.utimesSync(f, when, when);
        t.equal(fs.readFileSync(join(d.backing, 'log'), 'utf8'), 'abcd', 'lands in backing');
        execFileSync('setfattr',
          ['-n', 'trusted.understudy.fid', '-v', '7', join(d.backing, 'log')]);
        const listed = execFileSync('getfattr', ['-d', '-m', '-', f], { encoding: 'utf8' });
        t.notMatch(listed, /understudy/, 'hidden xattrs are never listed');
        const get = spawnSync('getfattr', ['-n', 'trusted.understudy.fid', f],
          { encoding: 'utf8' });
        t.match(get.stderr, /No such attribute/, 'get of a hidden xattr is ENODATA');
        const set = spawnSync('setfattr', ['-n', 'trusted.understudy.fid', '-v', '1', f],
          { encoding: 'utf8' });
        t.match(set.stderr, /Operation not permitted/, 'set of a hidden xattr is EPERM');
      });
    const writes = readJournal(d.journal).filter((r) => r.payload.kind === 'WRITE');
    t.same(writes.map((r) => r.payload.kind === 'WRITE' ? Number(r.payload.offset) : -1),
      [0, 3, 7], 'O_APPEND writes carry the offset where they landed');
    const kinds = readJournal(d.journal).map((r) => r.kind);
    t.same(kinds.slice(-2), ['TRUNCATE', 'UTIMENS']);
    const utimens = readJournal(d.journal).at(-1)?.payload;
    t.ok(utimens?.kind === 'UTIMENS' && utimens.mtimeNs === 1577934245000000000n);
    t.notOk(fs.existsSync(join(d.backing, 'vault')), 'nothing leaks outside the backing');
  });

  t.test('4 processes appending: the journal replays to the exact file', async (t) => {
    const d = scratch(t);
    const lines = 300;
    await withMount(t, { mountpoint: d.vault, backing: d.backing, journalDir: d.journal },
      async () => {
        const script = `const fs=require('fs');const fd=fs.openSync(process.argv[1],'a');` +
          `const own=fs.openSync(process.argv[1]+'.'+process.argv[2],'w');` +
          `for(let i=0;i<${lines};i++){const l=process.argv[2]+':'+i+'\\n';` +
          `fs.writeSync(fd,l);fs.writeSync(own,l.repeat(1+i%7));}`;
        const shared = join(d.vault, 'shared');
        await Promise.all([0, 1, 2, 3].map((w) => new Promise<void>((resolve, reject) => {
          const child = spawn(process.execPath, ['-e', script, shared, String(w)],
            { stdio: 'inherit' });
          child.on('exit', (code) => code === 0 ? resolve() : reject(new Error(`exit ${code}`)));
        })));
      });
    // Replaying WRITE records in seq order must rebuild each file byte for byte.
    const files = new Map<string, Buffer>();
    for (const r of readJournal(d.journal)) {
      if (r.payload.kind !== 'WRITE') continue;
      const path = r.payload.path.toString();
      const end = Number(r.payload.offset) + r.payload.data.length;
      let b = files.get(path) ?? Buffer.alloc(0);
      if (b.length < end) b = Buffer.concat([b, Buffer.alloc(end - b.length)]);
      r.payload.data.copy(b, Number(r.payload.offset));
      files.set(path, b);
    }
    t.equal(files.size, 5);
    for (const [path, bytes] of files) {
      t.ok(bytes.equals(fs.readFileSync(join(d.backing, path))), `${path} replays exactly`);
    }
    t.equal(fs.readFileSync(join(d.backing, 'shared'), 'utf8').split('\n').length - 1,
      4 * lines, 'no append was lost');
  });

  t.test('another user creates files owned by them; setgid and sticky dirs', async (t) => {
    const d = scratch(t);
    const pub = join(d.backing, 'pub');
    fs.mkdirSync(pub);
    fs.chmodSync(pub, 0o1777);
    const grp = join(d.backing, 'grp');
    fs.mkdirSync(grp);
    fs.chownSync(grp, 0, 100);
    fs.chmodSync(grp, 0o2777);
    fs.writeFileSync(join(pub, 'roots'), 'r');
    const asNobody = (...cmd: string[]): ReturnType<typeof spawnSync> => spawnSync('setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', '--', ...cmd], { encoding: 'utf8' });
    await withMount(t, { mountpoint: d.vault, backing: d.backing, journalDir: d.journal },
      async () => {
        const v = join(d.vault, 'pub');
        t.equal(asNobody('sh', '-c', `umask 022; echo x > ${v}/f && mkdir ${v}/pgdata && ` +
          `chmod 700 ${v}/pgdata && echo y > ${v}/pgdata/PG_VERSION`).status, 0);
        const f = fs.statSync(join(pub, 'f'));
        t.same([f.uid, f.gid, f.mode & 0o7777], [65534, 65534, 0o644], 'file owner and mode');
        const pg = fs.statSync(join(pub, 'pgdata'));
        t.same([pg.uid, pg.mode & 0o7777], [65534, 0o700], 'service user made its data dir');
        t.equal(fs.statSync(join(pub, 'pgdata/PG_VERSION')).uid, 65534);
        t.not(asNobody('rm', '-f', `${v}/roots`).status, 0, 'sticky dir protects root\'s file');
        t.ok(fs.existsSync(join(pub, 'roots')));
        const g = join(d.vault, 'grp');
        t.equal(asNobody('sh', '-c', `mkdir ${g}/sub && echo z > ${g}/file`).status, 0);
        const sub = fs.statSync(join(grp, 'sub'));
        t.same([sub.uid, sub.gid, Boolean(sub.mode & 0o2000)], [65534, 100, true],
          'setgid parent: group inherited, dirs keep setgid');
        t.equal(fs.statSync(join(grp, 'file')).gid, 100);
        t.not(asNobody('sh', '-c', `echo n > ${d.vault}/denied`).status, 0,
          'permissions are checked for the caller');
        // A write by a user without CAP_FSETID clears setuid/setgid, as on the backing.
        fs.writeFileSync(join(d.vault, 'pub/suid'), '#!/bin/sh\n');
        fs.chmodSync(join(d.vault, 'pub/suid'), 0o6777);
        t.equal(asNobody('sh', '-c', `echo more >> ${v}/suid`).status, 0);
        t.equal(fs.statSync(join(pub, 'suid')).mode & 0o7777, 0o777, 'setuid/setgid cleared');
      });
    const chmods = readJournal(d.journal).filter((r) => r.payload.kind === 'CHMOD');
    t.same(chmods.map((r) => r.payload.kind === 'CHMOD' ? r.payload.mode : -1)
      .filter((m) => m === 0o777), [0o777], 'the cleared bits are journaled');
    const creates = readJournal(d.journal).filter((r) => r.payload.kind === 'CREATE' &&
      !r.payload.path.toString().endsWith('suid'));
    t.ok(creates.every((r) => r.payload.kind === 'CREATE' && r.payload.uid === 65534),
      'records carry the owner the backing ended with');
  });

  t.test('unmount works while a process holds a file open', async (t) => {
    const d = scratch(t);
    const m = await Mount.open({ mountpoint: d.vault, backing: d.backing, journalDir: d.journal });
    fs.writeFileSync(join(d.vault, 'open'), 'x');
    const holder = spawn('sh', ['-c', `exec 3<${join(d.vault, 'open')}; echo ready; sleep 60`],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => { holder.kill('SIGKILL'); });
    await new Promise((resolve) => holder.stdout.once('data', resolve));
    await m.unmount();
    t.notOk(mounted(d.vault), 'unmounted despite the open file');
    await m.unmount();  // idempotent
    t.equal(fs.readFileSync(join(d.backing, 'open'), 'utf8'), 'x');
    await t.rejects(m.flush(), { code: 'MOUNT_CLOSED' });
  });

  t.test('a stale mount left by a killed daemon is cleared', async (t) => {
    const d = scratch(t);
    const addon = process.env.UNDERSTUDY_NATIVE ??
      join(import.meta.dirname, '..', '..', 'build', 'Release', 'understudy_native.node');
    const script = `require(${JSON.stringify(addon)}).mount({mountpoint:process.argv[1],` +
      `journalDir:process.argv[2]}).then(()=>{console.log('ready');setInterval(()=>{},1000)})`;
    const child = spawn(process.execPath, ['-e', script, d.vault, d.journal],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => { child.kill('SIGKILL'); });
    await new Promise((resolve) => child.stdout.once('data', resolve));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    t.throws(() => fs.statSync(d.vault), { code: 'ENOTCONN' }, 'the mount is dead');
    t.equal(clearStaleMount(d.vault), true);
    t.equal(clearStaleMount(d.vault), false, 'nothing left to clear');
    await withMount(t, { mountpoint: d.vault, journalDir: d.journal }, () => {
      fs.writeFileSync(join(d.vault, 'again'), 'y');
    });
    t.equal(fs.readFileSync(join(d.vault, 'again'), 'utf8'), 'y');
  });

  t.test('mount failures are MountErrors with errno codes and hints', async (t) => {
    const d = scratch(t);
    await t.rejects(Mount.open({ mountpoint: join(d.root, 'missing'), journalDir: d.journal }),
      { code: 'MOUNT_ENOENT', errno: 'ENOENT' });
    fs.writeFileSync(join(d.root, 'file'), '');
    await t.rejects(Mount.open({ mountpoint: join(d.root, 'file'), journalDir: d.journal }),
      { code: 'MOUNT_ENOTDIR' });
    await t.rejects(Mount.open({ mountpoint: d.vault, journalDir: join(d.vault, 'j') }),
      { code: 'MOUNT_JOURNAL_INSIDE_VAULT' });
    await t.rejects(Mount.open({ mountpoint: d.vault, journalDir: join(d.root, 'nojournal') }),
      { code: 'MOUNT_ENOENT' });
    await withMount(t, { mountpoint: d.vault, journalDir: d.journal }, async () => {
      const second = Mount.open({ mountpoint: d.vault, journalDir: d.journal });
      await t.rejects(second, { code: 'MOUNT_EBUSY' });
      const e = await second.catch((error: unknown) => error);
      t.ok(e instanceof MountError && e.hint.length > 0, 'carries a hint');
    });
  });
}
