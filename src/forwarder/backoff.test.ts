import t from 'tap';
import { Backoff } from './backoff.js';

t.test('delays double up to maxMs, with jitter in [cap/2, cap)', async (t) => {
  const low = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0 });
  t.same([low.next(), low.next(), low.next(), low.next(), low.next()], [50, 100, 200, 400, 500]);
  const high = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0.999 });
  t.same([high.next(), high.next()], [99, 199]);
});

t.test('reset starts again from baseMs', async (t) => {
  const backoff = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0 });
  backoff.next();
  backoff.next();
  backoff.reset();
  t.equal(backoff.attempt, 0);
  t.equal(backoff.next(), 50);
});
