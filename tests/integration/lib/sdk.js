'use strict';
// Builders for the real OpenTelemetry JS SDK as the client.
//
// protocol is one of 'grpc' | 'http/protobuf' | 'http/json' (the same names
// as OTEL_EXPORTER_OTLP_PROTOCOL).  `target` is { grpc: 'host:port',
// http: 'host:port' } -- e.g. strata.endpoints or { grpc: sink.endpoint }.

const api = require('@opentelemetry/api');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { Resource } = require('@opentelemetry/resources');
const { ExportResultCode } = require('@opentelemetry/core');
const {
  BasicTracerProvider, SimpleSpanProcessor, BatchSpanProcessor, AlwaysOnSampler,
} = require('@opentelemetry/sdk-trace-base');
const {
  MeterProvider, PeriodicExportingMetricReader, AggregationTemporality,
} = require('@opentelemetry/sdk-metrics');
const { LoggerProvider, SimpleLogRecordProcessor, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');

const PROTOCOLS = ['grpc', 'http/protobuf', 'http/json'];

const EXPORTERS = {
  traces: {
    grpc: () => require('@opentelemetry/exporter-trace-otlp-grpc').OTLPTraceExporter,
    'http/protobuf': () => require('@opentelemetry/exporter-trace-otlp-proto').OTLPTraceExporter,
    'http/json': () => require('@opentelemetry/exporter-trace-otlp-http').OTLPTraceExporter,
  },
  metrics: {
    grpc: () => require('@opentelemetry/exporter-metrics-otlp-grpc').OTLPMetricExporter,
    'http/protobuf': () => require('@opentelemetry/exporter-metrics-otlp-proto').OTLPMetricExporter,
    'http/json': () => require('@opentelemetry/exporter-metrics-otlp-http').OTLPMetricExporter,
  },
  logs: {
    grpc: () => require('@opentelemetry/exporter-logs-otlp-grpc').OTLPLogExporter,
    'http/protobuf': () => require('@opentelemetry/exporter-logs-otlp-proto').OTLPLogExporter,
    'http/json': () => require('@opentelemetry/exporter-logs-otlp-http').OTLPLogExporter,
  },
};

const HTTP_PATHS = { traces: '/v1/traces', metrics: '/v1/metrics', logs: '/v1/logs' };

let contextManagerInstalled = false;
/** Install AsyncLocalStorage context propagation once per process, so that
 * context.with()/startActiveSpan make spans "active" for children and logs. */
function ensureContextManager() {
  if (contextManagerInstalled) return;
  const cm = new AsyncLocalStorageContextManager();
  cm.enable();
  api.context.setGlobalContextManager(cm);
  contextManagerInstalled = true;
}

function exporterUrl(signal, protocol, target) {
  if (protocol === 'grpc') {
    if (!target.grpc) throw new Error('target.grpc missing');
    return `http://${target.grpc}`;
  }
  if (!target.http) throw new Error('target.http missing');
  return `http://${target.http}${HTTP_PATHS[signal]}`;
}

/**
 * Create an OTLP exporter of the given protocol for `signal`, wrapped so that
 * every export() result is recorded in `exporter.results`
 * ({ code, error, items, at }).  Extra exporter options pass through.
 */
function createExporter(signal, protocol, target, extra = {}) {
  if (!PROTOCOLS.includes(protocol)) throw new Error(`unknown protocol ${protocol}`);
  const Ctor = EXPORTERS[signal][protocol]();
  const inner = new Ctor({ url: exporterUrl(signal, protocol, target), timeoutMillis: 5000, ...extra });
  const results = [];
  const pending = new Set();
  const exportFn = (items, cb) => {
    let done;
    const p = new Promise((r) => { done = r; });
    pending.add(p);
    inner.export(items, (res) => {
      pending.delete(p);
      done();
      results.push({
        code: res.code,
        ok: res.code === ExportResultCode.SUCCESS,
        error: res.error,
        items: Array.isArray(items) ? items.length : 1,
        at: Date.now(),
      });
      cb(res);
    });
  };
  return new Proxy(inner, {
    get(obj, prop) {
      if (prop === 'export') return exportFn;
      if (prop === 'results') return results;
      // Resolves when every export() started so far has completed.  Needed
      // because e.g. SimpleLogRecordProcessor.forceFlush() in sdk-logs 0.57
      // does not wait for in-flight exports.
      if (prop === 'settle') return () => Promise.all([...pending]).then(() => undefined);
      if (prop === 'inner') return inner;
      if (prop === 'protocol') return protocol;
      const v = obj[prop];
      return typeof v === 'function' ? v.bind(obj) : v;
    },
  });
}

/** Resource = SDK defaults (telemetry.sdk.*, service.name) merged with attrs. */
function makeResource(attributes = {}) {
  return Resource.default().merge(new Resource(attributes));
}

function assertAllExportsOk(exporter, what = 'export') {
  const bad = exporter.results.filter((r) => !r.ok);
  if (bad.length) {
    const e = bad[0].error;
    throw new Error(`${what}: ${bad.length}/${exporter.results.length} exports failed; first: ${e && (e.stack || e.message || e)}`);
  }
}

/**
 * Traces.  Returns { provider, exporter, resource, tracer(name, version),
 * flush(), shutdown() }.
 * @param {object} o
 * @param {string} o.protocol
 * @param {object} o.target
 * @param {object} [o.resourceAttributes]
 * @param {'simple'|'batch'} [o.processor='simple']
 * @param {object} [o.batch]  BatchSpanProcessor options
 * @param {object} [o.exporterOptions]
 */
function createTracing(o) {
  ensureContextManager();
  const exporter = createExporter('traces', o.protocol, o.target, o.exporterOptions);
  const processor = o.processor === 'batch'
    ? new BatchSpanProcessor(exporter, { scheduledDelayMillis: 50, maxExportBatchSize: 512, maxQueueSize: 100000, exportTimeoutMillis: 10000, ...(o.batch || {}) })
    : new SimpleSpanProcessor(exporter);
  const resource = makeResource(o.resourceAttributes);
  const provider = new BasicTracerProvider({
    resource,
    mergeResourceWithDefaults: false,
    sampler: new AlwaysOnSampler(),
    spanProcessors: [processor],
  });
  return {
    provider,
    exporter,
    resource,
    tracer: (name, version) => provider.getTracer(name, version),
    flush: () => provider.forceFlush().then(() => exporter.settle()),
    shutdown: () => provider.shutdown(),
  };
}

/**
 * Metrics via MeterProvider + PeriodicExportingMetricReader (long interval;
 * call flush() to collect and export now).  Returns { provider, reader,
 * exporter, resource, meter(name, version), flush(), shutdown() }.
 * @param {object} o
 * @param {'cumulative'|'delta'} [o.temporality='cumulative']
 */
function createMetrics(o) {
  const temporalityPreference = o.temporality === 'delta'
    ? AggregationTemporality.DELTA : AggregationTemporality.CUMULATIVE;
  const exporter = createExporter('metrics', o.protocol, o.target, { temporalityPreference, ...(o.exporterOptions || {}) });
  const reader = new PeriodicExportingMetricReader({
    exporter,
    exportIntervalMillis: 3600000,
    exportTimeoutMillis: 10000,
  });
  const resource = makeResource(o.resourceAttributes);
  const provider = new MeterProvider({ resource, mergeResourceWithDefaults: false, readers: [reader] });
  return {
    provider,
    reader,
    exporter,
    resource,
    meter: (name, version) => provider.getMeter(name, version),
    flush: () => provider.forceFlush().then(() => exporter.settle()),
    shutdown: () => provider.shutdown(),
  };
}

/**
 * Logs via LoggerProvider + SimpleLogRecordProcessor (or batch).  Returns
 * { provider, exporter, resource, logger(name, version), flush(), shutdown() }.
 */
function createLogging(o) {
  ensureContextManager();
  const exporter = createExporter('logs', o.protocol, o.target, o.exporterOptions);
  const resource = makeResource(o.resourceAttributes);
  const provider = new LoggerProvider({ resource, mergeResourceWithDefaults: false });
  provider.addLogRecordProcessor(o.processor === 'batch'
    ? new BatchLogRecordProcessor(exporter, { scheduledDelayMillis: 50, ...(o.batch || {}) })
    : new SimpleLogRecordProcessor(exporter));
  return {
    provider,
    exporter,
    resource,
    logger: (name, version) => provider.getLogger(name, version),
    flush: () => provider.forceFlush().then(() => exporter.settle()),
    shutdown: () => provider.shutdown(),
  };
}

module.exports = {
  PROTOCOLS, createTracing, createMetrics, createLogging, createExporter,
  makeResource, ensureContextManager, assertAllExportsOk, exporterUrl, api,
};
