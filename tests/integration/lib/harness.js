'use strict';
// Per-test setup/teardown: a fresh sink and a fresh strata on fresh ports,
// always cleaned up (also when the test fails or times out).

const { startSink } = require('./sink');
const { startStrata, requireStrata } = require('./strata');
const { withTimeout } = require('./util');

/**
 * @param {import('node:test').TestContext} t
 * @param {object} [o]
 * @param {boolean} [o.sinkRunning=true]  start the sink before strata; when
 *        false the sink gets a reserved port but is not listening yet
 * @param {function} [o.configure]  passed to startStrata
 * @returns {Promise<{sink, strata, track}>|null} null when skipped
 */
async function setup(t, o = {}) {
  if (!requireStrata(t)) return null;
  const cleanups = [];
  const track = (fn) => cleanups.push(fn);
  t.after(async () => {
    for (const fn of cleanups.reverse()) {
      await withTimeout(Promise.resolve().then(fn), 10000, 'cleanup').catch((e) => {
        // eslint-disable-next-line no-console
        console.error(`cleanup error: ${e.message}`);
      });
    }
  });

  const sink = await startSink();
  track(() => sink.stop());
  if (o.sinkRunning === false) await sink.stop();

  const strata = await startStrata({ sinkEndpoint: sink.endpoint, configure: o.configure, env: o.env, healthTimeoutMs: 10000 });
  track(() => strata.cleanup());
  return { sink, strata, track };
}

/** Shut an SDK provider bundle down without hanging the test. */
async function shutdownQuietly(bundle, ms = 5000) {
  if (!bundle) return;
  await withTimeout(bundle.shutdown(), ms, 'sdk shutdown').catch(() => {});
}

/** Failure context: the sink summary and strata's stderr tail. */
function context(h) {
  return `${h.sink.describe()}\n${h.strata.describe()}`;
}

module.exports = { setup, shutdownQuietly, context };
