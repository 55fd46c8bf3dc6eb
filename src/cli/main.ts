import { Command, CommanderError } from 'commander';
import { mountCommand } from './mount-command.js';
import { journalApplyCommand, journalDumpCommand } from './journal-command.js';
import { reportError } from './output.js';

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
  return root;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  let exitCode = 0;
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
