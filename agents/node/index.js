'use strict';
// Reports span start/end to strata's context channel: a Unix stream socket
// carrying fixed 64-byte records. Wire format: ../../docs/context-channel.md
// Only node: built-ins are used; the OpenTelemetry SDK passes the spans in.

const net = require('node:net');
const { isMainThread } = require('node:worker_threads');

const VERSION = 1;
const SPAN_START = 1;
const SPAN_END = 2;
const RECORD_SIZE = 64;

const DEFAULT_SOCKET = '/run/strata/context.sock';
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;
const SHUTDOWN_TIMEOUT_MS = 1000;

// The main thread's OS tid equals the pid. A worker thread cannot learn its
// OS tid portably, so it sends 0 ("unknown") and strata matches by
// process and time.
const TID = isMainThread ? process.pid : 0;

const HEX = /^[0-9a-fA-F]*$/;

// Writes a hex id of `size` bytes at `offset`. An empty or missing value stays
// all zero, which is what a root span's parent id must be.
function writeId(buf, offset, size, hex, name, required) {
  if (hex === undefined || hex === null || hex === '') {
    if (required) throw new TypeError(`${name} is required`);
    return;
  }
  if (typeof hex !== 'string' || hex.length !== size * 2 || !HEX.test(hex)) {
    throw new TypeError(`${name} must be ${size * 2} hex digits`);
  }
  buf.write(hex, offset, size, 'hex');
}

/**
 * Encodes one context-channel record.
 * @param {{type: number, pid: number, tid?: number, timeNs: bigint|number|string,
 *          traceId: string, spanId: string, parentSpanId?: string}} r
 *   ids are lowercase or uppercase hex strings (32 / 16 / 16 digits)
 * @returns {Buffer} 64 bytes
 */
function encodeRecord({ type, pid, tid = 0, timeNs, traceId, spanId, parentSpanId }) {
  if (type !== SPAN_START && type !== SPAN_END) {
    // strata would close the connection on an unknown type.
    throw new RangeError(`unknown record type ${type}`);
  }
  const buf = Buffer.alloc(RECORD_SIZE); // zero-filled: flags and reserved stay 0
  buf.writeUInt8(VERSION, 0);
  buf.writeUInt8(type, 1);
  buf.writeUInt32LE(pid, 4);
  buf.writeUInt32LE(tid, 8);
  buf.writeBigUInt64LE(BigInt(timeNs), 16);
  writeId(buf, 24, 16, traceId, 'traceId', true);
  writeId(buf, 40, 8, spanId, 'spanId', true);
  writeId(buf, 48, 8, parentSpanId, 'parentSpanId', false);
  return buf;
}

// Now, as Unix epoch ns, from the one clock this process reads the same way for every span.
// Not the span's own timestamps: SDK 1.x takes a span's start from Date.now() (whole ms) and
// derives its end from an offset computed per span, so each span is shifted by its own
// fraction of a millisecond, enough to put a kernel event just before a span's end outside
// it. strata aligns this clock to its own per connection (docs/context-channel.md).
const { performance } = require('node:perf_hooks');
function nowNs() {
  const origin = BigInt(Math.round(performance.timeOrigin * 1e6));
  return origin + BigInt(Math.round(performance.now() * 1e6));
}

class StrataContextSpanProcessor {
  /**
   * @param {{socketPath?: string, maxQueued?: number}} [options]
   *   socketPath: defaults to $STRATA_CONTEXT_SOCKET or /run/strata/context.sock
   *   maxQueued: records kept while strata is unreachable or slow (default 4096)
   */
  constructor(options = {}) {
    this.socketPath = options.socketPath || process.env.STRATA_CONTEXT_SOCKET || DEFAULT_SOCKET;
    this.maxQueued = options.maxQueued ?? 4096;
    /** Records not handed to the socket: queue overflow or unencodable spans. */
    this.dropped = 0;

    this._queue = []; // encoded records waiting for a connection
    this._socket = null;
    this._connected = false;
    this._backoff = BACKOFF_MIN_MS;
    this._timer = null;
    this._shutdown = false;
    this._connect();
  }

  onStart(span, _parentContext) {
    // SDK 1.x has span.parentSpanId. SDK 2.x replaced it with parentSpanContext.
    const parent = span.parentSpanId ?? span.parentSpanContext?.spanId;
    this._record(SPAN_START, span, nowNs(), parent);
  }

  onEnd(span) {
    const parent = span.parentSpanId ?? span.parentSpanContext?.spanId;
    this._record(SPAN_END, span, nowNs(), parent);
  }

  /** Resolves once everything queued has been handed to the kernel, or at once if not connected. */
  forceFlush() {
    const s = this._socket;
    if (!this._connected || !s || s.writableLength === 0) return Promise.resolve();
    // An empty write's callback runs after all earlier writes have been flushed
    // (or with an error if the socket dies first). Either way, we're done.
    return new Promise((resolve) => s.write(Buffer.alloc(0), () => resolve()));
  }

  shutdown() {
    if (this._shutdown) return Promise.resolve();
    this._shutdown = true;
    clearTimeout(this._timer);
    this._queue = [];
    const s = this._socket;
    if (!s) return Promise.resolve();
    if (!this._connected) {
      s.destroy();
      return Promise.resolve();
    }
    // end() sends whatever is buffered, then FIN. If strata has stopped
    // reading, that never finishes: give up after a second.
    return new Promise((resolve) => {
      s.once('close', () => resolve());
      s.end();
      setTimeout(() => s.destroy(), SHUTDOWN_TIMEOUT_MS).unref();
    });
  }

  _record(type, span, timeNs, parentSpanId) {
    if (this._shutdown) return;
    try {
      const ctx = span.spanContext();
      const rec = encodeRecord({
        type,
        pid: process.pid,
        tid: TID,
        timeNs,
        traceId: ctx.traceId,
        spanId: ctx.spanId,
        parentSpanId,
      });
      this._send(rec);
    } catch {
      // Never throw into the application.
      this.dropped++;
    }
  }

  _send(rec) {
    if (this._connected) {
      // socket.write never blocks; Node buffers in memory instead. Cap that
      // buffer so a stalled strata can't grow it without bound. Node writes each
      // buffer whole or loses it with the connection, so records stay aligned.
      if (this._socket.writableLength >= this.maxQueued * RECORD_SIZE) {
        this.dropped++;
      } else {
        this._socket.write(rec);
      }
    } else if (this._queue.length < this.maxQueued) {
      this._queue.push(rec);
    } else {
      this.dropped++;
    }
  }

  _connect() {
    this._timer = null;
    if (this._shutdown) return;
    const s = net.createConnection({ path: this.socketPath });
    s.unref(); // the agent must never keep the process alive
    this._socket = s;
    s.on('connect', () => {
      this._connected = true;
      this._backoff = BACKOFF_MIN_MS;
      if (this._queue.length > 0) {
        s.write(Buffer.concat(this._queue));
        this._queue = [];
      }
    });
    // ENOENT / ECONNREFUSED / EPIPE: ignore here. 'close' follows and reconnects.
    s.on('error', () => {});
    s.on('close', () => {
      if (this._socket === s) {
        this._socket = null;
        this._connected = false;
      }
      if (this._shutdown) return;
      this._timer = setTimeout(() => this._connect(), this._backoff);
      this._timer.unref();
      this._backoff = Math.min(this._backoff * 2, BACKOFF_MAX_MS);
    });
  }
}

module.exports = {
  StrataContextSpanProcessor,
  encodeRecord,
  SPAN_START,
  SPAN_END,
  RECORD_SIZE,
};
