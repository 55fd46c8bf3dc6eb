import t from 'tap';
import { AddressPlan } from './address-plan.js';
import { Backoff } from './backoff.js';

const plan = (count: number): AddressPlan =>
  new AddressPlan(count, new Backoff({ baseMs: 100, maxMs: 800, random: () => 0 }), 5000);

t.test('dials addresses in priority order, then backs off before the next round', async (t) => {
  const p = plan(3);
  t.same(p.start(0), { index: 0, atMs: 0 });
  t.same(p.dialFailed(0, 10), { index: 1, atMs: 10 });
  t.same(p.dialFailed(1, 20), { index: 2, atMs: 20 });
  t.same(p.dialFailed(2, 30), { index: 0, atMs: 80 });
  t.same(p.dialFailed(0, 80), { index: 1, atMs: 80 });
  t.same(p.dialFailed(1, 80), { index: 2, atMs: 80 });
  t.same(p.dialFailed(2, 80), { index: 0, atMs: 180 }, 'the delay doubles');
});

t.test('a link on the best address never probes', async (t) => {
  const p = plan(2);
  p.connected(0, 0);
  t.equal(p.probeAtMs(), null);
  t.same(p.probesDue(1_000_000), []);
});

t.test('on a lower address, probes the better ones every interval and moves back', async (t) => {
  const p = plan(3);
  p.connected(2, 1000);
  t.equal(p.probeAtMs(), 6000);
  t.same(p.probesDue(5999), []);
  t.same(p.probesDue(6000), [0, 1]);
  p.probesFailed(6100);
  t.same(p.probesDue(11_099), []);
  t.same(p.probesDue(11_100), [0, 1]);
  t.same(p.probeAnswered(1, 11_200), { index: 1, atMs: 11_200 });
  t.equal(p.current, null);
});

t.test('a lost link starts from the top after a backoff; a fruitful one resets it', async (t) => {
  const p = plan(2);
  p.connected(0, 0);
  t.same(p.lost(100, false), { index: 0, atMs: 150 });
  p.connected(0, 150);
  t.same(p.lost(200, false), { index: 0, atMs: 300 }, 'no progress: the delay grows');
  p.connected(0, 300);
  t.same(p.lost(400, true), { index: 0, atMs: 450 }, 'progress: back to the base delay');
  p.connected(0, 450);
  t.same(p.lost(500), { index: 0, atMs: 550 }, 'fruitful unless told otherwise');
});
