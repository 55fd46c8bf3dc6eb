import t from 'tap';
import { SendWindow } from './send-window.js';

t.test('closes once the unacked bytes reach the window and reopens on ack', async (t) => {
  const window = new SendWindow(100);
  t.ok(window.open());
  window.sent(10, 60);
  t.ok(window.open());
  window.sent(20, 60);
  t.notOk(window.open(), '120 bytes in flight');
  t.equal(window.acked(15), 60, 'only the batch whose records are all acked is released');
  t.ok(window.open());
  t.equal(window.bytes, 60);
  t.equal(window.acked(20), 60);
  t.equal(window.batches, 0);
});

t.test('one batch may always go out, however large', async (t) => {
  const window = new SendWindow(10);
  t.ok(window.open());
  window.sent(1, 1000);
  t.notOk(window.open());
  window.clear();
  t.ok(window.open());
  t.equal(window.batches, 0);
});
