'use strict';
// Minimal YAML emitter for the config files the harness writes (block
// mappings, flow sequences of scalars like the Collector docs' `[otlp]`,
// block sequences of mappings), plus the matching minimal parser used only
// by tools/fake-strata.js.  No third-party YAML dependency.

const PLAIN = /^[A-Za-z0-9_./@-][A-Za-z0-9_.:/@-]*$/;
const RESERVED = /^(true|false|yes|no|on|off|null|~|y|n)$/i;

function scalar(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`cannot emit ${v}`);
    return String(v);
  }
  const s = String(v);
  // Plain (unquoted) when unambiguous, e.g. otlp, 127.0.0.1:4317, 100ms;
  // quoted when it would otherwise read as a number, bool, null, or contains
  // YAML-special characters.
  const numberLike = /^[-+]?(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s) || /^0[xob]/i.test(s) ||
    /^[-+]?\d+(:[0-5]?\d)+$/.test(s) || /^[-+]?\.(inf|nan)$/i.test(s);
  if (s !== '' && PLAIN.test(s) && !RESERVED.test(s) && !numberLike) return s;
  return JSON.stringify(s);
}

const isScalar = (v) => v === null || ['string', 'number', 'boolean'].includes(typeof v);

function emit(obj, indent = 0) {
  const pad = ' '.repeat(indent);
  let out = '';
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    const key = scalar(k);
    if (isScalar(v)) {
      out += `${pad}${key}: ${scalar(v)}\n`;
    } else if (Array.isArray(v)) {
      if (v.every(isScalar)) {
        out += `${pad}${key}: [${v.map(scalar).join(', ')}]\n`;
      } else {
        out += `${pad}${key}:\n`;
        for (const item of v) {
          if (isScalar(item)) { out += `${pad}  - ${scalar(item)}\n`; continue; }
          const inner = emit(item, indent + 4).split('\n').filter(Boolean);
          inner[0] = `${pad}  - ${inner[0].trimStart()}`;
          out += `${inner.join('\n')}\n`;
        }
      }
    } else if (typeof v === 'object') {
      if (Object.keys(v).length === 0) out += `${pad}${key}: {}\n`;
      else out += `${pad}${key}:\n${emit(v, indent + 2)}`;
    } else {
      throw new Error(`cannot emit ${typeof v}`);
    }
  }
  return out;
}

function toYaml(obj) { return emit(obj, 0); }

// ---- minimal parser (subset: block maps, flow seqs of scalars, flow maps of
// scalars, `- ` block sequences of scalars or maps, comments).  Used by the
// fake strata only.

function parseScalar(s) {
  s = s.trim();
  if (s === '' || s === '~' || s === 'null') return null;
  if (s === 'true') return true;
  if (s === 'false') return false;
  if (/^-?[0-9]+$/.test(s)) return Number(s);
  if (/^-?[0-9]*\.[0-9]+([eE][-+]?[0-9]+)?$/.test(s)) return Number(s);
  if (s.startsWith('"')) return JSON.parse(s);
  if (s.startsWith("'")) return s.slice(1, -1).replace(/''/g, "'");
  if (s.startsWith('[')) {
    const body = s.slice(1, -1).trim();
    return body === '' ? [] : splitFlow(body).map(parseScalar);
  }
  if (s.startsWith('{')) {
    const body = s.slice(1, -1).trim();
    const o = {};
    if (body !== '') {
      for (const part of splitFlow(body)) {
        const i = part.indexOf(':');
        o[part.slice(0, i).trim()] = parseScalar(part.slice(i + 1));
      }
    }
    return o;
  }
  return s;
}

function splitFlow(body) {
  const parts = []; let depth = 0; let cur = ''; let q = null;
  for (const ch of body) {
    if (q) { cur += ch; if (ch === q) q = null; continue; }
    if (ch === '"' || ch === "'") { q = ch; cur += ch; continue; }
    if (ch === '[' || ch === '{') depth++;
    if (ch === ']' || ch === '}') depth--;
    if (ch === ',' && depth === 0) { parts.push(cur); cur = ''; continue; }
    cur += ch;
  }
  if (cur.trim() !== '') parts.push(cur);
  return parts;
}

function parseYaml(text) {
  const lines = [];
  text.split('\n').forEach((raw, i) => {
    const noComment = raw.replace(/(^|\s)#.*$/, '');
    if (noComment.trim() === '') return;
    lines.push({ indent: noComment.match(/^ */)[0].length, text: noComment.trim(), line: i + 1 });
  });
  let pos = 0;
  function parseBlock(indent) {
    if (pos >= lines.length) return null;
    if (lines[pos].text.startsWith('- ') || lines[pos].text === '-') {
      const arr = [];
      while (pos < lines.length && lines[pos].indent === indent && lines[pos].text.startsWith('-')) {
        const rest = lines[pos].text.slice(1).trim();
        if (rest.includes(': ') || rest.endsWith(':')) {
          // "- key: value" starts a map at indent+2
          lines[pos] = { indent: indent + 2, text: rest, line: lines[pos].line };
          arr.push(parseBlock(indent + 2));
        } else {
          arr.push(parseScalar(rest));
          pos++;
        }
      }
      return arr;
    }
    const obj = {};
    while (pos < lines.length && lines[pos].indent === indent) {
      const { text, line } = lines[pos];
      const m = text.match(/^("[^"]*"|[^:]+):(\s+(.*))?$/);
      if (!m) throw new Error(`line ${line}: cannot parse: ${text}`);
      const key = m[1].startsWith('"') ? JSON.parse(m[1]) : m[1].trim();
      pos++;
      if (m[3] !== undefined && m[3] !== '') {
        obj[key] = parseScalar(m[3]);
      } else if (pos < lines.length && lines[pos].indent > indent) {
        obj[key] = parseBlock(lines[pos].indent);
      } else if (pos < lines.length && lines[pos].indent === indent && lines[pos].text.startsWith('-')) {
        obj[key] = parseBlock(indent);
      } else {
        obj[key] = null;
      }
    }
    return obj;
  }
  const out = parseBlock(0) || {};
  if (pos < lines.length) throw new Error(`line ${lines[pos].line}: bad indentation`);
  return out;
}

module.exports = { toYaml, parseYaml };
