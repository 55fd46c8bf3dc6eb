#!/usr/bin/env node
// Round trip of the mirror bench's link: a TCP echo of 64 bytes (TCP_NODELAY) between the two
// namespaces, so that the sync-mode fsync aim (local fsync + 2 round trips + target fsync)
// has a measured round trip in it.
// Usage: node bench/mirror-rtt.js serve <host> <port>      (prints `ready`, echoes until killed)
//        node bench/mirror-rtt.js ping <host> <port> <n>   (prints { medianUs, p99Us } as JSON)

import { createConnection, createServer } from 'node:net';

const [mode, host, portArg, countArg] = process.argv.slice(2);
const port = Number(portArg);

if (mode === 'serve') {
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('data', (d) => socket.write(d));
    socket.on('error', () => socket.destroy());
  });
  server.listen(port, host, () => process.stdout.write('ready\n'));
} else if (mode === 'ping') {
  const count = Number(countArg);
  const socket = createConnection({ host, port, noDelay: true });
  const payload = Buffer.alloc(64, 7);
  const rttsUs = [];
  let pending = 0;
  let sentAt = 0n;
  const send = () => {
    pending = payload.length;
    sentAt = process.hrtime.bigint();
    socket.write(payload);
  };
  socket.on('connect', send);
  socket.on('data', (d) => {
    pending -= d.length;
    if (pending > 0) return;
    rttsUs.push(Number(process.hrtime.bigint() - sentAt) / 1000);
    if (rttsUs.length < count) { send(); return; }
    socket.end();
    const sorted = rttsUs.slice(20).sort((a, b) => a - b);  // the first 20 warm up
    const at = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
    process.stdout.write(`${JSON.stringify({ medianUs: at(0.5), p99Us: at(0.99) })}\n`);
  });
  socket.on('error', (e) => { process.stderr.write(`${e.message}\n`); process.exit(1); });
} else {
  process.stderr.write('usage: mirror-rtt.js serve|ping <host> <port> [n]\n');
  process.exit(2);
}
