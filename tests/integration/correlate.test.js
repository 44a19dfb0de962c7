'use strict';
// Correlation end to end (root: it loads the kernel receiver's BPF programs).
//
// An application instrumented with the OpenTelemetry JS SDK (apps/traced-app.js), started in
// a cgroup whose path is the one containerd gives a Kubernetes container, spawns a child and
// opens a TCP connection inside a known span. strata runs the ebpf receiver, the otlp
// receiver and the correlate processor. At the sink, the exec and connect events must carry
// that span's trace_id/span_id, the right pid and container, and the spans must be attributed
// to the application by the kernel: SO_PEERCRED over the Unix socket, the kernel's connection
// table over TCP — whatever process.pid the SDK claims (the app claims pid 1) — and, with
// span_events, carry the events joined to them.

const { describe, test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { setup, context } = require('./lib/harness');
const { attrs } = require('./lib/otlp');
const { withTimeout, waitFor } = require('./lib/util');
const { KubeApiServer, pod } = require('./lib/kube-apiserver');

const TEST_TIMEOUT = 60000;

function cgroup2Mount() {
  for (const line of fs.readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[2] === 'cgroup2') return f[1];
  }
  return null;
}

/** Why this host cannot run the test, or null. */
function missing() {
  if (process.getuid() !== 0) return 'not root: loading BPF programs needs root (CAP_BPF, CAP_PERFMON)';
  if (!fs.existsSync('/sys/kernel/btf/vmlinux')) return 'no kernel BTF at /sys/kernel/btf/vmlinux';
  if (!cgroup2Mount()) return 'no cgroup2 mount';
  return null;
}

/** A cgroup that looks like a Kubernetes container's under containerd (systemd driver). */
function fakeContainer(tag) {
  const mount = cgroup2Mount();
  const id = (process.pid.toString(16).padStart(8, '0') + tag.padEnd(56, '0')).slice(0, 64);
  const uid = `${process.pid.toString(16).padStart(8, '0')}-1c2f-4e6a-9b8d-0a1b2c3d4e5f`;
  const slice = path.join(mount, 'strata-test.slice');
  const pod = path.join(slice, `kubepods-besteffort-pod${uid.replace(/-/g, '_')}.slice`);
  const dir = path.join(pod, `cri-containerd-${id}.scope`);
  fs.mkdirSync(dir, { recursive: true });
  return {
    id, uid, dir,
    remove() {
      for (const d of [dir, pod]) {
        try { fs.rmdirSync(d); } catch (_) { /* a process still there: the kernel frees it later */ }
      }
    },
  };
}

function listen() {
  return new Promise((resolve) => {
    const srv = net.createServer((s) => s.on('error', () => {}).resume());
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

/** Runs the app inside the container's cgroup; resolves what it printed. */
function runApp(env, container) {
  return new Promise((resolve, reject) => {
    const app = path.join(__dirname, 'apps', 'traced-app.js');
    // the shell moves itself into the cgroup, then becomes node: the app runs "in" the container
    const p = spawn('/bin/sh', ['-c', `echo $$ > ${container.dir}/cgroup.procs && exec "$0" "$1"`, process.execPath, app], {
      env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = []; const err = [];
    p.stdout.on('data', (c) => out.push(c));
    p.stderr.on('data', (c) => err.push(c));
    p.on('error', reject);
    p.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`traced-app exited ${code}: ${Buffer.concat(err)}`));
      try { resolve(JSON.parse(Buffer.concat(out).toString())); } catch (e) { reject(new Error(`traced-app printed ${Buffer.concat(out)}: ${e.message}`)); }
    });
  });
}

const str = (v) => (v == null ? v : String(v));

for (const transport of ['unix', 'tcp']) {
  describe(`correlation, spans over ${transport === 'unix' ? 'a Unix socket' : 'TCP'}`, () => {
    test('kernel events carry the span they happened in; spans and events carry the app\'s pid and container', { timeout: TEST_TIMEOUT }, async (t) => {
      const why = missing();
      if (why) { t.skip(why); return; }
      const tag = Math.random().toString(16).slice(2, 10);
      const container = fakeContainer(tag);
      t.after(() => container.remove());
      const sockDir = fs.mkdtempSync('/tmp/strata-corr-');
      t.after(() => fs.rmSync(sockDir, { recursive: true, force: true }));
      const otlpSock = path.join(sockDir, 'otlp.sock');
      const ctxSock = path.join(sockDir, 'context.sock');
      // the pod this "container" belongs to, as the Kubernetes API tells it
      const api = await new KubeApiServer().start();
      t.after(() => api.stop());
      api.add(pod({ name: `traced-app-${tag}`, uid: container.uid, containerId: container.id, ip: '10.244.9.9',
        namespace: 'shop', node: 'node-1' }));

      const h = await setup(t, {
        configure: (cfg) => {
          cfg.receivers.otlp.protocols.grpc.unix_socket = otlpSock;
          cfg.receivers.ebpf = { events: ['process', 'network'], flush_interval: '50ms' };
          cfg.processors.correlate = { join_window: '1s', context_socket: ctxSock, span_events: true };
          cfg.receivers.k8s = { api_server: api.url, ca_file: api.caFile, token_file: api.tokenFile, node: 'node-1' };
          cfg.processors.k8sattributes = {};
          cfg.service.pipelines.traces.processors = ['correlate', 'k8sattributes', 'batch'];
          cfg.service.pipelines.logs = { receivers: ['ebpf', 'k8s'], processors: ['correlate', 'k8sattributes', 'batch'], exporters: ['otlp'] };
          delete cfg.service.pipelines.metrics;
          return cfg;
        },
      });
      if (!h) return;
      const srv = await listen();
      t.after(() => srv.close());
      const port = srv.address().port;

      try {
        await waitFor(async () => /strata_receiver_k8s_pods\{[^}]*\} 1\b/.test(await h.strata.metricsText()), 10000,
          { message: 'the pod listed' });
        const childTag = `strata-e2e-${tag}`;
        const app = await withTimeout(runApp({
          STRATA_OTLP: transport === 'unix' ? `unix://${otlpSock}` : `http://127.0.0.1:${h.strata.ports.grpc}`,
          STRATA_CONTEXT_SOCKET: ctxSock,
          CONNECT_PORT: String(port),
          CHILD_TAG: childTag,
        }, container), 20000, 'traced-app');

        const ev = (l) => attrs(l.log.attributes)['event.name'];
        const isExec = (l) => ev(l) === 'process.exec' && attrs(l.log.attributes)['process.command_args']?.includes(childTag);
        const isConnect = (l) => ev(l) === 'network.connect' && str(attrs(l.resource.attributes)['process.pid']) === String(app.pid) &&
          str(attrs(l.log.attributes)['network.peer.port']) === String(port);
        await h.sink.waitFor((s) => s.logs().some(isExec) && s.logs().some(isConnect) &&
          s.spans().some((sp) => sp.spanId === app.spanId), 20000, 'the exec, the connect and the span at the sink');

        const exec = h.sink.logs().find(isExec);
        const conn = h.sink.logs().find(isConnect);
        for (const [what, l] of [['exec', exec], ['connect', conn]]) {
          assert.strictEqual(l.traceId, app.traceId, `${what}: trace_id`);
          assert.strictEqual(l.spanId, app.spanId, `${what}: span_id (the inner span "work", not "outer")`);
          const la = attrs(l.log.attributes);
          // the context channel told which thread: Node's main thread
          assert.strictEqual(la['strata.correlation.method'], 'exact_thread', `${what}: correlation method`);
          const ra = attrs(l.resource.attributes);
          assert.strictEqual(ra['container.id'], container.id, `${what}: container.id`);
          assert.strictEqual(ra['container.runtime.name'], 'containerd', `${what}: container.runtime.name`);
          assert.strictEqual(ra['k8s.pod.uid'], container.uid, `${what}: k8s.pod.uid`);
          // and the pod, from the Kubernetes API, by the container id the cgroup gave
          assert.strictEqual(ra['k8s.pod.name'], `traced-app-${tag}`, `${what}: k8s.pod.name`);
          assert.strictEqual(ra['k8s.namespace.name'], 'shop', `${what}: k8s.namespace.name`);
          assert.strictEqual(ra['strata.k8s.association'], 'container.id', `${what}: association`);
        }
        // the child: its own pid, its parent the app, joined through the thread that spawned it
        const ea = attrs(exec.log.attributes);
        assert.strictEqual(str(attrs(exec.resource.attributes)['process.pid']), String(app.childPid));
        assert.strictEqual(str(ea['process.parent_pid']), String(app.pid));
        assert.strictEqual(str(ea['strata.correlation.parent_pid']), String(app.pid));
        assert.strictEqual(str(attrs(conn.log.attributes)['thread.id']), String(app.pid));

        // the spans: attributed by the kernel, whatever the SDK claimed
        const span = h.sink.spans().find((sp) => sp.spanId === app.spanId);
        const ra = attrs(span.resource.attributes);
        assert.strictEqual(str(ra['process.pid']), String(app.pid), 'span: process.pid is the observed one');
        assert.strictEqual(str(ra['strata.claimed.process.pid']), '1', 'span: the claim is kept');
        assert.strictEqual(ra['strata.attribution.method'], transport === 'unix' ? 'unix_peercred' : 'kernel_connection');
        assert.strictEqual(ra['container.id'], container.id, 'span: container.id from the process table');
        assert.strictEqual(ra['k8s.pod.uid'], container.uid, 'span: k8s.pod.uid');
        assert.strictEqual(ra['k8s.pod.name'], `traced-app-${tag}`, 'span: k8s.pod.name');
        assert.match(ra['process.executable.path'] || '', /node/, 'span: the executable from the process table');

        // span_events: the span carries the kernel events joined to it
        const names = (span.span.events || []).map((e) => e.name);
        assert.ok(names.includes('process.exec'), `span events ${JSON.stringify(names)} lack process.exec`);
        assert.ok(names.includes('network.connect'), `span events ${JSON.stringify(names)} lack network.connect`);
        const ce = span.span.events.find((e) => e.name === 'network.connect');
        assert.strictEqual(str(attrs(ce.attributes)['network.peer.port']), String(port));
      } catch (e) {
        for (const l of h.sink.logs()) {
          const la = attrs(l.log.attributes);
          t.diagnostic(`log ${la['event.name']} pid=${attrs(l.resource.attributes)['process.pid']} trace=${l.traceId} span=${l.spanId} ` +
            `method=${la['strata.correlation.method']} args=${JSON.stringify(la['process.command_args'])} peer=${la['network.peer.port']}`);
        }
        for (const sp of h.sink.spans()) t.diagnostic(`span ${sp.span.name} ${sp.spanId} ${JSON.stringify(attrs(sp.resource.attributes), (k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
        for (const line of context(h).split('\n')) t.diagnostic(line);
        throw e;
      }
    });
  });
}
