import t from 'tap';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlServer, request, ControlRequestError, ControlUnavailableError } from './index.js';

t.test('a request gets its events and its result; the socket is root-only', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'us-control-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const server = new ControlServer(join(dir, 'node.sock'));
  server.handle('echo', async (params, emit) => {
    emit({ step: 1 });
    return { echoed: params['word'] };
  });
  await server.listen();
  t.teardown(() => server.close());
  t.equal(statSync(server.socketPath).mode & 0o777, 0o600);
  const events: unknown[] = [];
  const result = await request(server.socketPath, 'echo', { word: 'hi' }, (e) => events.push(e));
  t.same(result, { echoed: 'hi' });
  t.same(events, [{ step: 1 }]);
});

t.test('an unknown method and a failing handler come back as errors', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'us-control-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const server = new ControlServer(join(dir, 'node.sock'));
  server.handle('fail', async () => {
    throw Object.assign(new Error('vault x is unknown'), { code: 'VAULT_UNKNOWN', hint: 'check' });
  });
  await server.listen();
  t.teardown(() => server.close());
  await t.rejects(request(server.socketPath, 'nope'), { code: 'CONTROL_UNKNOWN' });
  const error = await request(server.socketPath, 'fail').catch((e: unknown) => e);
  t.ok(error instanceof ControlRequestError);
  t.match(error, { code: 'VAULT_UNKNOWN', message: 'vault x is unknown', hint: 'check' });
});

t.test('no daemon gives a clear unavailable error', async (t) => {
  const error = await request('/nonexistent/understudy.sock', 'status').catch((e: unknown) => e);
  t.ok(error instanceof ControlUnavailableError);
  t.match((error as Error).message, /cannot reach the daemon/);
});
