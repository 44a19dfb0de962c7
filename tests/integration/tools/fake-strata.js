#!/usr/bin/env node
'use strict';
// fake-strata: a small JavaScript stand-in that implements the strata CLI
// contract the integration tests are written against.  It exists ONLY to
// dry-run the test harness (lib/strata.js, the scenarios, the fault tests)
// before the real C binary exists, and as an executable description of the
// contract.  It is NOT strata and passing tests against it says nothing
// about strata.
//
//   STRATA_BIN=tools/fake-strata.js npm test
//
// Implements: run --config F (OTLP/gRPC + OTLP/HTTP receivers, batch
// processor, OTLP/gRPC exporter with retry + queue, /metrics, /healthz,
// SIGTERM drain), validate --config F (a few checks with file:line:col
// diagnostics), components, version.
//
// Fault injection for testing the tests: FAKE_STRATA_BUG=drop-every-10th
// silently drops every 10th exported span; FAKE_STRATA_BUG=flip-int-double
// turns int attributes into doubles.

const fs = require('node:fs');
const http = require('node:http');
const zlib = require('node:zlib');
const grpc = require('@grpc/grpc-js');
const otlp = require('../lib/otlp');
const { parseYaml } = require('../lib/yaml');

const MAX_BODY = 4 * 1024 * 1024;
const SIGNALS = ['traces', 'metrics', 'logs'];
const UNIT = { traces: 'spans', metrics: 'metric_points', logs: 'log_records' };
const log = (level, msg) => process.stderr.write(`${new Date().toISOString()} ${level} fake-strata: ${msg}\n`);

function parseDuration(v, dflt) {
  if (v === undefined || v === null) return dflt;
  if (typeof v === 'number') return v;
  const m = String(v).match(/^(\d+(?:\.\d+)?)(ms|s|m)$/);
  if (!m) throw new Error(`bad duration ${v}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60000 }[m[2]];
}

// ------------------------------------------------------------ counters
const counters = new Map();
function inc(name, labels, n = 1) {
  const key = `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}`;
  counters.set(key, (counters.get(key) || 0) + n);
}
function metricsText() {
  let out = '';
  const names = new Set([...counters.keys()].map((k) => k.split('{')[0]));
  for (const n of names) {
    out += `# TYPE ${n} counter\n`;
    for (const [k, v] of counters) if (k.startsWith(`${n}{`)) out += `${k} ${v}\n`;
  }
  return out;
}

// ------------------------------------------------------------ JSON -> pb
const ID_FIELDS = new Set(['traceId', 'spanId', 'parentSpanId']);
function fixJsonIds(v) {
  if (Array.isArray(v)) return v.map(fixJsonIds);
  if (v && typeof v === 'object') {
    const o = {};
    for (const [k, x] of Object.entries(v)) {
      if (ID_FIELDS.has(k) && typeof x === 'string') {
        if (!/^([0-9a-fA-F]{2})*$/.test(x)) throw new Error(`${k} is not hex`);
        o[k] = Buffer.from(x, 'hex');
      } else {
        o[k] = fixJsonIds(x);
      }
    }
    return o;
  }
  return v;
}
function jsonToRequest(signal, body) {
  const obj = JSON.parse(body.toString('utf8'));
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new Error('request must be a JSON object');
  const T = otlp.SIGNALS[signal].Request;
  const msg = T.fromObject(fixJsonIds(obj));
  return T.toObject(msg, otlp.TO_OBJECT);
}

// ------------------------------------------------------------ pipeline
class Exporter {
  constructor(cfg) {
    const rc = cfg.retry_on_failure || {};
    this.initial = parseDuration(rc.initial_interval, 100);
    this.maxInterval = parseDuration(rc.max_interval, 1000);
    this.maxElapsed = parseDuration(rc.max_elapsed_time, 60000);
    this.queueSize = (cfg.sending_queue && cfg.sending_queue.queue_size) || 1000;
    this.queue = [];
    this.busy = false;
    this.idleWaiters = [];
    const Client = grpc.makeGenericClientConstructor({}, 'x');
    this.client = new Client(cfg.endpoint, grpc.credentials.createInsecure());
  }

  enqueue(signal, req) {
    if (this.queue.length >= this.queueSize) {
      inc('fake_exporter_enqueue_failed_total', { signal });
      log('warn', 'queue full, dropping');
      return;
    }
    this.queue.push({ signal, req, firstTry: Date.now() });
    this._pump();
  }

  _send(signal, buf) {
    const s = otlp.SIGNALS[signal];
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(s.path, (x) => x, (x) => x, buf, new grpc.Metadata(),
        { deadline: Date.now() + 5000 }, (err) => (err ? reject(err) : resolve()));
    });
  }

  async _pump() {
    if (this.busy) return;
    this.busy = true;
    while (this.queue.length) {
      const item = this.queue[0];
      const n = otlp.countItems(item.signal, item.req);
      let req = item.req;
      if (process.env.FAKE_STRATA_BUG === 'drop-every-10th' && item.signal === 'traces') req = dropEvery10th(req);
      if (process.env.FAKE_STRATA_BUG === 'flip-int-double') req = flipIntDouble(req);
      const buf = otlp.encodeRequest(item.signal, req);
      let delay = this.initial;
      for (;;) {
        try {
          await this._send(item.signal, buf);
          inc(`fake_exporter_sent_${UNIT[item.signal]}_total`, { exporter: 'otlp' }, n);
          break;
        } catch (e) {
          const retryable = [grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.RESOURCE_EXHAUSTED,
            grpc.status.ABORTED, grpc.status.CANCELLED, grpc.status.OUT_OF_RANGE, grpc.status.DATA_LOSS].includes(e.code);
          if (!retryable || Date.now() - item.firstTry > this.maxElapsed) {
            inc(`fake_exporter_send_failed_${UNIT[item.signal]}_total`, { exporter: 'otlp' }, n);
            log('error', `dropping ${n} ${UNIT[item.signal]}: ${e.message}`);
            break;
          }
          log('info', `export failed (${e.code} ${e.details}), retry in ${delay} ms`);
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, this.maxInterval);
        }
      }
      this.queue.shift();
    }
    this.busy = false;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  drain(timeoutMs) {
    if (!this.busy && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.idleWaiters.push(() => { clearTimeout(t); resolve(); });
    });
  }
}

function dropEvery10th(req) {
  let i = 0;
  return {
    resourceSpans: req.resourceSpans.map((rs) => ({
      ...rs,
      scopeSpans: rs.scopeSpans.map((ss) => ({ ...ss, spans: ss.spans.filter(() => (++i % 10) !== 0) })),
    })),
  };
}
function flipIntDouble(req) {
  const walk = (v) => {
    if (Array.isArray(v)) { v.forEach(walk); return; }
    if (v && typeof v === 'object' && !Buffer.isBuffer(v)) {
      if (v.intValue != null) { v.doubleValue = Number(v.intValue); delete v.intValue; }
      Object.values(v).forEach(walk);
    }
  };
  walk(req);
  return req;
}

class Batcher {
  constructor(signal, timeoutMs, exporter) {
    this.signal = signal; this.timeoutMs = timeoutMs; this.exporter = exporter;
    this.pending = null; this.timer = null;
  }
  add(req) {
    const key = { traces: 'resourceSpans', metrics: 'resourceMetrics', logs: 'resourceLogs' }[this.signal];
    if (!this.pending) this.pending = { [key]: [] };
    this.pending[key].push(...(req[key] || []));
    if (!this.timer) this.timer = setTimeout(() => this.flush(), this.timeoutMs);
  }
  flush() {
    clearTimeout(this.timer); this.timer = null;
    if (this.pending) { this.exporter.enqueue(this.signal, this.pending); this.pending = null; }
  }
}

// ------------------------------------------------------------ run
async function run(configPath) {
  const cfg = parseYaml(fs.readFileSync(configPath, 'utf8'));
  const exporter = new Exporter(cfg.exporters.otlp);
  const batchTimeout = parseDuration(cfg.processors && cfg.processors.batch && cfg.processors.batch.timeout, 200);
  const batchers = {};
  for (const s of SIGNALS) batchers[s] = new Batcher(s, batchTimeout, exporter);
  let accepting = true;

  const accept = (signal, req, transport) => {
    inc(`fake_receiver_accepted_${UNIT[signal]}_total`, { receiver: 'otlp', transport }, otlp.countItems(signal, req));
    batchers[signal].add(req);
  };

  const protocols = cfg.receivers.otlp.protocols;
  const servers = [];
  let grpcServer = null;
  if (protocols.grpc) {
    grpcServer = new grpc.Server();
    for (const signal of SIGNALS) {
      const s = otlp.SIGNALS[signal];
      grpcServer.addService({
        Export: { path: s.path, requestStream: false, responseStream: false, requestSerialize: (x) => x, requestDeserialize: (x) => x, responseSerialize: (x) => x, responseDeserialize: (x) => x },
      }, {
        Export: (call, cb) => {
          if (!accepting) { cb({ code: grpc.status.UNAVAILABLE, details: 'shutting down' }); return; }
          let req;
          try { req = otlp.decodeRequest(signal, call.request); } catch (e) { cb({ code: grpc.status.INVALID_ARGUMENT, details: e.message }); return; }
          accept(signal, req, 'grpc');
          cb(null, otlp.encodeEmptyResponse(signal));
        },
      });
    }
    await new Promise((res, rej) => grpcServer.bindAsync(protocols.grpc.endpoint, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())));
  }

  const listen = (srv, endpoint) => new Promise((res, rej) => {
    const i = endpoint.lastIndexOf(':');
    srv.once('error', rej);
    srv.listen(Number(endpoint.slice(i + 1)), endpoint.slice(0, i), res);
    servers.push(srv);
  });

  if (protocols.http) {
    const paths = { '/v1/traces': 'traces', '/v1/metrics': 'metrics', '/v1/logs': 'logs' };
    const srv = http.createServer((req, res) => {
      const reply = (status, body, type = 'text/plain') => { res.writeHead(status, { 'Content-Type': type }); res.end(body); };
      const signal = paths[req.url];
      if (req.method !== 'POST' || !signal) { reply(404, 'not found'); return; }
      if (!accepting) { reply(503, 'shutting down'); return; }
      const chunks = []; let size = 0; let tooBig = false;
      req.on('data', (c) => { size += c.length; if (size > MAX_BODY) tooBig = true; else chunks.push(c); });
      req.on('end', () => {
        if (tooBig) { reply(413, `request body larger than ${MAX_BODY} bytes`); return; }
        let body = Buffer.concat(chunks);
        try {
          if ((req.headers['content-encoding'] || '').toLowerCase() === 'gzip') body = zlib.gunzipSync(body);
          if (body.length > MAX_BODY) { reply(413, 'decompressed body too large'); return; }
        } catch (e) { reply(400, `bad gzip body: ${e.message}`); return; }
        const ct = (req.headers['content-type'] || '').split(';')[0].trim();
        let decoded;
        try {
          if (ct === 'application/json') decoded = jsonToRequest(signal, body);
          else if (ct === 'application/x-protobuf') decoded = otlp.decodeRequest(signal, body);
          else { reply(415, `unsupported content type ${ct}`); return; }
        } catch (e) { reply(400, `cannot decode ${signal} request: ${e.message}`); return; }
        accept(signal, decoded, 'http');
        if (ct === 'application/json') reply(200, '{}', 'application/json');
        else reply(200, otlp.encodeEmptyResponse(signal), 'application/x-protobuf');
      });
    });
    await listen(srv, protocols.http.endpoint);
  }

  const tel = http.createServer((req, res) => {
    if (req.url === '/healthz') { res.writeHead(accepting ? 200 : 503); res.end(accepting ? 'ok' : 'stopping'); return; }
    if (req.url === '/metrics') { res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' }); res.end(metricsText()); return; }
    res.writeHead(404); res.end();
  });
  await listen(tel, cfg.service.telemetry.metrics.address);
  log('info', `running with ${configPath}`);

  let stopping = false;
  process.on('SIGTERM', async () => {
    if (stopping) return;
    stopping = true;
    log('info', 'SIGTERM: draining');
    accepting = false;
    if (grpcServer) await new Promise((r) => grpcServer.tryShutdown(r));
    for (const b of Object.values(batchers)) b.flush();
    await exporter.drain(10000);
    for (const s of servers) s.close();
    log('info', 'drained, exiting');
    process.exit(0);
  });
}

// ------------------------------------------------------------ validate
const KNOWN = {
  receivers: { otlp: { protocols: { grpc: { endpoint: 's' }, http: { endpoint: 's' } } } },
  processors: { batch: { timeout: 's', send_batch_size: 'i' } },
  exporters: {
    debug: {},
    otlp: { endpoint: 's', tls: { insecure: 'b' }, retry_on_failure: { enabled: 'b', initial_interval: 's', max_interval: 's', max_elapsed_time: 's' }, sending_queue: { enabled: 'b', queue_size: 'i' } },
  },
};
function validate(file) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const errs = [];
  const err = (ln, col, msg) => errs.push(`${file}:${ln}:${col}: ${msg}`);
  // Walk lines with an indentation stack of keys.
  const stack = [];
  const defined = { receivers: new Set(), processors: new Set(), exporters: new Set() };
  lines.forEach((raw, i) => {
    const m = raw.match(/^( *)([^:#\s][^:]*):(?:\s+(.*))?$/);
    if (!m) return;
    const indent = m[1].length; const key = m[2].trim(); const value = m[3];
    while (stack.length && stack[stack.length - 1].indent >= indent) stack.pop();
    const p = stack.map((s) => s.key);
    const kcol = indent + 1; const vcol = value !== undefined ? raw.indexOf(value, indent + key.length + 1) + 1 : kcol;
    if (p.length === 1 && defined[p[0]]) {
      const type = key.split('/')[0];
      if (!(type in KNOWN[p[0]])) err(i + 1, kcol, `unknown ${p[0].slice(0, -1)} type "${type}"`);
      defined[p[0]].add(key);
    } else if (p.length >= 2 && defined[p[0]]) {
      let schema = KNOWN[p[0]][p[1].split('/')[0]];
      for (const k of p.slice(2)) schema = schema && typeof schema === 'object' ? schema[k] : undefined;
      if (schema && typeof schema === 'object') {
        if (!(key in schema)) err(i + 1, kcol, `unknown key "${key}"`);
        else if (schema[key] === 'i' && value !== undefined && !/^\d+$/.test(value.trim())) err(i + 1, vcol, `${key}: expected an integer, got "${value.trim()}"`);
        else if (typeof schema[key] === 'object' && value !== undefined && value.trim().startsWith('[')) err(i + 1, vcol, `${key}: expected a mapping, got a sequence`);
      }
    } else if (p[0] === 'service' && p[1] === 'pipelines' && p.length === 3 && value) {
      const kind = key;
      const items = (value.match(/^\[(.*)\]$/) || [null, ''])[1].split(',').map((x) => x.trim()).filter(Boolean);
      for (const it of items) {
        const col = raw.indexOf(it, raw.indexOf('[')) + 1;
        if (defined[kind] && !defined[kind].has(it)) err(i + 1, col, `pipeline ${p[2]} references undefined ${kind.slice(0, -1)} "${it}"`);
      }
    }
    stack.push({ indent, key });
  });
  for (const e of errs) process.stderr.write(`${e}\n`);
  return errs.length ? 1 : 0;
}

// ------------------------------------------------------------ main
function main(argv) {
  const [cmd, ...rest] = argv;
  const ci = rest.indexOf('--config');
  const config = ci >= 0 ? rest[ci + 1] : undefined;
  switch (cmd) {
    case 'run':
      run(config).catch((e) => { log('error', e.stack); process.exit(1); });
      break;
    case 'validate':
      if (!config || !fs.existsSync(config)) { process.stderr.write(`${config}: cannot read config\n`); process.exit(2); }
      process.exit(validate(config));
      break;
    case 'components':
      process.stdout.write('receivers:\n  otlp\nprocessors:\n  batch\nexporters:\n  otlp\n  debug\n');
      break;
    case 'version':
      process.stdout.write('fake-strata 0.0.0 (test harness stand-in, not strata)\n');
      break;
    default:
      process.stderr.write('usage: fake-strata run|validate --config FILE | components | version\n');
      process.exit(2);
  }
}

main(process.argv.slice(2));
