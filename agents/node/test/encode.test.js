'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const {
  StrataContextSpanProcessor, encodeRecord, SPAN_START, SPAN_END, RECORD_SIZE,
} = require('..');

// The example in docs/context-channel.md (hexdump -C, offset and ASCII columns removed).
const DOC_EXAMPLE_HEX = [
  '01 01 00 00 92 10 00 00  92 10 00 00 00 00 00 00',
  '15 cd 85 3d fe 9c 97 17  0a f7 65 19 16 cd 43 dd',
  '84 48 eb 21 1c 80 31 9c  b7 ad 6b 71 69 20 33 31',
  '00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00',
].join(' ').replace(/\s+/g, '');

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const SPAN_ID = 'b7ad6b7169203331';
const PARENT_ID = '00f067aa0ba902b7';

test('constants', () => {
  assert.equal(SPAN_START, 1);
  assert.equal(SPAN_END, 2);
  assert.equal(RECORD_SIZE, 64);
});

test('encodeRecord matches the documented SPAN_START example', () => {
  const buf = encodeRecord({
    type: SPAN_START, pid: 4242, tid: 4242, timeNs: 1700000000123456789n,
    traceId: TRACE_ID, spanId: SPAN_ID, parentSpanId: undefined,
  });
  assert.equal(buf.length, RECORD_SIZE);
  assert.equal(buf.toString('hex'), DOC_EXAMPLE_HEX);
});

test('the hexdump in docs/context-channel.md is the one tested here', (t) => {
  const doc = path.join(__dirname, '..', '..', '..', 'docs', 'context-channel.md');
  if (!fs.existsSync(doc)) return t.skip('doc not present');
  const lines = fs.readFileSync(doc, 'utf8').split('\n')
    .filter((l) => /^000000[0-3]0  /.test(l))
    .map((l) => l.slice(10, 58).replace(/\s+/g, ''));
  assert.equal(lines.join(''), DOC_EXAMPLE_HEX);
});

test('encodeRecord: SPAN_END, parent id, field layout', () => {
  const buf = encodeRecord({
    type: SPAN_END, pid: 7, tid: 0, timeNs: 5n,
    traceId: TRACE_ID.toUpperCase(), spanId: SPAN_ID, parentSpanId: PARENT_ID,
  });
  assert.equal(buf[0], 1);
  assert.equal(buf[1], SPAN_END);
  assert.equal(buf.readUInt16LE(2), 0);
  assert.equal(buf.readUInt32LE(4), 7);
  assert.equal(buf.readUInt32LE(8), 0);
  assert.equal(buf.readUInt32LE(12), 0);
  assert.equal(buf.readBigUInt64LE(16), 5n);
  assert.equal(buf.subarray(24, 40).toString('hex'), TRACE_ID);
  assert.equal(buf.subarray(40, 48).toString('hex'), SPAN_ID);
  assert.equal(buf.subarray(48, 56).toString('hex'), PARENT_ID);
  assert.equal(buf.subarray(56, 64).toString('hex'), '0'.repeat(16));
});

test('encodeRecord rejects what strata would reject or misread', () => {
  const ok = { type: SPAN_START, pid: 1, timeNs: 1n, traceId: TRACE_ID, spanId: SPAN_ID };
  assert.throws(() => encodeRecord({ ...ok, type: 3 }), RangeError);
  assert.throws(() => encodeRecord({ ...ok, traceId: 'abc' }), TypeError);
  assert.throws(() => encodeRecord({ ...ok, spanId: 'zz'.repeat(8) }), TypeError);
  assert.throws(() => encodeRecord({ ...ok, spanId: undefined }), TypeError);
  assert.throws(() => encodeRecord({ ...ok, timeNs: -1n }), RangeError);
});

// A fake span shaped like an SDK 1.30 ReadableSpan.
function fakeSpan({ spanId = SPAN_ID, parentSpanId } = {}) {
  return {
    spanContext: () => ({ traceId: TRACE_ID, spanId, traceFlags: 1 }),
    parentSpanId,
    startTime: [1700000000, 123456789],
    endTime: [1700000001, 5],
  };
}

const tempDirs = [];
test.after(() => tempDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function tempSocketPath() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-ctx-'));
  tempDirs.push(dir);
  return path.join(dir, 'context.sock');
}

// A stand-in for strata: collects bytes until `want` have arrived.
function listen(socketPath, want) {
  const chunks = [];
  let resolveData;
  const data = new Promise((r) => { resolveData = r; });
  const server = net.createServer((conn) => {
    conn.on('data', (d) => {
      chunks.push(d);
      const all = Buffer.concat(chunks);
      if (all.length >= want) resolveData(all);
    });
  });
  return new Promise((resolve) => {
    server.listen(socketPath, () => resolve({ server, data }));
  });
}

// The processor stamps records with the clock at onStart/onEnd (not the span's times): check
// that time is within [from, to] and that every other byte is what encodeRecord gives.
function assertRecord(got, type, from, to, parentSpanId) {
  const t = got.readBigUInt64LE(16);
  assert.ok(t >= from && t <= to, `time ${t} not within [${from}, ${to}]`);
  assert.deepEqual(got, expected(type, t, parentSpanId));
}

const wallNs = () => BigInt(Date.now()) * 1000000n;

function expected(type, timeNs, parentSpanId) {
  return encodeRecord({
    type, pid: process.pid, tid: process.pid, timeNs,
    traceId: TRACE_ID, spanId: SPAN_ID, parentSpanId,
  });
}

test('processor sends SPAN_START then SPAN_END to the socket', async () => {
  const socketPath = tempSocketPath();
  const { server, data } = await listen(socketPath, 2 * RECORD_SIZE);
  const p = new StrataContextSpanProcessor({ socketPath });
  const span = fakeSpan({ parentSpanId: PARENT_ID });

  const from = wallNs() - 2000000n;
  p.onStart(span, {});
  p.onEnd(span);
  const got = await data;
  await p.forceFlush();
  await p.shutdown();
  server.close();

  const to = wallNs() + 2000000n;
  assert.equal(got.length, 2 * RECORD_SIZE);
  assertRecord(got.subarray(0, 64), SPAN_START, from, to, PARENT_ID);
  assertRecord(got.subarray(64), SPAN_END, from, to, PARENT_ID);
  assert.ok(got.readBigUInt64LE(16) <= got.readBigUInt64LE(64 + 16), 'end after start');
  assert.equal(p.dropped, 0);
});

test('processor queues while strata is absent and delivers after reconnecting', async () => {
  const socketPath = tempSocketPath();
  const p = new StrataContextSpanProcessor({ socketPath });
  const span = fakeSpan();
  const from = wallNs() - 2000000n;
  p.onStart(span, {}); // no server yet: queued
  await new Promise((r) => setTimeout(r, 50));

  const { server, data } = await listen(socketPath, 2 * RECORD_SIZE);
  p.onEnd(span); // queued or sent, depending on whether the retry has happened
  const got = await data; // first retry is after 100 ms
  await p.shutdown();
  server.close();

  const to = wallNs() + 2000000n;
  assertRecord(got.subarray(0, 64), SPAN_START, from, to);
  assertRecord(got.subarray(64), SPAN_END, from, to);
  assert.equal(p.dropped, 0);
});

test('with no server nothing throws and overflow is counted in dropped', async () => {
  const socketPath = tempSocketPath(); // nothing listens here
  const p = new StrataContextSpanProcessor({ socketPath, maxQueued: 2 });
  for (let i = 0; i < 3; i++) {
    const span = fakeSpan({ spanId: `000000000000000${i + 1}` });
    p.onStart(span, {});
    p.onEnd(span);
  }
  // Let the failed connect (ENOENT) and a retry happen: still no throw.
  await new Promise((r) => setTimeout(r, 150));
  p.onStart({ spanContext: () => { throw new Error('broken span'); } }, {});
  assert.equal(p.dropped, 6 - 2 + 1);
  await p.forceFlush(); // resolves at once: not connected
  await p.shutdown();
  await p.shutdown(); // idempotent
});
