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
  t.same(liveness.tick(2500), { heartbeatDue: true, dead: false, silentMs: 1500 });
  t.same(liveness.tick(2501), { heartbeatDue: true, dead: true, silentMs: 1501 });
});

t.test('any message heard keeps the link alive', async (t) => {
  const liveness = new LinkLiveness(100, 0);
  for (let now = 0; now <= 10_000; now += 250) {
    liveness.heard(now);
    t.equal(liveness.tick(now + 250).dead, false);
  }
});
