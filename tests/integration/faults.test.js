'use strict';
// Fault handling: backend down/up, backend killed mid-stream, bad input on
// the OTLP/HTTP receiver, graceful SIGTERM drain.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const zlib = require('node:zlib');
const crypto = require('node:crypto');
const { setup, shutdownQuietly, context } = require('./lib/harness');
const sdk = require('./lib/sdk');
const otlp = require('./lib/otlp');
const { selfMetric, parsePrometheus } = require('./lib/strata');
const { withTimeout, sleep, waitFor } = require('./lib/util');

const TEST_TIMEOUT = 30000;

async function withDiagnostics(t, h, fn) {
  try {
    await fn();
  } catch (e) {
    for (const line of context(h).split('\n')) t.diagnostic(line);
    throw e;
  }
}

/** Emit `n` spans named `${prefix}-${i}`; returns their span ids (hex). */
function emitSpans(tracing, n, prefix) {
  const tracer = tracing.tracer('strata-it-faults', '1.0.0');
  const ids = [];
  for (let i = 0; i < n; i++) {
    const span = tracer.startSpan(`${prefix}-${i}`, { attributes: { 'seq': i, 'prefix': prefix } });
    span.end();
    ids.push(span.spanContext().spanId);
  }
  return ids;
}

/** Occurrences per span id at the sink. */
function spanIdCounts(sink) {
  const counts = new Map();
  for (const s of sink.spans()) counts.set(s.spanId, (counts.get(s.spanId) || 0) + 1);
  return counts;
}

/** A minimal valid ExportTraceServiceRequest with one span. */
function rawTraceRequest(name, extraAttrs = []) {
  const traceId = crypto.randomBytes(16);
  const spanId = crypto.randomBytes(8);
  const obj = {
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'strata-it-raw' } }] },
      scopeSpans: [{
        scope: { name: 'raw-client', version: '0.1' },
        spans: [{
          traceId, spanId, name, kind: 2,
          startTimeUnixNano: '1700000000000000000',
          endTimeUnixNano: '1700000000500000000',
          attributes: [{ key: 'k', value: { stringValue: 'v' } }, ...extraAttrs],
        }],
      }],
    }],
  };
  return { buf: otlp.encodeRequest('traces', obj), spanId: spanId.toString('hex'), traceId: traceId.toString('hex') };
}

test('(a) backend down at startup: data sent before it came up arrives after retry, nothing lost', { timeout: TEST_TIMEOUT }, async (t) => {
  const h = await setup(t, { sinkRunning: false });
  if (!h) return;
  const tracing = sdk.createTracing({ protocol: 'grpc', target: h.strata.endpoints, processor: 'batch' });
  h.track(() => shutdownQuietly(tracing));
  await withDiagnostics(t, h, async () => {
    const N = 50;
    const ids = emitSpans(tracing, N, 'early');
    await withTimeout(tracing.flush(), 10000, 'tracer flush');
    sdk.assertAllExportsOk(tracing.exporter, 'export to strata while backend down');
    // Give strata time to try (and fail) at least once.
    await sleep(1000);
    assert.equal(h.sink.records.length, 0, 'sink is down, it cannot have received anything');
    await h.sink.start();
    await h.sink.waitFor((s) => {
      const c = spanIdCounts(s);
      return ids.every((id) => c.has(id));
    }, 20000, `all ${N} spans after the backend came up`);
    await sleep(300);
    const counts = spanIdCounts(h.sink);
    assert.equal(counts.size, N, `exactly the ${N} spans sent, got ${counts.size} distinct`);
    const dups = [...counts.values()].filter((c) => c > 1).length;
    assert.equal(dups, 0, 'the backend never answered before it came up, so there is no reason for duplicates');
  });
});

test('(b) backend killed mid-stream and restarted within the retry window: all spans arrive; self-metrics add up', { timeout: TEST_TIMEOUT }, async (t) => {
  const h = await setup(t);
  if (!h) return;
  const tracing = sdk.createTracing({ protocol: 'grpc', target: h.strata.endpoints, processor: 'batch', batch: { scheduledDelayMillis: 20, maxExportBatchSize: 50 } });
  h.track(() => shutdownQuietly(tracing));
  await withDiagnostics(t, h, async () => {
    const ROUNDS = 10; const PER_ROUND = 50; const N = ROUNDS * PER_ROUND;
    const ids = [];
    let killedAt = 0; let restartedAt = 0;
    for (let r = 0; r < ROUNDS; r++) {
      // Round 3: the backend turns slow, and is killed while strata's export
      // of that round is in flight (the sink drops it uncommitted, so strata
      // gets no answer and must retry it).
      if (r === 3) h.sink.setDelay(2000);
      ids.push(...emitSpans(tracing, PER_ROUND, `stream-r${r}`));
      await withTimeout(tracing.flush(), 10000, `flush round ${r}`);
      if (r === 3) {
        await h.sink.waitFor((s) => s.inFlight().length > 0, 5000, 'an export in flight at the sink');
        killedAt = Date.now();
        await h.sink.stop();
        h.sink.setDelay(0);
      }
      if (r === 6) { await sleep(500); await h.sink.start(); restartedAt = Date.now(); }
      await sleep(100);
    }
    sdk.assertAllExportsOk(tracing.exporter, 'export to strata');
    assert.equal(new Set(ids).size, N);

    await h.sink.waitFor((s) => {
      const c = spanIdCounts(s);
      return ids.every((id) => c.has(id));
    }, 20000, `all ${N} spans after the backend restart`);
    await sleep(500);
    const counts = spanIdCounts(h.sink);
    const missing = ids.filter((id) => !counts.has(id));
    assert.equal(missing.length, 0, `${missing.length} spans lost`);
    assert.equal(counts.size, N, `exactly ${N} distinct spans (no foreign ones)`);

    // Duplicates are justified only for spans whose earlier copy reached the
    // killed sink just before the kill: the sink may have recorded the
    // request without strata ever seeing the answer, so strata retried.
    const dupIds = [...counts.entries()].filter(([, c]) => c > 1).map(([id]) => id);
    if (dupIds.length) {
      const firstEpoch = h.sink.records.filter((r) => r.epoch === 1 && r.ok && r.signal === 'traces');
      const unjustified = [];
      for (const id of dupIds) {
        const early = firstEpoch.filter((r) => otlp.flattenSpans([r.request]).some((s) => s.spanId === id));
        const ok = early.some((r) => r.cancelled || killedAt - r.receivedAt <= 1000);
        if (!ok) unjustified.push(id);
      }
      t.diagnostic(`${dupIds.length} duplicated span ids (${unjustified.length} unjustified); kill at +0, restart at +${restartedAt - killedAt} ms`);
      assert.equal(unjustified.length, 0, `duplicates not explained by the kill: ${unjustified.slice(0, 5).join(', ')}`);
    } else {
      t.diagnostic('no duplicates');
    }
    t.diagnostic(`${h.sink.records.filter((r) => r.lost).length} export call(s) were in flight at the kill and dropped uncommitted`);

    // Self-metrics: receiver accepted == N, exporter sent == N (spans).
    let text = '';
    try {
      await waitFor(async () => {
        text = await h.strata.metricsText();
        return selfMetric(text, 'sent', ['enqueue']).total >= N;
      }, 5000, { message: 'exporter sent-spans counter reaching N' });
      const accepted = selfMetric(text, 'accepted');
      const sent = selfMetric(text, 'sent', ['enqueue']);
      assert.ok(accepted.matched.length > 0, 'no self-metric for accepted spans ("accepted" in the name, "span" in the name or a traces/spans label)');
      assert.ok(sent.matched.length > 0, 'no self-metric for sent spans ("sent" in the name, "span" in the name or a traces/spans label)');
      assert.equal(accepted.total, N, `receiver accepted spans == ${N} (${JSON.stringify(accepted.matched)})`);
      assert.equal(sent.total, N, `exporter sent spans == ${N} (${JSON.stringify(sent.matched)})`);
    } catch (e) {
      for (const line of `--- /metrics ---\n${text}`.split('\n')) t.diagnostic(line);
      throw e;
    }
  });
});

test('(e) slow backend behind batch: a full exporter queue pushes back to the SDK (429), which retries; nothing dropped', { timeout: TEST_TIMEOUT }, async (t) => {
  // Small requests merged by `batch` into batches that a one-slot queue in front of a slow
  // backend cannot all take: what batch already acknowledged is held, not dropped, and once it
  // holds twice send_batch_size the receiver refuses new requests until the exporter takes some.
  const h = await setup(t, {
    configure: (cfg) => {
      cfg.processors.batch = { send_batch_size: 25, timeout: '20ms' };
      cfg.exporters.otlp.sending_queue = { enabled: true, queue_size: 1, num_consumers: 1 };
    },
  });
  if (!h) return;
  const tracing = sdk.createTracing({ protocol: 'http/protobuf', target: h.strata.endpoints, processor: 'batch', batch: { scheduledDelayMillis: 5, maxExportBatchSize: 10 } });
  h.track(() => shutdownQuietly(tracing));
  await withDiagnostics(t, h, async () => {
    h.sink.setDelay(150);
    const N = 200;
    const ids = emitSpans(tracing, N, 'pushback');
    await withTimeout(tracing.flush(), 25000, 'tracer flush (with the SDK\'s retries)');
    sdk.assertAllExportsOk(tracing.exporter, 'export to strata, retried after 429');
    await h.sink.waitFor((s) => {
      const c = spanIdCounts(s);
      return ids.every((id) => c.has(id));
    }, 10000, `all ${N} spans`);
    await sleep(300);
    const counts = spanIdCounts(h.sink);
    assert.equal(counts.size, N, `exactly the ${N} spans sent, got ${counts.size} distinct`);
    assert.equal([...counts.values()].filter((c) => c > 1).length, 0, 'a refused request was not taken, so its retry duplicates nothing');

    const samples = parsePrometheus(await h.strata.metricsText());
    const value = (name, labels) => samples
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((a, s) => a + s.value, 0);
    const refused = value('strata_receiver_refused_items_total', { signal: 'traces' });
    const dropped = value('strata_processor_dropped_items_total', { signal: 'traces' });
    const accepted = value('strata_receiver_accepted_items_total', { signal: 'traces' });
    const sent = value('strata_exporter_sent_items_total', { signal: 'traces' });
    t.diagnostic(`receiver refused ${refused} spans (the SDK retried them), accepted ${accepted}; batch dropped ${dropped}; exporter sent ${sent}`);
    assert.ok(refused > 0, 'the receiver never pushed back: the test did not fill the queue');
    assert.equal(dropped, 0, 'batch dropped acknowledged spans');
    assert.equal(accepted, N);
    assert.equal(sent, N);
  });
});

test('(c) bad input on OTLP/HTTP: malformed protobuf, oversize, malformed JSON -> 4xx; gzip works; still serving', { timeout: TEST_TIMEOUT }, async (t) => {
  const h = await setup(t);
  if (!h) return;
  await withDiagnostics(t, h, async () => {
    const PB = { 'Content-Type': 'application/x-protobuf' };
    const JSON_CT = { 'Content-Type': 'application/json' };

    // Malformed protobuf: field 1 (resource_spans), length-delimited,
    // claiming far more bytes than follow.
    const bad = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]);
    let r = await h.strata.post('/v1/traces', bad, PB);
    assert.equal(r.status, 400, `malformed protobuf: want 400, got ${r.status} ${r.body}`);
    assert.ok(r.body.length > 0, 'malformed protobuf: 400 must carry a message body');
    t.diagnostic(`malformed protobuf -> 400, body ${JSON.stringify(r.body.toString('latin1').slice(0, 200))}`);

    // Wrong wire types inside an otherwise well-framed message.
    r = await h.strata.post('/v1/traces', Buffer.from([0x0a, 0x02, 0x0a, 0x05]), PB);
    assert.equal(r.status, 400, `truncated nested protobuf: want 400, got ${r.status}`);

    // Oversize (> 4 MiB): a *valid* request with one huge attribute, so only
    // the size is wrong.
    const huge = rawTraceRequest('huge', [{ key: 'big', value: { stringValue: 'x'.repeat(4 * 1024 * 1024 + 1024) } }]);
    assert.ok(huge.buf.length > 4 * 1024 * 1024);
    // Raw socket: strata may answer early and close while we still write.
    r = await h.strata.rawPost('/v1/traces', huge.buf, PB, 15000);
    assert.ok(r.status === 400 || r.status === 413, `oversize body: want 400 or 413, got ${r.status}`);
    // Same size, gzip-compressed to a few KiB: the limit applies to the
    // decompressed body too (a zip bomb must not get through).
    r = await h.strata.post('/v1/traces', zlib.gzipSync(huge.buf), { ...PB, 'Content-Encoding': 'gzip' }, 15000);
    assert.ok(r.status === 400 || r.status === 413, `oversize decompressed body: want 400 or 413, got ${r.status}`);

    // Malformed JSON.
    r = await h.strata.post('/v1/traces', Buffer.from('{"resourceSpans": [ {"scopeSpans": '), JSON_CT);
    assert.equal(r.status, 400, `malformed JSON: want 400, got ${r.status} ${r.body}`);
    assert.ok(r.body.length > 0, 'malformed JSON: 400 must carry a message body');
    // JSON that parses but is not an OTLP request shape.
    r = await h.strata.post('/v1/traces', Buffer.from('{"resourceSpans": 5}'), JSON_CT);
    assert.equal(r.status, 400, `wrong JSON shape: want 400, got ${r.status}`);

    // None of the above may have reached the backend.
    await sleep(300);
    assert.equal(h.sink.itemCount('traces'), 0, 'rejected input must not be exported');

    // gzip-compressed valid protobuf -> 200 and arrives intact.
    const good = rawTraceRequest('gzipped');
    r = await h.strata.post('/v1/traces', zlib.gzipSync(good.buf), { ...PB, 'Content-Encoding': 'gzip' });
    assert.equal(r.status, 200, `gzip protobuf: want 200, got ${r.status} ${r.body}`);
    // Plain valid protobuf still served after all the bad requests.
    const plain = rawTraceRequest('plain-after-errors');
    r = await h.strata.post('/v1/traces', plain.buf, PB);
    assert.equal(r.status, 200, `valid protobuf after errors: want 200, got ${r.status}`);

    await h.sink.waitFor((s) => s.spans().length >= 2, 10000, 'gzip + plain spans at sink');
    await sleep(300);
    const spans = h.sink.spans();
    assert.deepEqual(spans.map((s) => s.span.name).sort(), ['gzipped', 'plain-after-errors']);
    const gz = spans.find((s) => s.span.name === 'gzipped');
    assert.equal(gz.spanId, good.spanId);
    assert.equal(gz.traceId, good.traceId);
    assert.equal(gz.span.startTimeUnixNano, '1700000000000000000');
    assert.deepStrictEqual(otlp.attrs(gz.span.attributes), { k: 'v' });
    assert.equal(gz.scope.name, 'raw-client');

    const health = await h.strata.healthz();
    assert.equal(health.status, 200, 'still healthy');
  });
});

test('(d) SIGTERM: exits 0 after draining; everything accepted reached the sink', { timeout: TEST_TIMEOUT }, async (t) => {
  const h = await setup(t);
  if (!h) return;
  const tracing = sdk.createTracing({ protocol: 'grpc', target: h.strata.endpoints, processor: 'batch' });
  const logging = sdk.createLogging({ protocol: 'http/protobuf', target: h.strata.endpoints });
  h.track(() => shutdownQuietly(tracing));
  h.track(() => shutdownQuietly(logging));
  await withDiagnostics(t, h, async () => {
    // A slow backend, so data is still in flight inside strata at SIGTERM.
    h.sink.setDelay(200);
    const N = 300;
    const ids = emitSpans(tracing, N, 'drain');
    const logger = logging.logger('strata-it-drain');
    const L = 20;
    for (let i = 0; i < L; i++) logger.emit({ body: `drain-log-${i}`, attributes: { i } });
    await withTimeout(Promise.all([tracing.flush(), logging.flush()]), 10000, 'sdk flush');
    sdk.assertAllExportsOk(tracing.exporter, 'trace export');
    sdk.assertAllExportsOk(logging.exporter, 'log export');

    // Everything above was accepted (2xx/OK) by strata.  Stop it now.
    const code = await h.strata.stop({ timeoutMs: 20000 });
    assert.equal(code, 0, `exit code after SIGTERM: ${JSON.stringify(h.strata.exited)}`);

    const counts = spanIdCounts(h.sink);
    const missing = ids.filter((id) => !counts.has(id));
    assert.equal(missing.length, 0, `${missing.length}/${N} accepted spans did not reach the sink before exit`);
    const logBodies = new Set(h.sink.logs().map((l) => otlp.anyValue(l.log.body)));
    for (let i = 0; i < L; i++) assert.ok(logBodies.has(`drain-log-${i}`), `log drain-log-${i} lost at shutdown`);
  });
});
