'use strict';
// Small shared helpers: bounded waiting, free ports, timeouts.

const net = require('node:net');
const { setTimeout: sleep } = require('node:timers/promises');

/**
 * Poll `predicate` until it returns a truthy value (or a promise of one) and
 * resolve with that value. Rejects after `timeoutMs` with an Error whose
 * message includes `opts.message` and, if given, the output of
 * `opts.describe()` (to show what was seen instead).
 */
async function waitFor(predicate, timeoutMs = 5000, opts = {}) {
  const intervalMs = opts.intervalMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  for (;;) {
    try {
      const v = await predicate();
      if (v) return v;
      lastErr = undefined;
    } catch (e) {
      if (e && e.fatal) throw e; // predicate says: stop waiting, this won't get better
      lastErr = e;
    }
    if (Date.now() >= deadline) {
      let msg = `waitFor timed out after ${timeoutMs} ms`;
      if (opts.message) msg += `: ${opts.message}`;
      if (lastErr) msg += ` (last error: ${lastErr.message})`;
      if (opts.describe) {
        try { msg += `\n${opts.describe()}`; } catch (_) { /* ignore */ }
      }
      const err = new Error(msg);
      if (lastErr) err.cause = lastErr;
      throw err;
    }
    await sleep(intervalMs);
  }
}

/** Race a promise against a timer; rejects with `what` timed out. */
function withTimeout(promise, ms, what = 'operation') {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    timer.unref?.();
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/**
 * Pick a free TCP port on 127.0.0.1 by binding port 0 and closing it again.
 * Ports handed out by this process are remembered so that two calls in the
 * same run never return the same port even if the kernel would reuse it.
 */
const handedOut = new Set();
async function freePort(host = '127.0.0.1') {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.on('error', reject);
      srv.listen({ port: 0, host, exclusive: true }, () => {
        const { port: p } = srv.address();
        srv.close(() => resolve(p));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('could not find a free port');
}

async function freePorts(n, host) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await freePort(host));
  return out;
}

function hrTimeToNanos(hr) {
  return (BigInt(hr[0]) * 1000000000n + BigInt(hr[1])).toString();
}

module.exports = { waitFor, withTimeout, freePort, freePorts, sleep, hrTimeToNanos };
