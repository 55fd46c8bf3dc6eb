import { Command, CommanderError } from 'commander';
import { mountCommand } from './mount-command.js';
import { journalApplyCommand, journalDumpCommand } from './journal-command.js';
import { endQuietlyOnClosedStdout, reportError } from './output.js';
import { serveCommand } from './serve-command.js';
import { statusCommand } from './status-command.js';
import { demoCommand } from './demo-command.js';
import { keygenCommand } from './keygen-command.js';
import { verifyCommand } from './verify-command.js';
import { syncCommand } from './sync-command.js';

/** Builds the `understudy` command tree; each action resolves to an exit code. */
function program(setExit: (code: number) => void): Command {
  const root = new Command('understudy')
    .description('realtime data mirroring with automatic failover')
    .exitOverride()
    .showHelpAfterError();

  root.command('mount')
    .description('mount a vault over <dir> in the foreground and journal every change')
    .argument('<dir>', 'mount point (mounted over itself unless --backing is given)')
    .option('--backing <dir>', 'directory holding the data (default: <dir> itself)')
    .option('--journal <dir>', 'journal directory, outside the vault')
    .option('--epoch <n>', 'epoch stamped on new records', '1')
    .option('--writeback-cache', 'use the kernel writeback cache (durable at fsync only)')
    .action(async (dir: string, options) => setExit(await mountCommand(dir, options)));

  const journal = root.command('journal').description('inspect and replay journals');
  journal.command('dump')
    .description('print the records of a journal')
    .argument('<journal-dir>')
    .option('--from <seq>', 'first seq to show')
    .option('--json', 'one JSON object per line')
    .action(async (dir: string, options) => setExit(await journalDumpCommand(dir, options)));
  journal.command('apply')
    .description('replay a journal into a directory, confined beneath it')
    .argument('<journal-dir>')
    .argument('<dir>', 'target directory (created if missing)')
    .option('--from <seq>', 'first seq to apply')
    .option('--json', 'print the summary as JSON')
    .action(async (dir: string, target: string, options) =>
      setExit(await journalApplyCommand(dir, target, options)));

  root.command('serve')
    .description('run this node in the foreground: mount its vaults, forward, receive')
    .requiredOption('--config <file>', 'the node configuration (YAML)')
    .option('--node <id>', 'which node of the file this is (default: node.id)')
    .action(async (options) => setExit(await serveCommand(options)));
  root.command('status')
    .description('state and lag of every vault and target of the daemons running here')
    .option('--json', 'print JSON')
    .option('--socket <path>', 'ask this control socket only (default: /run/understudy/*.sock)')
    .action(async (options) => setExit(await statusCommand(options)));
  root.command('verify')
    .description('compare a vault with its replicas and list every difference (changes nothing)')
    .argument('<vault>')
    .option('--target <node>', 'only this target (default: every target of the vault)')
    .option('--no-checksum', 'compare content by size and mtime only (no block hashes)')
    .option('--json', 'progress events and a final summary as JSON lines on stdout')
    .option('--socket <path>', 'the source daemon\'s control socket (default: /run/understudy/*)')
    .action(async (vault: string, options) => setExit(await verifyCommand(vault, options)));
  root.command('sync')
    .description('bring a vault\'s targets to the source\'s state while writes go on')
    .argument('<vault>')
    .option('--target <node>', 'only this target (default: every target of the vault)')
    .option('--checksum', 'compare every file by block hashes, not only those whose size or ' +
      'mtime differ')
    .option('--delete', 'remove objects only the target has (default: keep them)')
    .option('--json', 'progress events and a final summary as JSON lines on stdout')
    .option('--socket <path>', 'the source daemon\'s control socket (default: /run/understudy/*)')
    .action(async (vault: string, options) => setExit(await syncCommand(vault, options)));
  root.command('demo')
    .description('a source and a target node in one process over loopback, to try it out')
    .option('--dir <dir>', 'where data/, replica/ and the state go', 'understudy-demo')
    .option('--mode <mode>', 'async or sync', 'async')
    .option('--socket <path>', 'serve status, verify and sync here ' +
      '(default: /run/understudy/demo.sock)')
    .action(async (options) => setExit(await demoCommand(options)));
  root.command('keygen')
    .description('make this node\'s TLS key and certificate; print the fingerprint')
    .requiredOption('--dir <dir>', 'directory for node.key and node.crt')
    .requiredOption('--node <id>', 'this node\'s id')
    .option('--force', 'replace an existing key')
    .option('--json', 'print JSON')
    .action(async (options) => setExit(await keygenCommand({ dir: options.dir,
      nodeId: options.node, force: options.force, json: options.json })));
  return root;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  let exitCode = 0;
  // The long-running commands keep going if their terminal goes away; the rest end quietly.
  if (!['serve', 'demo', 'mount'].includes(argv[0] ?? '')) endQuietlyOnClosedStdout();
  try {
    await program((code) => { exitCode = code; }).parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? 0 : 2;
    }
    return reportError(error);
  }
}
