'use strict';
// Known data sets sent through the real OTel JS SDK, and the assertions that
// the sink received exactly that.  Shared by roundtrip.test.js (SDK -> strata
// -> sink) and sink.selftest.js (SDK -> sink directly), so the assertions
// themselves are proven against the real SDK output.

const assert = require('node:assert/strict');
const { api } = require('./sdk');
const { SeverityNumber } = require('@opentelemetry/api-logs');
const otlp = require('./otlp');

const { trace, context, SpanKind, SpanStatusCode, ValueType } = api;

// OTLP enum values (proto), as opposed to the JS API's.
const OTLP_KIND = {
  [SpanKind.INTERNAL]: 1, [SpanKind.SERVER]: 2, [SpanKind.CLIENT]: 3,
  [SpanKind.PRODUCER]: 4, [SpanKind.CONSUMER]: 5,
};
const OTLP_STATUS = { [SpanStatusCode.UNSET]: 0, [SpanStatusCode.OK]: 1, [SpanStatusCode.ERROR]: 2 };
const TEMPORALITY_CUMULATIVE = 2;

// Fixed timestamps make the expectations independent of the SDK clock.
const T0 = 1700000000; // seconds
const at = (ms) => [T0 + Math.floor(ms / 1000), (ms % 1000) * 1e6 + 123]; // hrtime, odd nanos
const nanos = (hr) => (BigInt(hr[0]) * 1000000000n + BigInt(hr[1])).toString();

const SCHEMA_URL = 'https://opentelemetry.io/schemas/1.21.0';

const RESOURCE_ATTRS = {
  'service.name': 'strata-it',
  'service.version': '9.9.9',
  'deployment.environment': 'integration',
  'res.int': 7,
  'res.double': 0.25,
  'res.bool': true,
  'res.str_arr': ['x', 'y'],
};

const LONG_STRING = 'L'.repeat(10000);

/** Span attributes covering every type the OTel JS SDK allows on spans. */
function spanAttributes() {
  return {
    'attr.string': 'hello',
    'attr.empty_string': '',
    'attr.unicode': 'héllo wörld ✓ 日本語 🚀',
    'attr.escapes': 'quote " backslash \\ newline \n tab \t nul-ish \u0001',
    'attr.long_string': LONG_STRING,
    'attr.bool_true': true,
    'attr.bool_false': false,
    'attr.int': 42,
    'attr.int_zero': 0,
    'attr.int_negative': -7,
    'attr.int_max_safe': Number.MAX_SAFE_INTEGER,
    'attr.int_min_safe': Number.MIN_SAFE_INTEGER,
    'attr.double': 3.14159,
    'attr.double_negative': -0.5,
    'attr.double_tiny': 1e-300,
    // Note: no huge doubles -- the JS SDK maps every Number.isInteger()
    // value (which includes all doubles >= 2^53) to intValue, which then
    // overflows int64.  Largest safe choice is a non-integral double.
    'attr.double_large': 4503599627370495.5,
    'attr.string_array': ['a', 'b', ''],
    'attr.bool_array': [true, false, true],
    'attr.int_array': [1, 2, 3, -4],
    'attr.double_array': [1.5, -2.25],
    // "Mixed" arrays the SDK accepts: numbers mixing ints and doubles
    // (become intValue/doubleValue elements) and arrays with null holes
    // (become empty AnyValue elements).
    'attr.number_array_mixed': [1, 2.5, 3],
    'attr.string_array_with_null': ['a', null, 'b'],
    'attr.empty_array': [],
  };
}
// Attributes the SDK drops by itself (never reach the exporter): arrays of
// mixed primitive types and non-primitive values.  They must not show up.
const SDK_DROPPED_SPAN_ATTRS = {
  'attr.dropped_mixed_array': ['a', 1, true],
  'attr.dropped_object': { nested: 'no' },
};

// ---------------------------------------------------------------- traces

/**
 * Create and end the known spans.  Returns the expectation object for
 * assertTraces.  `tracing` is from sdk.createTracing.
 */
function emitTraces(tracing) {
  const tracer = tracing.tracer('strata-it-tracer', '1.2.3');
  const tracer2 = tracing.provider.getTracer('strata-it-tracer-2', '0.0.1-alpha', { schemaUrl: SCHEMA_URL });
  const expected = [];
  const record = (span, exp) => {
    const sc = span.spanContext();
    expected.push({
      scope: { name: span.instrumentationLibrary.name, version: span.instrumentationLibrary.version || '' },
      scopeSchemaUrl: span.instrumentationLibrary.schemaUrl || '',
      traceId: sc.traceId,
      spanId: sc.spanId,
      traceState: sc.traceState ? sc.traceState.serialize() : '',
      events: [],
      links: [],
      status: { code: 0, message: '' },
      parentSpanId: '',
      ...exp,
    });
  };

  // 1. A span in its own trace that others link to.
  const target = tracer.startSpan('link-target', { startTime: at(0) });
  target.end(at(1));
  record(target, { name: 'link-target', kind: 1, start: nanos(at(0)), end: nanos(at(1)), attributes: {} });

  // 2. Root SERVER span with every attribute type and a link with
  //    attributes and a trace state.
  const linkCtx = {
    ...target.spanContext(),
    traceState: api.createTraceState('vendor1=abc,vendor2=xyz'),
  };
  const rootAttrs = { ...spanAttributes(), ...SDK_DROPPED_SPAN_ATTRS };
  const root = tracer.startSpan('GET /root', {
    kind: SpanKind.SERVER,
    startTime: at(10),
    attributes: rootAttrs,
    links: [{ context: linkCtx, attributes: { 'link.string': 'lv', 'link.int': 3, 'link.bool': false, 'link.double_array': [0.5, 1.5] } }],
  });
  root.setStatus({ code: SpanStatusCode.OK });
  const rootCtx = trace.setSpan(context.active(), root);

  // 3. CLIENT child with an event, a recorded exception and error status.
  const err = new Error('kaboom');
  const child = tracer.startSpan('child-op', { kind: SpanKind.CLIENT, startTime: at(15), attributes: { 'child.attr': 'x' } }, rootCtx);
  child.addEvent('evt-1', { 'event.string': 'ev', 'event.int': 5, 'event.double': 1.5, 'event.bool': true, 'event.array': ['p', 'q'] }, at(20));
  child.addEvent('evt-no-attrs', undefined, at(21));
  child.recordException(err, at(30));
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'boom: something failed (ünïcode)' });

  // 4. PRODUCER -> CONSUMER chain below the child, created as *active*
  //    spans (context manager propagation), plus an explicit INTERNAL one.
  let producer; let consumer; let internal;
  context.with(trace.setSpan(rootCtx, child), () => {
    producer = tracer.startSpan('produce', { kind: SpanKind.PRODUCER, startTime: at(40) });
    context.with(trace.setSpan(context.active(), producer), () => {
      consumer = tracer.startSpan('consume', { kind: SpanKind.CONSUMER, startTime: at(45) });
      internal = tracer.startSpan('internal-op', { kind: SpanKind.INTERNAL, startTime: at(46), attributes: { 'i.n': 1 } });
    });
  });
  internal.end(at(47));
  consumer.end(at(50));
  producer.end(at(55));
  child.end(at(60));
  root.end(at(100));

  record(root, {
    name: 'GET /root', kind: 2, start: nanos(at(10)), end: nanos(at(100)),
    attributes: spanAttributes(),
    status: { code: 1, message: '' },
    links: [{
      traceId: target.spanContext().traceId,
      spanId: target.spanContext().spanId,
      traceState: 'vendor1=abc,vendor2=xyz',
      attributes: { 'link.string': 'lv', 'link.int': 3, 'link.bool': false, 'link.double_array': [0.5, 1.5] },
    }],
  });
  record(child, {
    name: 'child-op', kind: 3, start: nanos(at(15)), end: nanos(at(60)),
    parentSpanId: root.spanContext().spanId,
    attributes: { 'child.attr': 'x' },
    events: [
      { name: 'evt-1', time: nanos(at(20)), attributes: { 'event.string': 'ev', 'event.int': 5, 'event.double': 1.5, 'event.bool': true, 'event.array': ['p', 'q'] } },
      { name: 'evt-no-attrs', time: nanos(at(21)), attributes: {} },
      { name: 'exception', time: nanos(at(30)), attributes: { 'exception.type': 'Error', 'exception.message': 'kaboom', 'exception.stacktrace': err.stack } },
    ],
    status: { code: 2, message: 'boom: something failed (ünïcode)' },
  });
  record(producer, { name: 'produce', kind: 4, start: nanos(at(40)), end: nanos(at(55)), parentSpanId: child.spanContext().spanId, attributes: {} });
  record(consumer, { name: 'consume', kind: 5, start: nanos(at(45)), end: nanos(at(50)), parentSpanId: producer.spanContext().spanId, attributes: {} });
  record(internal, { name: 'internal-op', kind: 1, start: nanos(at(46)), end: nanos(at(47)), parentSpanId: producer.spanContext().spanId, attributes: { 'i.n': 1 } });

  // 5. Child of a *remote* parent carrying a trace state (ids not generated
  //    locally), from a second tracer with a schema URL.
  const remote = {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: api.TraceFlags.SAMPLED,
    isRemote: true,
    traceState: api.createTraceState('congo=t61rcWkgMzE,rojo=00f067aa0ba902b7'),
  };
  const remoteChild = tracer2.startSpan('remote-child', { kind: SpanKind.SERVER, startTime: at(200) },
    trace.setSpanContext(context.active(), remote));
  remoteChild.end(at(201));
  record(remoteChild, {
    name: 'remote-child', kind: 2, start: nanos(at(200)), end: nanos(at(201)),
    parentSpanId: remote.spanId, attributes: {},
  });

  // 6. A span with SDK-generated (real clock) timestamps.
  const clock = tracer.startSpan('clock-span');
  clock.end();
  record(clock, { name: 'clock-span', kind: 1, start: nanos(clock.startTime), end: nanos(clock.endTime), attributes: {} });

  // Sanity: the ids we captured are what the SDK reports.
  assert.equal(expected.find((e) => e.name === 'remote-child').traceId, remote.traceId);
  assert.equal(expected.find((e) => e.name === 'remote-child').traceState, 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');

  return { spans: expected, resource: tracing.resource.attributes };
}

function checkAttrs(actualKvs, expectedObj, where) {
  assert.deepStrictEqual(otlp.attrs(actualKvs), otlp.expectedAttrs(expectedObj), `${where}: attributes differ`);
}

/** Assert `received` (sink.spans()) is exactly the expected spans. */
function assertTraces(received, exp) {
  const byId = new Map();
  for (const r of received) {
    assert.ok(!byId.has(r.spanId), `span ${r.spanId} (${r.span.name}) received more than once`);
    byId.set(r.spanId, r);
  }
  assert.equal(received.length, exp.spans.length,
    `expected ${exp.spans.length} spans, got ${received.length}: ${received.map((r) => r.span.name).join(', ')}`);
  for (const e of exp.spans) {
    const r = byId.get(e.spanId);
    assert.ok(r, `span ${e.name} (${e.spanId}) not received`);
    const s = r.span;
    const w = `span ${e.name}`;
    assert.equal(r.traceId, e.traceId, `${w}: traceId`);
    assert.equal(r.spanId, e.spanId, `${w}: spanId`);
    assert.equal(r.parentSpanId, e.parentSpanId, `${w}: parentSpanId`);
    assert.equal(s.traceId.length, 16, `${w}: traceId must be 16 bytes`);
    assert.equal(s.spanId.length, 8, `${w}: spanId must be 8 bytes`);
    assert.equal(s.traceState, e.traceState, `${w}: traceState`);
    assert.equal(s.name, e.name, `${w}: name`);
    assert.equal(s.kind, e.kind, `${w}: kind`);
    assert.equal(s.startTimeUnixNano, e.start, `${w}: startTimeUnixNano`);
    assert.equal(s.endTimeUnixNano, e.end, `${w}: endTimeUnixNano`);
    checkAttrs(s.attributes, e.attributes, w);
    assert.equal(s.droppedAttributesCount, 0, `${w}: droppedAttributesCount`);
    assert.equal(s.droppedEventsCount, 0, `${w}: droppedEventsCount`);
    assert.equal(s.droppedLinksCount, 0, `${w}: droppedLinksCount`);
    assert.deepStrictEqual({ code: s.status.code, message: s.status.message }, e.status, `${w}: status`);
    assert.equal(s.events.length, e.events.length, `${w}: event count`);
    e.events.forEach((ee, i) => {
      const re = s.events[i];
      assert.equal(re.name, ee.name, `${w}: event[${i}].name`);
      assert.equal(re.timeUnixNano, ee.time, `${w}: event[${i}].timeUnixNano`);
      checkAttrs(re.attributes, ee.attributes, `${w} event[${i}] ${ee.name}`);
      assert.equal(re.droppedAttributesCount, 0);
    });
    assert.equal(s.links.length, e.links.length, `${w}: link count`);
    e.links.forEach((el, i) => {
      const rl = s.links[i];
      assert.equal(otlp.hex(rl.traceId), el.traceId, `${w}: link[${i}].traceId`);
      assert.equal(otlp.hex(rl.spanId), el.spanId, `${w}: link[${i}].spanId`);
      assert.equal(rl.traceState, el.traceState, `${w}: link[${i}].traceState`);
      checkAttrs(rl.attributes, el.attributes, `${w} link[${i}]`);
      assert.equal(rl.droppedAttributesCount, 0);
    });
    assert.deepStrictEqual({ name: r.scope.name, version: r.scope.version }, e.scope, `${w}: scope`);
    assert.equal(r.scopeSchemaUrl, e.scopeSchemaUrl, `${w}: scope schemaUrl`);
    checkAttrs(r.resource.attributes, exp.resource, `${w} resource`);
    assert.equal(r.resource.droppedAttributesCount, 0, `${w}: resource droppedAttributesCount`);
  }
}

// ---------------------------------------------------------------- metrics

const HIST_VALUES = [1, 7, 42, 1500.5];
const HIST_BOUNDS = [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000];

/** Record the known metric data. Returns expectations for assertMetrics. */
function emitMetrics(metrics) {
  const meter = metrics.meter('strata-it-meter', '2.0.0');
  const counter = meter.createCounter('it.counter', { description: 'an int counter', unit: '{request}', valueType: ValueType.INT });
  counter.add(5, { route: '/a', code: 200 });
  counter.add(3, { route: '/a', code: 200 });
  counter.add(1, { route: '/b', code: 500, retry: true });

  const updown = meter.createUpDownCounter('it.updown', { description: 'a double up-down counter', unit: 'By' });
  updown.add(10.5, { pool: 'p1' });
  updown.add(-4, { pool: 'p1' });

  const hist = meter.createHistogram('it.histogram', { description: 'latency', unit: 'ms' });
  for (const v of HIST_VALUES) hist.record(v, { h: 'x', 'h.int': 1 });

  const gauge = meter.createGauge('it.gauge', { description: 'a sync gauge', unit: 'Cel' });
  gauge.record(21.5, { room: 'a' });
  gauge.record(23.25, { room: 'a' }); // last value wins

  const obs = meter.createObservableGauge('it.observable_gauge', { description: 'an async int gauge', valueType: ValueType.INT });
  obs.addCallback((result) => result.observe(-17, { src: 'cb', list: ['l1', 'l2'] }));

  return {
    resource: metrics.resource.attributes,
    scope: { name: 'strata-it-meter', version: '2.0.0' },
    metrics: {
      'it.counter': {
        type: 'sum', description: 'an int counter', unit: '{request}', isMonotonic: true,
        points: [
          { attributes: { route: '/a', code: 200 }, asInt: '8' },
          { attributes: { route: '/b', code: 500, retry: true }, asInt: '1' },
        ],
      },
      'it.updown': {
        type: 'sum', description: 'a double up-down counter', unit: 'By', isMonotonic: false,
        points: [{ attributes: { pool: 'p1' }, asDouble: 6.5 }],
      },
      'it.histogram': {
        type: 'histogram', description: 'latency', unit: 'ms',
        points: [{
          attributes: { h: 'x', 'h.int': 1 },
          count: String(HIST_VALUES.length),
          sum: HIST_VALUES.reduce((a, b) => a + b, 0),
          min: Math.min(...HIST_VALUES),
          max: Math.max(...HIST_VALUES),
          explicitBounds: HIST_BOUNDS,
          bucketCounts: bucketCounts(HIST_VALUES, HIST_BOUNDS).map(String),
        }],
      },
      'it.gauge': {
        type: 'gauge', description: 'a sync gauge', unit: 'Cel',
        points: [{ attributes: { room: 'a' }, asDouble: 23.25 }],
      },
      'it.observable_gauge': {
        type: 'gauge', description: 'an async int gauge', unit: '',
        points: [{ attributes: { src: 'cb', list: ['l1', 'l2'] }, asInt: '-17' }],
      },
    },
  };
}

function bucketCounts(values, bounds) {
  const counts = new Array(bounds.length + 1).fill(0);
  for (const v of values) {
    let i = bounds.findIndex((b) => v <= b);
    if (i < 0) i = bounds.length;
    counts[i] += 1;
  }
  return counts;
}

const attrKey = (o) => JSON.stringify(Object.entries(otlp.expectedAttrs(o)).sort(), (k, v) => (typeof v === 'bigint' ? `${v}n` : v));
const recvKey = (kvs) => JSON.stringify(Object.entries(otlp.attrs(kvs)).sort(), (k, v) => (typeof v === 'bigint' ? `${v}n` : v));

/** Assert every expected metric arrived with exactly the expected points.
 * Every occurrence of a metric (cumulative re-exports) must match. */
function assertMetrics(received, exp) {
  for (const [name, em] of Object.entries(exp.metrics)) {
    const occ = received.filter((r) => r.name === name);
    assert.ok(occ.length >= 1, `metric ${name} not received; got: ${[...new Set(received.map((r) => r.name))].join(', ')}`);
    for (const r of occ) {
      const m = r.metric;
      const w = `metric ${name}`;
      assert.equal(m.description, em.description, `${w}: description`);
      assert.equal(m.unit, em.unit, `${w}: unit`);
      assert.deepStrictEqual({ name: r.scope.name, version: r.scope.version }, exp.scope, `${w}: scope`);
      checkAttrs(r.resource.attributes, exp.resource, `${w} resource`);
      const data = m[em.type];
      assert.ok(data, `${w}: expected ${em.type} data, got keys ${Object.keys(m).filter((k) => m[k] != null).join(',')}`);
      if (em.type === 'sum') {
        assert.equal(data.isMonotonic, em.isMonotonic, `${w}: isMonotonic`);
        assert.equal(data.aggregationTemporality, TEMPORALITY_CUMULATIVE, `${w}: temporality`);
      }
      if (em.type === 'histogram') assert.equal(data.aggregationTemporality, TEMPORALITY_CUMULATIVE, `${w}: temporality`);
      assert.equal(data.dataPoints.length, em.points.length, `${w}: number of data points`);
      const byAttrs = new Map(data.dataPoints.map((p) => [recvKey(p.attributes), p]));
      for (const ep of em.points) {
        const p = byAttrs.get(attrKey(ep.attributes));
        assert.ok(p, `${w}: no data point with attributes ${attrKey(ep.attributes)}; have ${[...byAttrs.keys()].join(' | ')}`);
        checkAttrs(p.attributes, ep.attributes, `${w} point`);
        assert.ok(BigInt(p.timeUnixNano) > 0n, `${w}: timeUnixNano set`);
        if (em.type !== 'gauge') {
          assert.ok(BigInt(p.startTimeUnixNano) > 0n && BigInt(p.startTimeUnixNano) <= BigInt(p.timeUnixNano), `${w}: startTimeUnixNano`);
        }
        if (em.type === 'histogram') {
          assert.equal(p.count, ep.count, `${w}: count`);
          assert.equal(p.sum, ep.sum, `${w}: sum`);
          assert.equal(p.min, ep.min, `${w}: min`);
          assert.equal(p.max, ep.max, `${w}: max`);
          assert.deepStrictEqual(p.explicitBounds, ep.explicitBounds, `${w}: explicitBounds`);
          assert.deepStrictEqual(p.bucketCounts, ep.bucketCounts, `${w}: bucketCounts`);
        } else if (ep.asInt !== undefined) {
          assert.equal(p.asInt, ep.asInt, `${w}: asInt (got ${JSON.stringify({ asInt: p.asInt, asDouble: p.asDouble })})`);
          assert.equal(p.asDouble, undefined, `${w}: asDouble must be unset`);
        } else {
          assert.equal(p.asDouble, ep.asDouble, `${w}: asDouble (got ${JSON.stringify({ asInt: p.asInt, asDouble: p.asDouble })})`);
          assert.equal(p.asInt, undefined, `${w}: asInt must be unset`);
        }
      }
    }
  }
}

// ---------------------------------------------------------------- logs

/**
 * Emit the known log records. `protocol` matters: the OTel JS SDK 0.57
 * http/json exporter serializes Uint8Array with JSON.stringify (as
 * {"0":..}), not base64, so bytes values are only sent over grpc and
 * http/protobuf.
 */
function emitLogs(logging, tracing, protocol) {
  const logger = logging.logger('strata-it-logger', '3.0.0');
  const withBytes = protocol !== 'http/json';
  const expected = [];

  const attrs1 = {
    'log.id': 'plain',
    ...spanAttributes(),
    // The logs SDK passes map values through as AnyValue kvlists, so mixed
    // arrays can be sent nested in a map (top-level mixed arrays are dropped
    // by the SDK, like for spans).
    'log.nested_map': { k: 'v', n: 1, d: 2.5, inner: { deep: [1, 'two', true, 2.5, null] }, empty: {} },
  };
  if (withBytes) attrs1['log.bytes'] = new Uint8Array([0, 1, 2, 0xfe, 0xff]);
  logger.emit({
    timestamp: at(300), observedTimestamp: at(301),
    severityNumber: SeverityNumber.INFO, severityText: 'INFO',
    body: 'hello log ✓ "quoted"\nsecond line',
    attributes: { ...attrs1, 'log.dropped_mixed_array': ['a', 1, true] },
  });
  expected.push({ id: 'plain', time: nanos(at(300)), observed: nanos(at(301)), severityNumber: 9, severityText: 'INFO', body: 'hello log ✓ "quoted"\nsecond line', attributes: attrs1, traceId: '', spanId: '', flags: 0 });

  // Emitted inside an active span: trace context is picked up by the SDK.
  const span = tracing.tracer('strata-it-log-span').startSpan('log-parent');
  const sc = span.spanContext();
  const mapBody = { event: 'user.login', user: { id: 12345, roles: ['admin', 'dev'] }, ok: true, ratio: 0.5 };
  context.with(trace.setSpan(context.active(), span), () => {
    logger.emit({
      timestamp: at(310), observedTimestamp: at(311),
      severityNumber: SeverityNumber.ERROR, severityText: 'ERROR',
      body: mapBody, attributes: { 'log.id': 'in-span', 'error.code': 17 },
    });
  });
  span.end();
  expected.push({ id: 'in-span', time: nanos(at(310)), observed: nanos(at(311)), severityNumber: 17, severityText: 'ERROR', body: mapBody, attributes: { 'log.id': 'in-span', 'error.code': 17 }, traceId: sc.traceId, spanId: sc.spanId, flags: 1 });

  // Array body, WARN2 with no severity text.
  const arrBody = ['x', 2, false];
  logger.emit({ timestamp: at(320), observedTimestamp: at(321), severityNumber: SeverityNumber.WARN2, body: arrBody, attributes: { 'log.id': 'array-body' } });
  expected.push({ id: 'array-body', time: nanos(at(320)), observed: nanos(at(321)), severityNumber: 14, severityText: '', body: arrBody, attributes: { 'log.id': 'array-body' }, traceId: '', spanId: '', flags: 0 });

  if (withBytes) {
    const bytesBody = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x00]);
    logger.emit({ timestamp: at(330), observedTimestamp: at(331), severityNumber: SeverityNumber.FATAL4, severityText: 'FATAL', body: bytesBody, attributes: { 'log.id': 'bytes-body' } });
    expected.push({ id: 'bytes-body', time: nanos(at(330)), observed: nanos(at(331)), severityNumber: 24, severityText: 'FATAL', body: bytesBody, attributes: { 'log.id': 'bytes-body' }, traceId: '', spanId: '', flags: 0 });
  }

  return { logs: expected, resource: logging.resource.attributes, scope: { name: 'strata-it-logger', version: '3.0.0' } };
}

function assertLogs(received, exp) {
  const byId = new Map();
  for (const r of received) {
    const id = otlp.attrs(r.log.attributes)['log.id'];
    assert.ok(!byId.has(id), `log ${id} received more than once`);
    byId.set(id, r);
  }
  assert.equal(received.length, exp.logs.length, `expected ${exp.logs.length} log records, got ${received.length}`);
  for (const e of exp.logs) {
    const r = byId.get(e.id);
    const w = `log ${e.id}`;
    assert.ok(r, `${w} not received`);
    const l = r.log;
    assert.equal(l.timeUnixNano, e.time, `${w}: timeUnixNano`);
    assert.equal(l.observedTimeUnixNano, e.observed, `${w}: observedTimeUnixNano`);
    assert.equal(l.severityNumber, e.severityNumber, `${w}: severityNumber`);
    assert.equal(l.severityText, e.severityText, `${w}: severityText`);
    assert.deepStrictEqual(otlp.anyValue(l.body), otlp.expectedValue(e.body), `${w}: body`);
    checkAttrs(l.attributes, e.attributes, w);
    assert.equal(l.droppedAttributesCount, 0, `${w}: droppedAttributesCount`);
    assert.equal(r.traceId, e.traceId, `${w}: traceId`);
    assert.equal(r.spanId, e.spanId, `${w}: spanId`);
    assert.equal(l.flags, e.flags, `${w}: flags`);
    assert.deepStrictEqual({ name: r.scope.name, version: r.scope.version }, exp.scope, `${w}: scope`);
    checkAttrs(r.resource.attributes, exp.resource, `${w} resource`);
  }
}

module.exports = {
  RESOURCE_ATTRS, SCHEMA_URL, OTLP_KIND, OTLP_STATUS,
  emitTraces, assertTraces, emitMetrics, assertMetrics, emitLogs, assertLogs,
  spanAttributes, at, nanos,
};
