'use strict';
// An OTLP/gRPC sink: the "backend" strata exports to.
//
// Serves TraceService/MetricsService/LogsService Export with @grpc/grpc-js,
// decodes each request with the OpenTelemetry JS SDK's own protobuf
// definitions (see lib/otlp.js), records it, and answers success (or an
// injected error).  It can be stopped ("killed") and restarted on the same
// port to simulate a backend outage.

const grpc = require('@grpc/grpc-js');
const otlp = require('./otlp');
const { waitFor } = require('./util');

const identity = (x) => x;

function serviceDefinition(signal) {
  const s = otlp.SIGNALS[signal];
  return {
    Export: {
      path: s.path,
      requestStream: false,
      responseStream: false,
      // Keep raw bytes; decoding happens in the handler so that a decode
      // failure becomes a proper INVALID_ARGUMENT answer and is recorded.
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  };
}

class Sink {
  /**
   * @param {object} [opts]
   * @param {string} [opts.host='127.0.0.1']
   * @param {number} [opts.port=0]  0 = pick a free port on first start
   * @param {number} [opts.maxReceiveMessageLength=64 MiB]
   */
  constructor(opts = {}) {
    this.host = opts.host || '127.0.0.1';
    this.port = opts.port || 0;
    this.maxReceiveMessageLength = opts.maxReceiveMessageLength || 64 * 1024 * 1024;
    this.server = null;
    this.epoch = 0; // incremented on every start()
    this.records = []; // every call, successful or not
    this._failures = []; // queue of { remaining, code, details, signal }
    this.delayMs = 0;
    this.decodeErrors = 0;
    this._killedEpochs = new Set();
  }

  /** host:port for strata's exporter config. */
  get endpoint() { return `${this.host}:${this.port}`; }

  /** URL for an OTel JS gRPC exporter pointed straight at the sink. */
  get url() { return `http://${this.host}:${this.port}`; }

  get running() { return this.server !== null; }

  async start() {
    if (this.server) throw new Error('sink already running');
    const server = new grpc.Server({
      'grpc.max_receive_message_length': this.maxReceiveMessageLength,
    });
    for (const signal of Object.keys(otlp.SIGNALS)) {
      server.addService(serviceDefinition(signal), {
        Export: (call, callback) => this._handle(signal, call, callback),
      });
    }
    const port = await new Promise((resolve, reject) => {
      server.bindAsync(`${this.host}:${this.port}`, grpc.ServerCredentials.createInsecure(), (err, p) => {
        if (err) reject(err); else resolve(p);
      });
    });
    this.port = port;
    this.server = server;
    this.epoch += 1;
    return this;
  }

  /**
   * Stop the sink.  `graceful: false` (default) is a "kill": in-flight calls
   * are cancelled and connections torn down at once.  `graceful: true`
   * waits (bounded) for in-flight calls to finish.
   */
  async stop({ graceful = false, timeoutMs = 2000 } = {}) {
    const server = this.server;
    if (!server) return;
    this.server = null;
    this.stoppedAt = Date.now();
    const epoch = this.epoch;
    if (!graceful) {
      this._killedEpochs.add(epoch);
      server.forceShutdown();
      return;
    }
    await new Promise((resolve) => {
      const timer = setTimeout(() => { this._killedEpochs.add(epoch); server.forceShutdown(); resolve(); }, timeoutMs);
      server.tryShutdown(() => { clearTimeout(timer); resolve(); });
    });
  }

  async restart(opts) {
    await this.stop(opts);
    return this.start();
  }

  /**
   * Answer the next `n` Export calls (optionally only of one signal) with a
   * gRPC error `code` (default UNAVAILABLE).  The failed requests are
   * recorded with `ok: false` but not counted as received data.
   */
  failNext(n, { code = grpc.status.UNAVAILABLE, details = 'injected failure', signal } = {}) {
    this._failures.push({ remaining: n, code, details, signal });
  }

  /** Calls received but not answered yet (in flight; see setDelay). */
  inFlight() { return this.records.filter((r) => !r.answered); }

  /** Delay every answer by `ms` (simulates a slow backend; a kill during
   * the delay drops the in-flight calls without committing them). */
  setDelay(ms) { this.delayMs = ms; }

  clear() {
    this.records = [];
    this._failures = [];
  }

  _takeFailure(signal) {
    for (const f of this._failures) {
      if (f.remaining > 0 && (!f.signal || f.signal === signal)) {
        f.remaining -= 1;
        return f;
      }
    }
    this._failures = this._failures.filter((f) => f.remaining > 0);
    return null;
  }

  _handle(signal, call, callback) {
    const raw = call.request;
    const rec = {
      signal,
      epoch: this.epoch,
      receivedAt: Date.now(),
      metadata: call.metadata.getMap(),
      raw,
      request: null,
      ok: false,
      code: grpc.status.OK,
      cancelled: false,
      answered: false,
    };
    call.on('cancelled', () => { rec.cancelled = true; });
    this.records.push(rec);
    try {
      rec.request = otlp.decodeRequest(signal, raw);
    } catch (e) {
      this.decodeErrors += 1;
      rec.code = grpc.status.INVALID_ARGUMENT;
      rec.error = e.message;
      rec.answered = true;
      callback({ code: grpc.status.INVALID_ARGUMENT, details: `sink: cannot decode ${signal} request: ${e.message}` });
      return;
    }
    const failure = this._takeFailure(signal);
    const answer = () => {
      rec.answered = true;
      if (rec.cancelled || this._killedEpochs.has(rec.epoch)) {
        // The sink was killed (or the client gave up) while this call was
        // in flight (see setDelay): like a crashed backend, it never
        // committed the data and the client never got an answer.
        rec.lost = true;
        return;
      }
      if (failure) {
        rec.code = failure.code;
        rec.error = failure.details;
        callback({ code: failure.code, details: failure.details });
      } else {
        rec.ok = true;
        callback(null, otlp.encodeEmptyResponse(signal));
      }
    };
    if (this.delayMs > 0) setTimeout(answer, this.delayMs); else answer();
  }

  /** Records answered successfully (the data the backend "accepted"). */
  accepted(signal) {
    return this.records.filter((r) => r.ok && (!signal || r.signal === signal));
  }

  /** Decoded requests answered successfully. */
  requests(signal) { return this.accepted(signal).map((r) => r.request); }

  spans() { return otlp.flattenSpans(this.requests('traces')); }
  metrics() { return otlp.flattenMetrics(this.requests('metrics')); }
  logs() { return otlp.flattenLogs(this.requests('logs')); }

  /** Number of spans / data points / log records successfully received. */
  itemCount(signal) {
    return this.accepted(signal).reduce((n, r) => n + otlp.countItems(signal, r.request), 0);
  }

  /** Human-readable summary for failure messages. */
  describe() {
    const bySignal = {};
    for (const r of this.records) {
      const k = `${r.signal}:${r.ok ? 'ok' : `code${r.code}`}`;
      bySignal[k] = (bySignal[k] || 0) + 1;
    }
    return `sink ${this.endpoint} epoch=${this.epoch} running=${this.running} calls=${JSON.stringify(bySignal)} ` +
      `items={traces:${this.itemCount('traces')},metrics:${this.itemCount('metrics')},logs:${this.itemCount('logs')}}`;
  }

  /**
   * Wait until `predicate(this)` is truthy; bounded by `timeoutMs`.
   * Rejects with the sink summary on timeout.
   */
  waitFor(predicate, timeoutMs = 10000, message) {
    return waitFor(() => predicate(this), timeoutMs, { message, describe: () => this.describe() });
  }
}

async function startSink(opts) {
  const s = new Sink(opts);
  await s.start();
  return s;
}

module.exports = { Sink, startSink, grpcStatus: grpc.status };
