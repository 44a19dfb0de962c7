'use strict';
// `strata validate`, `strata components`, `strata version`.

const { describe, test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { requireStrata, runStrata, makeTmpDir } = require('./lib/strata');

const TIMEOUT = 15000;

// A valid config.  Line numbers below refer to this text (1-based).
const GOOD = [
  /* 1 */ 'receivers:',
  /* 2 */ '  otlp:',
  /* 3 */ '    protocols:',
  /* 4 */ '      grpc:',
  /* 5 */ '        endpoint: 127.0.0.1:4317',
  /* 6 */ '      http:',
  /* 7 */ '        endpoint: 127.0.0.1:4318',
  /* 8 */ 'processors:',
  /* 9 */ '  batch:',
  /* 10 */ '    timeout: 50ms',
  /* 11 */ 'exporters:',
  /* 12 */ '  debug: {}',
  /* 13 */ '  otlp:',
  /* 14 */ '    endpoint: 127.0.0.1:4319',
  /* 15 */ '    tls:',
  /* 16 */ '      insecure: true',
  /* 17 */ '    sending_queue:',
  /* 18 */ '      queue_size: 1000',
  /* 19 */ 'service:',
  /* 20 */ '  pipelines:',
  /* 21 */ '    traces:',
  /* 22 */ '      receivers: [otlp]',
  /* 23 */ '      processors: [batch]',
  /* 24 */ '      exporters: [otlp, debug]',
  /* 25 */ '    logs:',
  /* 26 */ '      receivers: [otlp]',
  /* 27 */ '      exporters: [debug]',
];

function withLine(lines, lineNo, text) {
  const out = lines.slice();
  out[lineNo - 1] = text;
  return out;
}
function insertAfter(lines, lineNo, text) {
  const out = lines.slice();
  out.splice(lineNo, 0, text);
  return out;
}

function writeConfig(t, name, lines) {
  const dir = makeTmpDir('strata-validate-');
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, name);
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Find `file:line:col: message` diagnostics (file as given or its basename)
 * in stdout+stderr.  Returns [{ line, col, message, text }].
 */
function diagnostics(out, file) {
  const re = new RegExp(`(?:${escapeRe(file)}|${escapeRe(path.basename(file))}):(\\d+):(\\d+):\\s*(.+)$`, 'gm');
  const found = [];
  let m;
  while ((m = re.exec(out)) !== null) found.push({ line: Number(m[1]), col: Number(m[2]), message: m[3], text: m[0] });
  return found;
}

/**
 * Run validate on `lines` and assert: non-zero exit, and a diagnostic on
 * `line` whose column is one of `cols` and whose message mentions `word`
 * (or one of the words, when an array).
 */
async function expectError(t, { name, lines, line, cols, word }) {
  const file = writeConfig(t, name, lines);
  const r = await runStrata(['validate', '--config', file], { timeoutMs: TIMEOUT - 5000 });
  const out = `${r.stdout}\n${r.stderr}`;
  const ctx = `--- ${name} ---\n${lines.map((l, i) => `${String(i + 1).padStart(3)}| ${l}`).join('\n')}\n--- exit ${r.code}/${r.signal} output ---\n${out}`;
  assert.ok(!r.timedOut, `validate timed out\n${ctx}`);
  assert.notEqual(r.code, 0, `validate must exit non-zero\n${ctx}`);
  const diags = diagnostics(out, file);
  assert.ok(diags.length > 0, `no "file:line:col: message" line in the output\n${ctx}`);
  const words = [].concat(word).map((w) => w.toLowerCase());
  const hit = diags.find((d) => d.line === line && cols.includes(d.col) && words.some((w) => d.message.toLowerCase().includes(w)));
  assert.ok(hit, `expected a diagnostic at line ${line}, column one of [${cols}], mentioning one of ${JSON.stringify(words)}; got:\n${diags.map((d) => d.text).join('\n')}\n${ctx}`);
  t.diagnostic(hit.text);
}

describe('strata validate', () => {
  test('a good config exits 0', { timeout: TIMEOUT }, async (t) => {
    if (!requireStrata(t)) return;
    const file = writeConfig(t, 'good.yaml', GOOD);
    const r = await runStrata(['validate', '--config', file], { timeoutMs: TIMEOUT - 5000 });
    assert.equal(r.code, 0, `validate good.yaml: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  });

  test('named component ids (type/name) are accepted', { timeout: TIMEOUT }, async (t) => {
    if (!requireStrata(t)) return;
    let lines = insertAfter(GOOD, 18, '  otlp/backup:');
    lines = insertAfter(lines, 19, '    endpoint: 127.0.0.1:4320');
    lines = withLine(lines, 26, '      exporters: [otlp, otlp/backup, debug]');
    const file = writeConfig(t, 'named.yaml', lines);
    const r = await runStrata(['validate', '--config', file], { timeoutMs: TIMEOUT - 5000 });
    assert.equal(r.code, 0, `validate named.yaml: exit ${r.code}\n${lines.join('\n')}\n${r.stdout}\n${r.stderr}`);
  });

  test('unknown key', { timeout: TIMEOUT }, async (t) => {
    if (!requireStrata(t)) return;
    // line 10 "    timeoutt: 50ms": key at col 5, value at col 15
    await expectError(t, { name: 'unknown-key.yaml', lines: withLine(GOOD, 10, '    timeoutt: 50ms'), line: 10, cols: [5, 15], word: 'timeoutt' });
  });

  test('wrong type: word where an integer is expected', { timeout: TIMEOUT }, async (t) => {
    if (!requireStrata(t)) return;
    // line 18 "      queue_size: many": key col 7, value col 19
    await expectError(t, { name: 'wrong-type-int.yaml', lines: withLine(GOOD, 18, '      queue_size: many'), line: 18, cols: [7, 19], word: ['queue_size', 'many', 'int', 'number'] });
  });

  test('wrong type: sequence where a mapping is expected', { timeout: TIMEOUT }, async (t) => {
    if (!requireStrata(t)) return;
    // line 15 "    tls: [insecure]": key col 5, value col 10
    let lines = withLine(GOOD, 15, '    tls: [insecure]');
    lines.splice(15, 1); // drop "      insecure: true"
    await expectError(t, { name: 'wrong-type-map.yaml', lines, line: 15, cols: [5, 10], word: ['tls', 'map', 'object', 'sequence', 'list', 'array'] });
  });

  test('unknown component type', { timeout: TIMEOUT }, async (t) => {
    if (!requireStrata(t)) return;
    // inserted as line 11: "  frobnicator: {}" -> key col 3, value col 16
    await expectError(t, { name: 'unknown-type.yaml', lines: insertAfter(GOOD, 10, '  frobnicator: {}'), line: 11, cols: [3, 16], word: 'frobnicator' });
  });

  test('pipeline references an undefined component', { timeout: TIMEOUT }, async (t) => {
    if (!requireStrata(t)) return;
    // line 24 "      exporters: [otlp, nosuch]": key col 7, "[" col 18, "nosuch" col 25
    await expectError(t, { name: 'undefined-ref.yaml', lines: withLine(GOOD, 24, '      exporters: [otlp, nosuch]'), line: 24, cols: [7, 18, 25], word: 'nosuch' });
  });

  test('missing config file fails cleanly', { timeout: TIMEOUT }, async (t) => {
    if (!requireStrata(t)) return;
    const r = await runStrata(['validate', '--config', '/nonexistent/strata-it.yaml'], { timeoutMs: TIMEOUT - 5000 });
    assert.ok(!r.timedOut);
    assert.notEqual(r.code, 0);
    assert.ok(r.signal === null, `must exit, not crash (signal ${r.signal})`);
  });
});

describe('strata CLI', () => {
  test('components lists otlp, batch and debug', { timeout: TIMEOUT }, async (t) => {
    if (!requireStrata(t)) return;
    const r = await runStrata(['components'], { timeoutMs: TIMEOUT - 5000 });
    assert.equal(r.code, 0, `components: exit ${r.code}\n${r.stderr}`);
    for (const w of ['otlp', 'batch', 'debug']) {
      assert.match(r.stdout, new RegExp(`\\b${w}\\b`), `components output lacks ${w}:\n${r.stdout}`);
    }
  });

  test('version prints something', { timeout: TIMEOUT }, async (t) => {
    if (!requireStrata(t)) return;
    const r = await runStrata(['version'], { timeoutMs: TIMEOUT - 5000 });
    assert.equal(r.code, 0, `version: exit ${r.code}\n${r.stderr}`);
    assert.ok(r.stdout.trim().length > 0, 'version printed nothing on stdout');
    t.diagnostic(r.stdout.trim().split('\n')[0]);
  });
});
