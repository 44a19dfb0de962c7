'use strict';
// SDK -> strata (OTLP grpc | http/protobuf | http/json) -> strata's OTLP/gRPC
// exporter -> sink.  Asserts the sink received exactly what the SDK sent.

const { describe, test } = require('node:test');
const { setup, shutdownQuietly, context } = require('./lib/harness');
const sdk = require('./lib/sdk');
const sc = require('./lib/scenarios');
const { withTimeout, sleep } = require('./lib/util');

const TEST_TIMEOUT = 30000;
// After the expected items arrived, wait a little so that duplicates or
// extra items (which would fail the exact-count assertions) can show up.
const SETTLE_MS = 300;

async function withDiagnostics(t, h, fn) {
  try {
    await fn();
  } catch (e) {
    for (const line of context(h).split('\n')) t.diagnostic(line);
    throw e;
  }
}

for (const protocol of sdk.PROTOCOLS) {
  describe(`roundtrip over ${protocol}`, () => {
    test('traces: every span field, id, attribute, event, link, status, scope and resource intact', { timeout: TEST_TIMEOUT }, async (t) => {
      const h = await setup(t);
      if (!h) return;
      const tracing = sdk.createTracing({ protocol, target: h.strata.endpoints, resourceAttributes: sc.RESOURCE_ATTRS });
      h.track(() => shutdownQuietly(tracing));
      await withDiagnostics(t, h, async () => {
        const exp = sc.emitTraces(tracing);
        await withTimeout(tracing.flush(), 10000, 'tracer flush');
        sdk.assertAllExportsOk(tracing.exporter, `${protocol} trace export to strata`);
        await h.sink.waitFor((s) => s.spans().length >= exp.spans.length, 10000, `${exp.spans.length} spans at sink`);
        await sleep(SETTLE_MS);
        sc.assertTraces(h.sink.spans(), exp);
      });
    });

    test('metrics: counter, up-down counter, histogram, gauges with attributes', { timeout: TEST_TIMEOUT }, async (t) => {
      const h = await setup(t);
      if (!h) return;
      const metrics = sdk.createMetrics({ protocol, target: h.strata.endpoints, resourceAttributes: sc.RESOURCE_ATTRS });
      h.track(() => shutdownQuietly(metrics));
      await withDiagnostics(t, h, async () => {
        const exp = sc.emitMetrics(metrics);
        await withTimeout(metrics.flush(), 10000, 'meter flush');
        sdk.assertAllExportsOk(metrics.exporter, `${protocol} metric export to strata`);
        const names = Object.keys(exp.metrics);
        await h.sink.waitFor((s) => {
          const got = new Set(s.metrics().map((m) => m.name));
          return names.every((n) => got.has(n));
        }, 10000, `metrics ${names.join(', ')} at sink`);
        await sleep(SETTLE_MS);
        sc.assertMetrics(h.sink.metrics(), exp);
        // One collection was exported once: exactly one occurrence each.
        for (const n of names) {
          const c = h.sink.metrics().filter((m) => m.name === n).length;
          if (c !== 1) throw new Error(`metric ${n} arrived ${c} times, expected once`);
        }
      });
    });

    test('logs: body, severity, attributes, trace context', { timeout: TEST_TIMEOUT }, async (t) => {
      const h = await setup(t);
      if (!h) return;
      const tracing = sdk.createTracing({ protocol, target: h.strata.endpoints, resourceAttributes: sc.RESOURCE_ATTRS });
      const logging = sdk.createLogging({ protocol, target: h.strata.endpoints, resourceAttributes: sc.RESOURCE_ATTRS });
      h.track(() => shutdownQuietly(tracing));
      h.track(() => shutdownQuietly(logging));
      await withDiagnostics(t, h, async () => {
        const exp = sc.emitLogs(logging, tracing, protocol);
        await withTimeout(logging.flush(), 10000, 'logger flush');
        sdk.assertAllExportsOk(logging.exporter, `${protocol} log export to strata`);
        await h.sink.waitFor((s) => s.logs().length >= exp.logs.length, 10000, `${exp.logs.length} log records at sink`);
        await sleep(SETTLE_MS);
        sc.assertLogs(h.sink.logs(), exp);
      });
    });
  });
}

// OTLP/JSON as the spec writes it (which the JS SDK does not fully do):
// int64 as decimal strings, hex trace/span ids, base64 bytes, enums as
// integers, and an unknown field that receivers MUST ignore.
test('http/json: hand-written spec-encoded OTLP/JSON request', { timeout: TEST_TIMEOUT }, async (t) => {
  const h = await setup(t);
  if (!h) return;
  const assert = require('node:assert/strict');
  const otlp = require('./lib/otlp');
  await withDiagnostics(t, h, async () => {
    const traceId = '5b8efff798038103d269b633813fc60c';
    const spanId = 'eee19b7ec3c1b174';
    const parentSpanId = 'eee19b7ec3c1b173';
    const body = {
      resourceSpans: [{
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'json-client' } }] },
        scopeSpans: [{
          scope: { name: 'json-scope', version: '1.0.0', attributes: [{ key: 'scope.attr', value: { boolValue: true } }] },
          schemaUrl: 'https://opentelemetry.io/schemas/1.21.0',
          spans: [{
            traceId, spanId, parentSpanId,
            traceState: 'a=b',
            name: 'json-span',
            kind: 3,
            // Span/Link flags (opentelemetry-proto >= 1.1) are valid OTLP but
            // not in the proto version bundled with the JS SDK 0.57, so the
            // sink cannot see them; sent, not asserted.
            flags: 769,
            startTimeUnixNano: '1544712660000000000',
            endTimeUnixNano: '1544712661000000001',
            someFutureField: { ignored: true },
            attributes: [
              { key: 'int64.max', value: { intValue: '9223372036854775807' } },
              { key: 'int64.min', value: { intValue: '-9223372036854775808' } },
              { key: 'int.as.number', value: { intValue: 12 } },
              { key: 'double', value: { doubleValue: 0.1 } },
              { key: 'bytes', value: { bytesValue: Buffer.from([0, 1, 254, 255]).toString('base64') } },
              { key: 'kv', value: { kvlistValue: { values: [{ key: 'inner', value: { stringValue: 'x' } }] } } },
              { key: 'arr', value: { arrayValue: { values: [{ stringValue: 'a' }, { intValue: '1' }, { boolValue: false }, {}] } } },
            ],
            events: [{ timeUnixNano: '1544712660500000000', name: 'ev', attributes: [{ key: 'e', value: { doubleValue: 2.5 } }] }],
            links: [{ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceState: 'x=y', attributes: [], flags: 1 }],
            status: { code: 2, message: 'json error' },
          }],
        }],
      }],
    };
    const r = await h.strata.post('/v1/traces', Buffer.from(JSON.stringify(body)), { 'Content-Type': 'application/json' });
    assert.equal(r.status, 200, `want 200, got ${r.status}: ${r.body}`);
    await h.sink.waitFor((s) => s.spans().length >= 1, 10000, 'the span at the sink');
    await sleep(SETTLE_MS);
    const spans = h.sink.spans();
    assert.equal(spans.length, 1);
    const [got] = spans;
    const s = got.span;
    assert.equal(got.traceId, traceId);
    assert.equal(got.spanId, spanId);
    assert.equal(got.parentSpanId, parentSpanId);
    assert.equal(s.traceState, 'a=b');
    assert.equal(s.name, 'json-span');
    assert.equal(s.kind, 3);
    assert.equal(s.startTimeUnixNano, '1544712660000000000');
    assert.equal(s.endTimeUnixNano, '1544712661000000001');
    assert.deepStrictEqual(otlp.attrs(s.attributes), {
      'int64.max': 9223372036854775807n,
      'int64.min': -9223372036854775808n,
      'int.as.number': 12n,
      double: 0.1,
      bytes: Buffer.from([0, 1, 254, 255]),
      kv: { inner: 'x' },
      arr: ['a', 1n, false, null],
    });
    assert.equal(s.events.length, 1);
    assert.equal(s.events[0].timeUnixNano, '1544712660500000000');
    assert.deepStrictEqual(otlp.attrs(s.events[0].attributes), { e: 2.5 });
    assert.equal(otlp.hex(s.links[0].traceId), '0af7651916cd43dd8448eb211c80319c');
    assert.equal(otlp.hex(s.links[0].spanId), 'b7ad6b7169203331');
    assert.equal(s.links[0].traceState, 'x=y');
    assert.deepStrictEqual({ code: s.status.code, message: s.status.message }, { code: 2, message: 'json error' });
    assert.equal(got.scope.name, 'json-scope');
    assert.equal(got.scope.version, '1.0.0');
    assert.deepStrictEqual(otlp.attrs(got.scope.attributes), { 'scope.attr': true });
    assert.equal(got.scopeSchemaUrl, 'https://opentelemetry.io/schemas/1.21.0');
    assert.deepStrictEqual(otlp.attrs(got.resource.attributes), { 'service.name': 'json-client' });
  });
});
