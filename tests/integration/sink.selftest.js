'use strict';
// Self-test of the harness; needs no strata binary.
//
// 1. The real OTel JS SDK exports straight to the sink over OTLP/gRPC; the
//    round-trip assertions used by roundtrip.test.js must pass.  This proves
//    the sink decodes real SDK output and the assertions are right.
// 2. The same assertions must FAIL on deliberately corrupted copies of what
//    the sink received (they are not vacuous).
// 3. Sink features: injected error codes, stop/restart on the same port,
//    bounded waitFor.
// 4. Dry run of lib/strata.js + the http/protobuf and http/json scenarios
//    through tools/fake-strata.js (a JS stand-in for the strata contract).
//
// Run: node --test sink.selftest.js

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { startSink, grpcStatus } = require('./lib/sink');
const sdk = require('./lib/sdk');
const sc = require('./lib/scenarios');
const otlp = require('./lib/otlp');
const { startStrata, parsePrometheus, sumMetrics, selfMetric } = require('./lib/strata');
const { withTimeout, waitFor, sleep } = require('./lib/util');

const T = 30000;
const FAKE_STRATA = path.join(__dirname, 'tools', 'fake-strata.js');

const findKv = (kvs, key) => kvs.find((kv) => kv.key === key);

describe('SDK -> sink directly over OTLP/gRPC', () => {
  let sink;
  const bundles = [];
  before(async () => { sink = await startSink(); });
  after(async () => {
    for (const b of bundles) await withTimeout(b.shutdown(), 5000, 'sdk shutdown').catch(() => {});
    await sink.stop();
  });

  let traceExp; let metricExp; let logExp;

  test('traces round-trip exactly', { timeout: T }, async () => {
    sink.clear();
    const tracing = sdk.createTracing({ protocol: 'grpc', target: { grpc: sink.endpoint }, resourceAttributes: sc.RESOURCE_ATTRS });
    bundles.push(tracing);
    traceExp = sc.emitTraces(tracing);
    await withTimeout(tracing.flush(), 10000, 'flush');
    sdk.assertAllExportsOk(tracing.exporter);
    await sink.waitFor((s) => s.spans().length >= traceExp.spans.length, 10000);
    sc.assertTraces(sink.spans(), traceExp);
    // ids are byte-identical and the right size
    for (const e of traceExp.spans) {
      const r = sink.spans().find((x) => x.spanId === e.spanId);
      assert.ok(Buffer.isBuffer(r.span.spanId) && Buffer.isBuffer(r.span.traceId));
      assert.equal(r.traceId, e.traceId);
    }
  });

  test('trace assertions reject corrupted data', { timeout: T }, () => {
    assert.ok(traceExp, 'depends on the previous test');
    const raw = sink.accepted('traces').map((r) => r.raw);
    const fresh = () => raw.map((b) => otlp.decodeRequest('traces', b));
    const spanNamed = (reqs, name) => otlp.flattenSpans(reqs).find((s) => s.span.name === name).span;
    const mutations = {
      'span id byte flipped': (q) => { spanNamed(q, 'GET /root').spanId[7] ^= 1; },
      'trace id byte flipped': (q) => { spanNamed(q, 'child-op').traceId[0] ^= 0x80; },
      'parent span id cleared': (q) => { spanNamed(q, 'consume').parentSpanId = Buffer.alloc(0); },
      'int attribute became double': (q) => { findKv(spanNamed(q, 'GET /root').attributes, 'attr.int').value = { doubleValue: 42 }; },
      'double attribute became int': (q) => { findKv(spanNamed(q, 'GET /root').attributes, 'attr.double_negative').value = { intValue: '0' }; },
      'bool attribute flipped': (q) => { findKv(spanNamed(q, 'GET /root').attributes, 'attr.bool_false').value = { boolValue: true }; },
      'empty string attribute dropped': (q) => { const s = spanNamed(q, 'GET /root'); s.attributes = s.attributes.filter((kv) => kv.key !== 'attr.empty_string'); },
      'string array reordered': (q) => { findKv(spanNamed(q, 'GET /root').attributes, 'attr.string_array').value.arrayValue.values.reverse(); },
      'null array element dropped': (q) => { findKv(spanNamed(q, 'GET /root').attributes, 'attr.string_array_with_null').value.arrayValue.values.splice(1, 1); },
      'unicode mangled': (q) => { findKv(spanNamed(q, 'GET /root').attributes, 'attr.unicode').value = { stringValue: 'h?llo' }; },
      'long string truncated': (q) => { const kv = findKv(spanNamed(q, 'GET /root').attributes, 'attr.long_string'); kv.value.stringValue = kv.value.stringValue.slice(1); },
      'extra attribute': (q) => { spanNamed(q, 'produce').attributes.push({ key: 'x', value: { stringValue: 'y' } }); },
      'event attribute changed': (q) => { findKv(spanNamed(q, 'child-op').events[0].attributes, 'event.int').value = { intValue: '6' }; },
      'event time off by 1ns': (q) => { const e = spanNamed(q, 'child-op').events[1]; e.timeUnixNano = (BigInt(e.timeUnixNano) + 1n).toString(); },
      'event dropped': (q) => { spanNamed(q, 'child-op').events.pop(); },
      'link trace state changed': (q) => { spanNamed(q, 'GET /root').links[0].traceState = 'vendor1=abc'; },
      'link attribute dropped': (q) => { spanNamed(q, 'GET /root').links[0].attributes.pop(); },
      'span trace state dropped': (q) => { spanNamed(q, 'remote-child').traceState = ''; },
      'status message changed': (q) => { spanNamed(q, 'child-op').status.message = 'boom'; },
      'status code changed': (q) => { spanNamed(q, 'GET /root').status.code = 0; },
      'kind changed': (q) => { spanNamed(q, 'consume').kind = 4; },
      'end time off by 1ns': (q) => { const s = spanNamed(q, 'link-target'); s.endTimeUnixNano = (BigInt(s.endTimeUnixNano) + 1n).toString(); },
      'name changed': (q) => { spanNamed(q, 'internal-op').name = 'internal_op'; },
      'resource attribute changed': (q) => { findKv(q[0].resourceSpans[0].resource.attributes, 'res.int').value = { intValue: '8' }; },
      'scope version changed': (q) => { q[0].resourceSpans[0].scopeSpans[0].scope.version = '1.2.4'; },
      'scope schema url dropped': (q) => {
        for (const req of q) for (const rs of req.resourceSpans) for (const ss of rs.scopeSpans) if (ss.schemaUrl) ss.schemaUrl = '';
      },
      'span duplicated': (q) => { const ss = q[0].resourceSpans[0].scopeSpans[0]; ss.spans.push(ss.spans[0]); },
      'span lost': (q) => { q.pop(); },
    };
    // The unmodified data passes.
    sc.assertTraces(otlp.flattenSpans(fresh()), traceExp);
    for (const [name, mutate] of Object.entries(mutations)) {
      const q = fresh();
      mutate(q);
      assert.throws(() => sc.assertTraces(otlp.flattenSpans(q), traceExp), `mutation "${name}" was not detected`);
    }
  });

  test('metrics round-trip exactly', { timeout: T }, async () => {
    sink.clear();
    const metrics = sdk.createMetrics({ protocol: 'grpc', target: { grpc: sink.endpoint }, resourceAttributes: sc.RESOURCE_ATTRS });
    bundles.push(metrics);
    metricExp = sc.emitMetrics(metrics);
    await withTimeout(metrics.flush(), 10000, 'flush');
    sdk.assertAllExportsOk(metrics.exporter);
    await sink.waitFor((s) => s.metrics().length >= Object.keys(metricExp.metrics).length, 10000);
    sc.assertMetrics(sink.metrics(), metricExp);
  });

  test('metric assertions reject corrupted data', { timeout: T }, () => {
    assert.ok(metricExp, 'depends on the previous test');
    const raw = sink.accepted('metrics').map((r) => r.raw);
    const fresh = () => raw.map((b) => otlp.decodeRequest('metrics', b));
    const m = (q, name) => otlp.flattenMetrics(q).find((x) => x.name === name).metric;
    const mutations = {
      'counter value changed': (q) => { m(q, 'it.counter').sum.dataPoints[0].asInt = '9'; },
      'counter int became double': (q) => { const p = m(q, 'it.counter').sum.dataPoints[0]; p.asDouble = Number(p.asInt); delete p.asInt; },
      'counter attribute changed': (q) => { findKv(m(q, 'it.counter').sum.dataPoints[0].attributes, 'route').value = { stringValue: '/c' }; },
      'monotonic flag flipped': (q) => { m(q, 'it.updown').sum.isMonotonic = true; },
      'temporality changed': (q) => { m(q, 'it.counter').sum.aggregationTemporality = 1; },
      'updown value changed': (q) => { m(q, 'it.updown').sum.dataPoints[0].asDouble = 6.4; },
      'histogram bucket moved': (q) => { const b = m(q, 'it.histogram').histogram.dataPoints[0].bucketCounts; b[1] = '0'; b[2] = '2'; },
      'histogram sum changed': (q) => { m(q, 'it.histogram').histogram.dataPoints[0].sum += 0.5; },
      'histogram min changed': (q) => { m(q, 'it.histogram').histogram.dataPoints[0].min = 0; },
      'histogram bound dropped': (q) => { m(q, 'it.histogram').histogram.dataPoints[0].explicitBounds.pop(); },
      'gauge value changed': (q) => { m(q, 'it.gauge').gauge.dataPoints[0].asDouble = 21.5; },
      'observable gauge sign': (q) => { m(q, 'it.observable_gauge').gauge.dataPoints[0].asInt = '17'; },
      'unit changed': (q) => { m(q, 'it.histogram').unit = 's'; },
      'description changed': (q) => { m(q, 'it.gauge').description = ''; },
      'data point lost': (q) => { m(q, 'it.counter').sum.dataPoints.pop(); },
      'metric lost': (q) => { const sm = q[0].resourceMetrics[0].scopeMetrics[0]; sm.metrics = sm.metrics.filter((x) => x.name !== 'it.updown'); },
    };
    sc.assertMetrics(otlp.flattenMetrics(fresh()), metricExp);
    for (const [name, mutate] of Object.entries(mutations)) {
      const q = fresh();
      mutate(q);
      assert.throws(() => sc.assertMetrics(otlp.flattenMetrics(q), metricExp), `mutation "${name}" was not detected`);
    }
  });

  test('logs round-trip exactly', { timeout: T }, async () => {
    sink.clear();
    const tracing = sdk.createTracing({ protocol: 'grpc', target: { grpc: sink.endpoint }, resourceAttributes: sc.RESOURCE_ATTRS });
    const logging = sdk.createLogging({ protocol: 'grpc', target: { grpc: sink.endpoint }, resourceAttributes: sc.RESOURCE_ATTRS });
    bundles.push(tracing, logging);
    logExp = sc.emitLogs(logging, tracing, 'grpc');
    await withTimeout(logging.flush(), 10000, 'flush');
    sdk.assertAllExportsOk(logging.exporter);
    await sink.waitFor((s) => s.logs().length >= logExp.logs.length, 10000);
    sc.assertLogs(sink.logs(), logExp);
    const inSpan = logExp.logs.find((l) => l.id === 'in-span');
    assert.match(inSpan.traceId, /^[0-9a-f]{32}$/);
    assert.notEqual(inSpan.traceId, '0'.repeat(32));
  });

  test('log assertions reject corrupted data', { timeout: T }, () => {
    assert.ok(logExp, 'depends on the previous test');
    const raw = sink.accepted('logs').map((r) => r.raw);
    const fresh = () => raw.map((b) => otlp.decodeRequest('logs', b));
    const l = (q, id) => otlp.flattenLogs(q).find((x) => otlp.attrs(x.log.attributes)['log.id'] === id).log;
    const mutations = {
      'trace id cleared': (q) => { l(q, 'in-span').traceId = Buffer.alloc(0); },
      'span id flipped': (q) => { l(q, 'in-span').spanId[3] ^= 1; },
      'flags cleared': (q) => { l(q, 'in-span').flags = 0; },
      'severity number changed': (q) => { l(q, 'plain').severityNumber = 10; },
      'severity text changed': (q) => { l(q, 'plain').severityText = 'info'; },
      'body changed': (q) => { l(q, 'plain').body = { stringValue: 'hello log' }; },
      'map body nested value changed': (q) => { findKv(l(q, 'in-span').body.kvlistValue.values, 'ok').value = { boolValue: false }; },
      'bytes body changed': (q) => { l(q, 'bytes-body').body.bytesValue[0] ^= 1; },
      'bytes attribute became string': (q) => { findKv(l(q, 'plain').attributes, 'log.bytes').value = { stringValue: 'AAEC/v8=' }; },
      'nested map attribute lost a key': (q) => { findKv(l(q, 'plain').attributes, 'log.nested_map').value.kvlistValue.values.pop(); },
      'observed time changed': (q) => { l(q, 'array-body').observedTimeUnixNano = '0'; },
      'log lost': (q) => { q.pop(); },
    };
    sc.assertLogs(otlp.flattenLogs(fresh()), logExp);
    for (const [name, mutate] of Object.entries(mutations)) {
      const q = fresh();
      mutate(q);
      assert.throws(() => sc.assertLogs(otlp.flattenLogs(q), logExp), `mutation "${name}" was not detected`);
    }
  });
});

describe('sink behaviour', () => {
  test('failNext answers with the injected code, then succeeds; failed calls hold no data', { timeout: T }, async (t) => {
    const sink = await startSink();
    t.after(() => sink.stop());
    const tracing = sdk.createTracing({ protocol: 'grpc', target: { grpc: sink.endpoint } });
    t.after(() => withTimeout(tracing.shutdown(), 5000, 'shutdown').catch(() => {}));
    const tracer = tracing.tracer('selftest');

    sink.failNext(2, { code: grpcStatus.UNAVAILABLE, signal: 'traces' });
    sink.failNext(1, { code: grpcStatus.RESOURCE_EXHAUSTED, details: 'slow down' });
    for (let i = 0; i < 4; i++) {
      tracer.startSpan(`s${i}`).end();
      await withTimeout(tracing.flush(), 10000, 'flush');
    }
    // The OTel JS 0.57 gRPC exporter does not retry, so the first three
    // exports fail and the fourth succeeds.
    assert.deepEqual(tracing.exporter.results.map((r) => r.ok), [false, false, false, true]);
    assert.deepEqual(sink.records.map((r) => r.code), [grpcStatus.UNAVAILABLE, grpcStatus.UNAVAILABLE, grpcStatus.RESOURCE_EXHAUSTED, grpcStatus.OK]);
    assert.match(String(tracing.exporter.results[2].error), /slow down/);
    assert.equal(sink.itemCount('traces'), 1);
    assert.deepEqual(sink.spans().map((s) => s.span.name), ['s3']);
    // failed calls were still decoded and recorded for inspection
    assert.equal(otlp.flattenSpans([sink.records[0].request])[0].span.name, 's0');
  });

  test('stop (kill) and restart on the same port', { timeout: T }, async (t) => {
    const sink = await startSink();
    t.after(() => sink.stop());
    const port = sink.port;
    const tracing = sdk.createTracing({ protocol: 'grpc', target: { grpc: sink.endpoint } });
    t.after(() => withTimeout(tracing.shutdown(), 5000, 'shutdown').catch(() => {}));
    const tracer = tracing.tracer('selftest');

    tracer.startSpan('before').end();
    await withTimeout(tracing.flush(), 10000, 'flush');
    await sink.stop();
    assert.equal(sink.running, false);
    tracer.startSpan('while-down').end();
    await withTimeout(tracing.flush(), 10000, 'flush');
    assert.equal(tracing.exporter.results.at(-1).ok, false, 'export to a stopped sink fails');

    await sink.start();
    assert.equal(sink.port, port, 'same port after restart');
    assert.equal(sink.epoch, 2);
    // The client channel may need a moment to reconnect (the JS gRPC
    // exporter fails fast while it is not connected), so keep sending.
    await waitFor(async () => {
      tracer.startSpan('after').end();
      await withTimeout(tracing.flush(), 10000, 'flush');
      return sink.spans().some((s) => s.span.name === 'after');
    }, 15000, { intervalMs: 200, describe: () => sink.describe() });
    const names = sink.spans().map((s) => s.span.name);
    assert.ok(names.includes('before') && names.includes('after') && !names.includes('while-down'), names.join(','));
    assert.deepEqual([...new Set(sink.accepted('traces').map((r) => r.epoch))], [1, 2]);
  });

  test('graceful stop waits for an in-flight (delayed) call', { timeout: T }, async (t) => {
    const sink = await startSink();
    t.after(() => sink.stop());
    sink.setDelay(300);
    const tracing = sdk.createTracing({ protocol: 'grpc', target: { grpc: sink.endpoint } });
    t.after(() => withTimeout(tracing.shutdown(), 5000, 'shutdown').catch(() => {}));
    tracing.tracer('selftest').startSpan('slow').end();
    await sink.waitFor((s) => s.records.length === 1, 5000);
    await sink.stop({ graceful: true });
    await withTimeout(tracing.flush(), 10000, 'flush');
    assert.equal(tracing.exporter.results[0].ok, true);
  });

  test('kill during a delayed answer drops the call uncommitted; client sees an error', { timeout: T }, async (t) => {
    const sink = await startSink();
    t.after(() => sink.stop());
    sink.setDelay(1000);
    const tracing = sdk.createTracing({ protocol: 'grpc', target: { grpc: sink.endpoint } });
    t.after(() => withTimeout(tracing.shutdown(), 5000, 'shutdown').catch(() => {}));
    tracing.tracer('selftest').startSpan('doomed').end();
    await sink.waitFor((s) => s.inFlight().length === 1, 5000);
    await sink.stop();
    await withTimeout(tracing.flush(), 10000, 'flush');
    assert.equal(tracing.exporter.results[0].ok, false, 'client must not see success');
    await sleep(1100); // the delayed answer fires into the void
    assert.equal(sink.records.length, 1);
    assert.equal(sink.records[0].lost, true);
    assert.equal(sink.itemCount('traces'), 0, 'uncommitted data is not counted as received');
  });

  test('waitFor is bounded and reports what it saw', { timeout: T }, async (t) => {
    const sink = await startSink();
    t.after(() => sink.stop());
    const t0 = Date.now();
    await assert.rejects(sink.waitFor((s) => s.spans().length > 0, 300, 'a span'), /timed out after 300 ms: a span[\s\S]*sink 127\.0\.0\.1:\d+ epoch=1/);
    assert.ok(Date.now() - t0 < 2000);
  });

  test('malformed gRPC payload -> INVALID_ARGUMENT, recorded', { timeout: T }, async (t) => {
    const grpc = require('@grpc/grpc-js');
    const sink = await startSink();
    t.after(() => sink.stop());
    const Client = grpc.makeGenericClientConstructor({}, 'x');
    const client = new Client(sink.endpoint, grpc.credentials.createInsecure());
    t.after(() => client.close());
    const err = await new Promise((resolve) => {
      client.makeUnaryRequest(otlp.SIGNALS.traces.path, (x) => x, (x) => x, Buffer.from([0x0a, 0xff, 0xff, 0x01]),
        new grpc.Metadata(), { deadline: Date.now() + 5000 }, (e) => resolve(e));
    });
    assert.equal(err && err.code, grpcStatus.INVALID_ARGUMENT);
    assert.equal(sink.decodeErrors, 1);
    assert.equal(sink.itemCount('traces'), 0);
  });
});

describe('harness dry run through tools/fake-strata.js (not strata!)', () => {
  for (const protocol of sdk.PROTOCOLS) {
    test(`lib/strata.js + ${protocol} traces and logs scenarios`, { timeout: T }, async (t) => {
      const sink = await startSink();
      t.after(() => sink.stop());
      const strata = await startStrata({ sinkEndpoint: sink.endpoint, bin: FAKE_STRATA });
      t.after(() => strata.cleanup());
      assert.match(strata.configText, /endpoint: 127\.0\.0\.1:\d+/);
      const tracing = sdk.createTracing({ protocol, target: strata.endpoints, resourceAttributes: sc.RESOURCE_ATTRS });
      const logging = sdk.createLogging({ protocol, target: strata.endpoints, resourceAttributes: sc.RESOURCE_ATTRS });
      t.after(() => withTimeout(Promise.all([tracing.shutdown(), logging.shutdown()]), 5000, 'shutdown').catch(() => {}));
      const texp = sc.emitTraces(tracing);
      const lexp = sc.emitLogs(logging, tracing, protocol);
      await withTimeout(Promise.all([tracing.flush(), logging.flush()]), 10000, 'flush');
      sdk.assertAllExportsOk(tracing.exporter);
      sdk.assertAllExportsOk(logging.exporter);
      await sink.waitFor((s) => s.logs().length >= lexp.logs.length && s.spans().length >= texp.spans.length + 1, 10000);
      await sleep(200);
      // +1: the span the logs scenario creates as trace context
      sc.assertTraces(sink.spans().filter((s) => s.span.name !== 'log-parent'), texp);
      sc.assertLogs(sink.logs(), lexp);

      const samples = parsePrometheus(await strata.metricsText());
      assert.equal(sumMetrics(samples, { include: ['accepted', 'span'] }).total, texp.spans.length + 1);
      const code = await strata.stop();
      assert.equal(code, 0);
      assert.match(strata.stderr, /SIGTERM/);
    });
  }

  test('parsePrometheus is tolerant', () => {
    const s = parsePrometheus([
      '# HELP x_total help text',
      '# TYPE x_total counter',
      'x_total{a="1",b="q\\"uote"} 3',
      'x_total{a="2"} 4 1700000000000',
      'y NaN',
      'z +Inf',
      'garbage line here',
      'strata_receiver_accepted_spans_total{receiver="otlp",transport="grpc"} 1e3',
    ].join('\n'));
    assert.equal(sumMetrics(s, { include: ['x_total'] }).total, 7);
    assert.equal(s.find((x) => x.labels.b).labels.b, 'q"uote');
    assert.equal(sumMetrics(s, { include: ['accepted', /span/] }).total, 1000);
    assert.equal(s.find((x) => x.name === 'z').value, Infinity);
  });

  test('selfMetric finds accepted/sent span counters in either naming style', () => {
    // strata style: generic item counters with a signal label
    const strataText = [
      '# TYPE strata_receiver_accepted_items_total counter',
      'strata_receiver_accepted_items_total{receiver="otlp",signal="traces"} 500',
      'strata_receiver_accepted_items_total{receiver="otlp",signal="metrics"} 7',
      'strata_receiver_refused_items_total{receiver="otlp",signal="traces"} 3',
      'strata_exporter_sent_items_total{exporter="otlp",signal="traces"} 500',
      'strata_exporter_sent_items_total{exporter="otlp",signal="logs"} 9',
      'strata_exporter_send_failed_items_total{exporter="otlp",signal="traces"} 4',
      'strata_exporter_dropped_items_total{exporter="otlp",signal="traces"} 5',
    ].join('\n');
    assert.equal(selfMetric(strataText, 'accepted').total, 500);
    assert.equal(selfMetric(strataText, 'sent').total, 500);
    // otelcol style: the signal in the name, several transports
    const otelcolText = [
      'otelcol_receiver_accepted_spans_total{receiver="otlp",transport="grpc"} 300',
      'otelcol_receiver_accepted_spans_total{receiver="otlp",transport="http"} 200',
      'otelcol_receiver_refused_spans_total{receiver="otlp",transport="grpc"} 1',
      'otelcol_exporter_sent_spans_total{exporter="otlp"} 500',
      'otelcol_exporter_send_failed_spans_total{exporter="otlp"} 2',
      'otelcol_exporter_sent_metric_points_total{exporter="otlp"} 8',
    ].join('\n');
    assert.equal(selfMetric(otelcolText, 'accepted').total, 500);
    assert.equal(selfMetric(otelcolText, 'sent').total, 500);
    assert.equal(selfMetric('nothing 1', 'sent').matched.length, 0);
  });
});
