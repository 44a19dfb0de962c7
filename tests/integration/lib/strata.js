'use strict';
// Spawning and controlling the strata binary under test.
//
//   STRATA_BIN   path to the binary (default /work/main/build/strata,
//                i.e. <repo>/build/strata relative to this file)
//   STRATA_SKIP_IF_MISSING=1  skip (instead of fail) tests when the binary
//                does not exist yet
//   STRATA_KEEP_TMP=1  keep the temp dirs with generated configs

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const { spawn } = require('node:child_process');
const { toYaml } = require('./yaml');
const { waitFor, freePorts, withTimeout } = require('./util');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const STRATA_BIN = process.env.STRATA_BIN || path.join(REPO_ROOT, 'build', 'strata');

// Every child we spawn, so nothing outlives the test process.
const live = new Set();
process.on('exit', () => {
  for (const p of live) { try { p.kill('SIGKILL'); } catch (_) { /* gone */ } }
});

function binaryExists() {
  try { fs.accessSync(STRATA_BIN, fs.constants.X_OK); return true; } catch (_) { return false; }
}

/**
 * Call at the top of every test that needs the binary.  Returns false (and
 * marks the test skipped) when the binary is missing and
 * STRATA_SKIP_IF_MISSING=1; throws a clear error when it is missing
 * otherwise.
 */
function requireStrata(t) {
  if (binaryExists()) return true;
  const msg = `strata binary not found or not executable at ${STRATA_BIN} (build it, or set STRATA_BIN)`;
  if (process.env.STRATA_SKIP_IF_MISSING === '1') { t.skip(msg); return false; }
  throw new Error(msg);
}

function makeTmpDir(prefix = 'strata-it-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * The default config: OTLP receiver (grpc + http) -> batch -> OTLP/gRPC
 * exporter to the sink, for all three signals.
 */
function defaultConfig({ ports, sinkEndpoint }) {
  const pipeline = { receivers: ['otlp'], processors: ['batch'], exporters: ['otlp'] };
  return {
    receivers: {
      otlp: {
        protocols: {
          grpc: { endpoint: `127.0.0.1:${ports.grpc}` },
          http: { endpoint: `127.0.0.1:${ports.http}` },
        },
      },
    },
    processors: { batch: { timeout: '50ms' } },
    exporters: {
      otlp: {
        endpoint: sinkEndpoint,
        tls: { insecure: true },
        retry_on_failure: { enabled: true, initial_interval: '100ms', max_interval: '1s', max_elapsed_time: '60s' },
        sending_queue: { enabled: true, queue_size: 1000 },
      },
    },
    service: {
      pipelines: { traces: { ...pipeline }, metrics: { ...pipeline }, logs: { ...pipeline } },
      telemetry: { metrics: { address: `127.0.0.1:${ports.telemetry}` }, logs: { level: 'info' } },
    },
  };
}

/** Plain HTTP request with a hard timeout. Resolves { status, headers, body }. */
function httpRequest(url, { method = 'GET', headers = {}, body, timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body !== undefined) req.end(body); else req.end();
  });
}

/**
 * POST over a raw TCP socket and parse whatever response arrives, ignoring
 * write errors.  For oversize bodies: a server may legitimately answer 413/400
 * early and close the connection while the client is still writing, which
 * node's http client can surface as EPIPE/ECONNRESET instead of the
 * response.  Resolves { status, headers, body } or rejects if no response
 * arrived within timeoutMs.
 */
function rawPost(host, port, pathname, headers, body, timeoutMs = 15000) {
  const net = require('node:net');
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    const chunks = [];
    let settled = false;
    const finish = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      const buf = Buffer.concat(chunks);
      const m = buf.toString('latin1').match(/^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n([\s\S]*?)\r\n\r\n/);
      if (!m) {
        reject(new Error(`no HTTP response${err ? ` (${err.message})` : ''}; got ${buf.length} bytes: ${JSON.stringify(buf.toString('latin1').slice(0, 200))}`));
        return;
      }
      const hdrs = {};
      for (const line of m[2].split('\r\n')) {
        const i = line.indexOf(':');
        if (i > 0) hdrs[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status: Number(m[1]), headers: hdrs, body: buf.subarray(Buffer.byteLength(m[0], 'latin1')) });
    };
    const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    sock.on('data', (c) => {
      chunks.push(c);
      // Complete once headers + Content-Length bytes are in.
      const text = Buffer.concat(chunks).toString('latin1');
      const h = text.indexOf('\r\n\r\n');
      if (h >= 0) {
        const cl = text.slice(0, h).match(/\r\ncontent-length:\s*(\d+)/i);
        if (cl && Buffer.concat(chunks).length >= h + 4 + Number(cl[1])) finish();
      }
    });
    sock.on('end', () => finish());
    sock.on('close', () => finish());
    sock.on('error', () => { /* EPIPE/ECONNRESET while writing: keep what was read */ });
    const head = [`POST ${pathname} HTTP/1.1`, `Host: ${host}:${port}`, `Content-Length: ${body.length}`, 'Connection: close',
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
    sock.write(head);
    sock.end(body);
  });
}

class Strata {
  constructor() {
    this.stderrChunks = [];
    this.stdoutChunks = [];
    this.exited = null; // { code, signal } once exited
  }

  get stderr() { return Buffer.concat(this.stderrChunks).toString('utf8'); }
  get stdout() { return Buffer.concat(this.stdoutChunks).toString('utf8'); }
  get running() { return this.exited === null; }

  /** { grpc: '127.0.0.1:P', http: '127.0.0.1:P' } -- an sdk.js target. */
  get endpoints() {
    return { grpc: `127.0.0.1:${this.ports.grpc}`, http: `127.0.0.1:${this.ports.http}` };
  }
  get httpBase() { return `http://127.0.0.1:${this.ports.http}`; }
  get telemetryBase() { return `http://127.0.0.1:${this.ports.telemetry}`; }

  /** POST to the OTLP/HTTP receiver. */
  post(pathname, body, headers = {}, timeoutMs = 5000) {
    return httpRequest(`${this.httpBase}${pathname}`, {
      method: 'POST', headers: { 'Content-Length': Buffer.byteLength(body), ...headers }, body, timeoutMs,
    });
  }

  /** POST via a raw socket (see rawPost); for oversize bodies. */
  rawPost(pathname, body, headers = {}, timeoutMs = 15000) {
    return rawPost('127.0.0.1', this.ports.http, pathname, headers, body, timeoutMs);
  }

  async healthz(timeoutMs = 2000) {
    return httpRequest(`${this.telemetryBase}/healthz`, { timeoutMs });
  }

  /** Prometheus text from the self-metrics endpoint. */
  async metricsText(timeoutMs = 5000) {
    const r = await httpRequest(`${this.telemetryBase}/metrics`, { timeoutMs });
    if (r.status !== 200) throw new Error(`/metrics answered ${r.status}: ${r.body.toString()}`);
    return r.body.toString('utf8');
  }

  /** Last `n` lines of stderr, for failure messages. */
  tail(n = 40) {
    return this.stderr.split('\n').slice(-n).join('\n');
  }

  describe() {
    return `strata pid=${this.proc && this.proc.pid} exited=${JSON.stringify(this.exited)} config=${this.configPath}\n--- stderr (tail) ---\n${this.tail()}`;
  }

  _waitExit() {
    if (this.exited) return Promise.resolve(this.exited);
    return new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /**
   * SIGTERM, wait (bounded) for exit; resolves with the exit code (null if
   * killed by a signal).  If it does not exit within timeoutMs it is
   * SIGKILLed and the promise rejects.
   */
  async stop({ timeoutMs = 15000 } = {}) {
    if (!this.proc) return null;
    if (this.exited) return this.exited.code;
    const exit = this._waitExit();
    this.proc.kill('SIGTERM');
    try {
      const r = await withTimeout(exit, timeoutMs, 'strata shutdown after SIGTERM');
      return r.code;
    } catch (e) {
      this.kill();
      await withTimeout(exit, 5000, 'strata exit after SIGKILL').catch(() => {});
      throw new Error(`${e.message}\n${this.describe()}`);
    }
  }

  /** Immediate SIGKILL (cleanup path). */
  kill() {
    if (this.proc && !this.exited) {
      try { this.proc.kill('SIGKILL'); } catch (_) { /* gone */ }
    }
  }

  /** Cleanup for t.after: SIGKILL if still running, remove temp dir. */
  async cleanup() {
    if (this.proc && !this.exited) {
      const exit = this._waitExit();
      this.kill();
      await withTimeout(exit, 5000, 'strata exit after SIGKILL').catch(() => {});
    }
    if (this.tmpDir && process.env.STRATA_KEEP_TMP !== '1') {
      fs.rmSync(this.tmpDir, { recursive: true, force: true });
    }
  }
}

/**
 * Start strata with a generated config.
 *
 * @param {object} o
 * @param {string} o.sinkEndpoint   host:port of the OTLP/gRPC sink
 * @param {(cfg:object, ports:object)=>object|void} [o.configure]  edit the
 *        default config object (mutate or return a new one)
 * @param {string} [o.configText]   use this YAML verbatim instead
 * @param {number} [o.healthTimeoutMs=10000]
 * @param {string[]} [o.extraArgs]
 * @param {object} [o.env]
 * @param {string} [o.bin]  binary to run instead of STRATA_BIN
 * @returns {Promise<Strata>}
 */
async function startStrata(o = {}) {
  const s = new Strata();
  const [grpc, httpPort, telemetry] = await freePorts(3);
  s.ports = { grpc, http: httpPort, telemetry };
  s.tmpDir = makeTmpDir();
  s.configPath = path.join(s.tmpDir, 'config.yaml');
  let text = o.configText;
  if (text === undefined) {
    let cfg = defaultConfig({ ports: s.ports, sinkEndpoint: o.sinkEndpoint });
    if (o.configure) cfg = o.configure(cfg, s.ports) || cfg;
    s.config = cfg;
    text = toYaml(cfg);
  }
  s.configText = text;
  fs.writeFileSync(s.configPath, text);

  s.bin = o.bin || STRATA_BIN;
  s.proc = spawn(s.bin, ['run', '--config', s.configPath, ...(o.extraArgs || [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(o.env || {}) },
  });
  live.add(s.proc);
  s.proc.stdout.on('data', (c) => s.stdoutChunks.push(c));
  s.proc.stderr.on('data', (c) => {
    s.stderrChunks.push(c);
    if (process.env.STRATA_ECHO_STDERR === '1') process.stderr.write(c);
  });
  const spawnError = new Promise((_, reject) => s.proc.once('error', reject));
  spawnError.catch(() => {});
  s.proc.once('exit', (code, signal) => { s.exited = { code, signal }; live.delete(s.proc); });

  const timeoutMs = o.healthTimeoutMs ?? 10000;
  try {
    await Promise.race([
      spawnError,
      waitFor(async () => {
        if (s.exited) throw Object.assign(new Error(`strata exited early: ${JSON.stringify(s.exited)}`), { fatal: true });
        const r = await s.healthz(1000).catch(() => null);
        return r && r.status === 200;
      }, timeoutMs, { intervalMs: 50, message: 'strata /healthz did not answer 200' }),
    ]);
  } catch (e) {
    await s.cleanup().catch(() => {});
    throw new Error(`strata failed to become healthy: ${e.message}\n--- config ---\n${text}\n${s.describe()}`);
  }
  return s;
}

/**
 * Run a one-shot strata CLI command (validate, components, version).
 * Resolves { code, signal, stdout, stderr }; kills it after timeoutMs.
 */
function runStrata(args, { timeoutMs = 10000, env, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(STRATA_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(env || {}) }, cwd });
    live.add(p);
    const out = []; const err = [];
    p.stdout.on('data', (c) => out.push(c));
    p.stderr.on('data', (c) => err.push(c));
    const timer = setTimeout(() => { p.kill('SIGKILL'); }, timeoutMs);
    p.on('error', (e) => { clearTimeout(timer); live.delete(p); reject(e); });
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      live.delete(p);
      // Wait for the pipes to drain.
      setImmediate(() => resolve({
        code, signal, timedOut: signal === 'SIGKILL',
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }));
    });
  });
}

// ----------------------------------------------------- Prometheus parsing

/**
 * Parse Prometheus text exposition format into samples
 * [{ name, labels: {..}, value: Number }]. Tolerant: skips lines it cannot
 * parse; understands # comments, label escaping, NaN/+Inf, optional
 * timestamps.
 */
function parsePrometheus(text) {
  const samples = [];
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = line.match(/^([A-Za-z_:][A-Za-z0-9_:.]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$/);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/g;
      let lm;
      while ((lm = re.exec(m[3])) !== null) {
        labels[lm[1]] = lm[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
      }
    }
    let value;
    if (/^\+?Inf$/i.test(m[4])) value = Infinity;
    else if (/^-Inf$/i.test(m[4])) value = -Infinity;
    else value = Number(m[4]);
    if (Number.isNaN(value) && !/^NaN$/i.test(m[4])) continue;
    samples.push({ name: m[1], labels, value });
  }
  return samples;
}

/**
 * Sum the values of samples whose name matches all `include` patterns
 * (strings are case-insensitive substrings, or RegExps) and none of the
 * `exclude` ones, optionally filtered by `labelFilter(labels)`.
 * Returns { total, matched: [samples] }.
 */
function sumMetrics(samples, { include = [], exclude = [], labelFilter } = {}) {
  const test = (p, name) => (p instanceof RegExp ? p.test(name) : name.toLowerCase().includes(String(p).toLowerCase()));
  const matched = samples.filter((s) => include.every((p) => test(p, s.name)) &&
    !exclude.some((p) => test(p, s.name)) && (!labelFilter || labelFilter(s.labels)));
  return { total: matched.reduce((a, s) => a + s.value, 0), matched };
}

/**
 * Self-metric total from Prometheus text, tolerant about naming: `word`
 * ("accepted" or "sent") must be in the metric name; the signal ("span")
 * either in the name (otelcol style: *_receiver_accepted_spans*) or, failing
 * that, in a label value (e.g. strata_receiver_accepted_items_total{
 * signal="traces"}).  Failure/refusal/drop/byte counters are excluded.
 * Returns { total, matched }.
 */
function selfMetric(text, word, exclude = []) {
  const samples = parsePrometheus(text);
  const ex = ['_created', '_bucket', '_sum', '_count', 'bytes', 'fail', 'error', 'refused', 'dropped', 'retr', ...exclude];
  const byName = sumMetrics(samples, { include: [word, 'span'], exclude: ex });
  if (byName.matched.length) return byName;
  return sumMetrics(samples, {
    include: [word],
    exclude: ex,
    labelFilter: (labels) => Object.values(labels).some((v) => /^(traces?|spans?)$/i.test(v)),
  });
}

module.exports = {
  STRATA_BIN, REPO_ROOT, binaryExists, requireStrata, startStrata, runStrata, defaultConfig,
  httpRequest, rawPost, parsePrometheus, sumMetrics, selfMetric, makeTmpDir, Strata,
};
