import t from 'tap';
import { LinkLiveness } from './link-liveness.js';

t.test('a heartbeat is due an interval after the last message sent', async (t) => {
  const liveness = new LinkLiveness(500, 0);
  t.equal(liveness.tick(499).heartbeatDue, false);
  t.equal(liveness.tick(500).heartbeatDue, true);
  liveness.sent(500);
  t.equal(liveness.tick(900).heartbeatDue, false);
  t.equal(liveness.nextTickAtMs(), 1000);
});

t.test('declares the link dead after three intervals of silence', async (t) => {
  const liveness = new LinkLiveness(500, 0);
  liveness.heard(1000);
  // Ticks on time, as the runner's timers bring them: when due, heartbeat sent.
  for (let now = 500; now < 2500; now = liveness.nextTickAtMs()) {
    if (liveness.tick(now).heartbeatDue) liveness.sent(now);
  }
  t.same(liveness.tick(2500), { heartbeatDue: true, dead: false, silentMs: 1500 });
  liveness.sent(2500);
  t.same(liveness.tick(2501), { heartbeatDue: false, dead: true, silentMs: 1501 });
});

t.test('our own stall is not the peer\'s silence', async (t) => {
  const liveness = new LinkLiveness(500, 0);
  liveness.heard(400);
  t.equal(liveness.tick(500).dead, false);
  liveness.sent(500);
  t.equal(liveness.nextTickAtMs(), 1000);
  // The event loop was blocked for 5 s: the tick due at 1000 runs at 6000, before the
  // socket's pending messages are read. Only the 600 ms we were looking count.
  const late = liveness.tick(6000);
  t.equal(late.dead, false, 'not dead right after the stall');
  t.equal(late.silentMs, 600);
  liveness.sent(6000);
  // The peer stays silent while we tick on time: dead once 1500 ms of our watch passed.
  let now = 6000;
  let verdict = late;
  while (!verdict.dead) {
    now = liveness.nextTickAtMs();
    verdict = liveness.tick(now);
    if (verdict.heartbeatDue) liveness.sent(now);
  }
  t.equal(now, 6901, 'dead 1500 ms of watching after the last message');
});

t.test('a late timer within one interval is not a stall', async (t) => {
  const liveness = new LinkLiveness(500, 0);
  liveness.heard(0);
  t.equal(liveness.tick(500).dead, false);
  liveness.sent(500);
  t.equal(liveness.tick(1400).silentMs, 1400, 'late by 400 ms: counted as silence');
});

t.test('any message heard keeps the link alive', async (t) => {
  const liveness = new LinkLiveness(100, 0);
  for (let now = 0; now <= 10_000; now += 250) {
    liveness.heard(now);
    t.equal(liveness.tick(now + 250).dead, false);
  }
});
