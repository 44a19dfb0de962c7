'use strict';
// A Kubernetes API server for tests, speaking the wire format of the real one for pods:
//
//   GET /api/v1/pods?fieldSelector=spec.nodeName%3DN&limit=L[&continue=T]
//       → a v1 PodList, paged (metadata.continue), with the list's resourceVersion
//   GET /api/v1/pods?watch=1&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=S
//       → a chunked stream of {"type":…,"object":…} lines: ADDED, MODIFIED, DELETED, BOOKMARK,
//         ERROR (410 Expired when RV is older than what it remembers); written in pieces split
//         at arbitrary bytes, as proxies and HTTP/2 gateways do
//   Authorization: Bearer <token> checked on every request (401 Status otherwise)
//
// Over HTTPS with a certificate of a CA generated for the test (openssl).

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const https = require('node:https');
const http2 = require('node:http2');
const { execFileSync } = require('node:child_process');

function makeCA(dir) {
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2',
    '-subj', '/CN=strata-test-ca');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kube-apiserver');
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt',
    '-days', '2', '-extfile', 'ext.cnf');
  return { ca: path.join(dir, 'ca.crt'), key: fs.readFileSync(path.join(dir, 'server.key')), cert: fs.readFileSync(path.join(dir, 'server.crt')) };
}

function status(code, reason, message) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

class KubeApiServer {
  /** @param {{http2?: boolean}} [o] http2: offer HTTP/2 (ALPN h2, HTTP/1.1 still allowed) */
  constructor(o = {}) {
    this.http2 = !!o.http2;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-kube-'));
    this.tokenFile = path.join(this.dir, 'token');
    this.token = 'token-1';
    fs.writeFileSync(this.tokenFile, `${this.token}\n`);
    this.pods = new Map();      // uid → pod
    this.objects = { namespaces: new Map(), nodes: new Map() }; // name → object
    this.rv = 1000;             // the last resourceVersion
    this.events = [];           // { rv, type, object }
    this.oldestRv = 1000;       // watches from before this get 410
    this.watchers = new Set();
    this.counts = { lists: 0, listPages: 0, watches: 0, unauthorized: 0, http2: 0 };
    this.goneAsHttp = false;    // 410 as an HTTP status instead of an ERROR event
    this.rawEvents = [];        // lines to send as they are (bad JSON tests)
  }

  async start() {
    const tls = makeCA(this.dir);
    this.caFile = tls.ca;
    const handler = (req, res) => this.handle(req, res);
    this.server = this.http2
      ? http2.createSecureServer({ key: tls.key, cert: tls.cert, allowHTTP1: true }, handler)
      : https.createServer({ key: tls.key, cert: tls.cert }, handler);
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `https://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  async stop() {
    for (const w of this.watchers) w.res.destroy();
    this.watchers.clear();
    await new Promise((r) => this.server.close(r));
    this.server.closeAllConnections?.();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  rotateToken(token) {
    this.token = token;
    fs.writeFileSync(this.tokenFile, `${token}\n`);
  }

  // --- state changes (each one an event) ---------------------------------------------------

  record(type, pod, kind = 'pods') {
    this.rv += 1;
    const object = JSON.parse(JSON.stringify(pod));
    object.metadata.resourceVersion = String(this.rv);
    const store = kind === 'pods' ? this.pods : this.objects[kind];
    const key = kind === 'pods' ? pod.metadata.uid : pod.metadata.name;
    if (type === 'DELETED') store.delete(key);
    else store.set(key, object);
    const ev = { rv: this.rv, type, object, kind };
    this.events.push(ev);
    for (const w of this.watchers) this.send(w, ev);
  }

  add(pod) { this.record('ADDED', pod); }
  /** A Namespace or Node (kind 'namespaces' | 'nodes'), added or changed. */
  put(kind, name, labels) {
    const exists = this.objects[kind].has(name);
    this.record(exists ? 'MODIFIED' : 'ADDED', { apiVersion: 'v1', kind: kind === 'nodes' ? 'Node' : 'Namespace', metadata: { name, uid: `${kind}-${name}`, labels } }, kind);
  }
  modify(pod) { this.record('MODIFIED', pod); }
  remove(uid) { this.record('DELETED', this.pods.get(uid)); }
  /** A change no watcher hears of (it happened while they were away). */
  silentRemove(uid) { this.rv += 1; this.pods.delete(uid); }
  bookmark() {
    this.rv += 1;
    for (const w of this.watchers) this.send(w, { type: 'BOOKMARK', object: { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) } } });
  }
  /** Forgets the event history: watches from older resourceVersions get 410. */
  compact() { this.oldestRv = this.rv; this.events = []; }
  /** Drops every watch connection (a load balancer or the server restarting). */
  dropWatches() { for (const w of this.watchers) w.res.destroy(); this.watchers.clear(); }
  /** A line that is not what it should be, to every watcher. */
  sendRaw(line) { for (const w of this.watchers) this.writeSplit(w.res, `${line}\n`); }

  // --- HTTP ------------------------------------------------------------------------------------

  reply(res, code, body) {
    res.writeHead(code, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  handle(req, res) {
    const u = new URL(req.url, this.url);
    if (req.httpVersion === '2.0') this.counts.http2 += 1;
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      this.counts.unauthorized += 1;
      return this.reply(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    }
    const sel = u.searchParams.get('fieldSelector') || '';
    const fieldIs = (f) => (sel.startsWith(`${f}=`) ? sel.slice(f.length + 1) : null);
    let kind; let match;
    const m = /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?pods$/.exec(u.pathname);
    if (m) {
      kind = 'pods';
      const ns = m[1] ? decodeURIComponent(m[1]) : null;
      const node = fieldIs('spec.nodeName');
      match = (p) => (node === null || p.spec?.nodeName === node) && (ns === null || p.metadata.namespace === ns);
    } else if (u.pathname === '/api/v1/namespaces' || u.pathname === '/api/v1/nodes') {
      kind = u.pathname.slice('/api/v1/'.length);
      const name = fieldIs('metadata.name');
      match = (o) => name === null || o.metadata.name === name;
    } else return this.reply(res, 404, status(404, 'NotFound', `the server could not find ${u.pathname}`));
    if (u.searchParams.get('watch') === '1') return this.watch(req, res, u, match, kind);
    return this.list(res, u, match, kind);
  }

  list(res, u, match, kind = 'pods') {
    const limit = Number(u.searchParams.get('limit') || 0);
    const cont = u.searchParams.get('continue');
    let offset = 0; let rv = this.rv;
    if (cont) {
      const c = JSON.parse(Buffer.from(cont, 'base64').toString());
      offset = c.offset; rv = c.rv;
      if (rv < this.oldestRv) return this.reply(res, 410, status(410, 'Expired', 'The provided continue parameter is too old'));
    }
    const store = kind === 'pods' ? this.pods : this.objects[kind];
    const all = [...store.values()].filter(match).sort((a, b) => a.metadata.uid.localeCompare(b.metadata.uid));
    const page = limit ? all.slice(offset, offset + limit) : all.slice(offset);
    const more = limit && offset + limit < all.length;
    if (!cont && kind === 'pods') this.counts.lists += 1;
    this.counts.listPages += 1;
    this.reply(res, 200, {
      kind: kind === 'pods' ? 'PodList' : kind === 'nodes' ? 'NodeList' : 'NamespaceList', apiVersion: 'v1',
      metadata: { resourceVersion: String(rv), ...(more ? { continue: Buffer.from(JSON.stringify({ offset: offset + limit, rv })).toString('base64') } : {}) },
      items: page,
    });
  }

  watch(req, res, u, match, kind = 'pods') {
    if (kind === 'pods') this.counts.watches += 1;
    const from = Number(u.searchParams.get('resourceVersion') || 0);
    if (from < this.oldestRv) {
      if (this.goneAsHttp) return this.reply(res, 410, status(410, 'Expired', `too old resource version: ${from} (${this.oldestRv})`));
      res.writeHead(200, this.streamHeaders(req));
      this.writeSplit(res, `${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from} (${this.oldestRv})`) })}\n`);
      return res.end();
    }
    res.writeHead(200, this.streamHeaders(req));
    const w = { res, match, from, kind };
    this.watchers.add(w);
    res.on('close', () => this.watchers.delete(w));
    for (const ev of this.events) if (ev.rv > from) this.send(w, ev);
    const timeout = Number(u.searchParams.get('timeoutSeconds') || 0);
    if (timeout) setTimeout(() => { this.watchers.delete(w); res.end(); }, timeout * 1000).unref();
  }

  /** A stream: chunked over HTTP/1.1; HTTP/2 streams need (and allow) no such header. */
  streamHeaders(req) {
    return req.httpVersion === '2.0' ? { 'content-type': 'application/json' }
      : { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' };
  }

  send(w, ev) {
    if (ev.type !== 'BOOKMARK' && ((ev.kind || 'pods') !== w.kind || !w.match(ev.object))) return;
    this.writeSplit(w.res, `${JSON.stringify({ type: ev.type, object: ev.object })}\n`);
  }

  /** Writes s in pieces cut at arbitrary bytes (inside JSON strings, inside UTF-8). */
  writeSplit(res, s) {
    const buf = Buffer.from(s);
    let i = 0;
    while (i < buf.length) {
      const n = 1 + Math.floor(Math.random() * 97);
      res.write(buf.subarray(i, i + n));
      i += n;
    }
  }
}

/** A v1 Pod of the real shape (what `kubectl get pod -o json` shows, trimmed of noise). */
function pod({ name, uid, namespace = 'default', node = 'node-1', containerId, ip, labels = {}, hostNetwork = false,
  owner = { kind: 'ReplicaSet', name: `${name.split('-')[0]}-7d4b9c8f5` }, image = 'registry.local/shop/web:1.0',
  restarts = 0, lastReason }) {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      name, namespace, uid, generateName: `${name}-`, creationTimestamp: '2026-11-30T10:00:00Z',
      labels: { 'pod-template-hash': '7d4b9c8f5', ...labels },
      annotations: { 'kubernetes.io/config.seen': '2026-11-30T10:00:00Z' },
      ownerReferences: owner ? [{ apiVersion: 'apps/v1', kind: owner.kind, name: owner.name, uid: `owner-${uid}`, controller: true, blockOwnerDeletion: true }] : [],
    },
    spec: {
      nodeName: node, hostNetwork, serviceAccountName: 'default', restartPolicy: 'Always',
      containers: [{ name: 'app', image, ports: [{ containerPort: 8080, protocol: 'TCP' }], resources: {} }],
    },
    status: {
      phase: 'Running', hostIP: '192.168.1.10', podIP: ip, podIPs: ip ? [{ ip }] : [], startTime: '2026-11-30T10:00:01Z',
      conditions: [{ type: 'Ready', status: 'True' }],
      containerStatuses: [{
        name: 'app', ready: true, started: true, restartCount: restarts, image, imageID: 'sha256:0123',
        containerID: containerId ? `containerd://${containerId}` : undefined, state: { running: { startedAt: '2026-11-30T10:00:02Z' } },
        ...(lastReason ? { lastState: { terminated: { exitCode: 137, reason: lastReason, startedAt: '2026-11-30T10:00:02Z', finishedAt: '2026-11-30T10:05:00Z' } } } : {}),
      }],
    },
  };
}

module.exports = { KubeApiServer, pod };
