'use strict';
// The k8s receiver and the k8sattributes processor against an HTTPS server that speaks the
// Kubernetes API as a real apiserver does (lib/kube-apiserver.js): a paged list, then a
// chunked watch with ADDED/MODIFIED/DELETED/BOOKMARK, 410 Gone (as an ERROR event and as an
// HTTP status) → relist, dropped connections, a rotated token, and bad objects. What the cache
// holds is seen through strata's metrics and through spans sent by the OpenTelemetry JS SDK,
// which must leave strata with their pod's attributes.

const { describe, test } = require('node:test');
const assert = require('node:assert');
const { setup, shutdownQuietly, context } = require('./lib/harness');
const sdk = require('./lib/sdk');
const { attrs } = require('./lib/otlp');
const { waitFor, withTimeout } = require('./lib/util');
const { KubeApiServer, pod } = require('./lib/kube-apiserver');

const TEST_TIMEOUT = 60000;
const CID = (n) => `${String(n).repeat(8)}${'a'.repeat(56)}`.slice(0, 64);

async function metric(h, name) {
  const text = await h.strata.metricsText();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').pop()) : NaN;
}

/** Sends one span claiming container.id = cid; resolves the resource attributes it left with. */
async function spanOf(h, tracing, cid, name) {
  tracing.provider.getTracer('k8s-test').startSpan(name, { attributes: { probe: name } }).end();
  await withTimeout(tracing.flush(), 10000, 'flush');
  await h.sink.waitFor((s) => s.spans().some((sp) => sp.span.name === name), 10000, `span ${name} at the sink`);
  return attrs(h.sink.spans().find((sp) => sp.span.name === name).resource.attributes);
}

describe('k8s receiver and k8sattributes', () => {
  test('list, watch, relist, token rotation and bad objects keep the pod cache right', { timeout: TEST_TIMEOUT }, async (t) => {
    const api = await new KubeApiServer().start();
    t.after(() => api.stop());
    api.add(pod({ name: 'web-1', uid: 'uid-web-1', containerId: CID(1), ip: '10.244.1.11', labels: { app: 'web' } }));
    api.add(pod({ name: 'web-2', uid: 'uid-web-2', containerId: CID(2), ip: '10.244.1.12', labels: { app: 'web' } }));
    api.add(pod({ name: 'agent-x', uid: 'uid-agent', containerId: CID(3), ip: '192.168.1.10', hostNetwork: true,
      owner: { kind: 'DaemonSet', name: 'agent' } }));
    api.add(pod({ name: 'other-1', uid: 'uid-other', containerId: CID(4), node: 'node-2' })); // not this node's
    api.put('namespaces', 'default', { team: 'shop', 'kubernetes.io/metadata.name': 'default' });
    api.put('nodes', 'node-1', { 'topology.kubernetes.io/zone': 'zone-a', 'kubernetes.io/os': 'linux' });
    api.put('nodes', 'node-2', { 'topology.kubernetes.io/zone': 'zone-b' });

    const h = await setup(t, {
      configure: (cfg) => {
        cfg.receivers.k8s = {
          api_server: api.url, ca_file: api.caFile, token_file: api.tokenFile, node: 'node-1', page_size: 2,
          watch_timeout: '30s', lifecycle_records: true,
          extract: { labels: ['app'], namespace_labels: ['team'], node_labels: ['topology.kubernetes.io/zone'] },
        };
        cfg.processors.k8sattributes = {};
        cfg.service.pipelines.traces.processors = ['k8sattributes', 'batch'];
        cfg.service.pipelines.logs.receivers = ['otlp', 'k8s'];
        return cfg;
      },
    });
    if (!h) return;
    const tracing = sdk.createTracing({ protocol: 'grpc', target: h.strata.endpoints, resourceAttributes: { 'container.id': CID(1) } });
    h.track(() => shutdownQuietly(tracing));
    const tracing4 = sdk.createTracing({ protocol: 'grpc', target: h.strata.endpoints, resourceAttributes: { 'container.id': CID(5) } });
    h.track(() => shutdownQuietly(tracing4));

    try {
      // the list, in pages of 2: this node's 3 pods
      await waitFor(async () => (await metric(h, 'strata_receiver_k8s_pods')) === 3, 10000, { message: '3 pods cached' });
      assert.ok(api.counts.listPages >= 2, 'the list was paged');
      let ra = await spanOf(h, tracing, CID(1), 'first');
      assert.strictEqual(ra['k8s.pod.name'], 'web-1');
      assert.strictEqual(ra['k8s.pod.uid'], 'uid-web-1');
      assert.strictEqual(ra['k8s.namespace.name'], 'default');
      assert.strictEqual(ra['k8s.node.name'], 'node-1');
      assert.strictEqual(ra['k8s.deployment.name'], 'web');
      assert.strictEqual(ra['k8s.container.name'], 'app');
      assert.strictEqual(ra['container.image.name'], 'registry.local/shop/web');
      assert.strictEqual(ra['container.image.tag'], '1.0');
      assert.strictEqual(ra['k8s.pod.label.app'], 'web');
      assert.strictEqual(ra['k8s.pod.start_time'], '2026-11-30T10:00:01Z');
      assert.strictEqual(ra['strata.k8s.association'], 'container.id');
      // labels of its namespace and node (a Namespace watch, and a Node watch of this node only)
      assert.strictEqual(ra['k8s.namespace.label.team'], 'shop');
      assert.strictEqual(ra['k8s.node.label.topology.kubernetes.io/zone'], 'zone-a');
      assert.strictEqual(ra['k8s.namespace.label.kubernetes.io/metadata.name'], undefined, 'only the labels asked for');
      api.put('namespaces', 'default', { team: 'checkout' });
      await waitFor(async () => (await spanOf(h, tracing, CID(1), `ns-${Date.now()}`))['k8s.namespace.label.team'] === 'checkout',
        10000, { message: 'the namespace label change applied' });

      // watch: a new pod, a changed one, a deleted one, a bookmark
      api.add(pod({ name: 'web-3', uid: 'uid-web-3', containerId: CID(5), ip: '10.244.1.13', labels: { app: 'web' } }));
      api.modify(pod({ name: 'web-1', uid: 'uid-web-1', containerId: CID(1), ip: '10.244.1.11', labels: { app: 'web-v2' } }));
      api.remove('uid-web-2');
      api.bookmark();
      await waitFor(async () => (await metric(h, 'strata_receiver_k8s_watch_events_total')) >= 3, 10000, { message: 'events applied' });
      assert.strictEqual(await metric(h, 'strata_receiver_k8s_pods'), 3);
      ra = await spanOf(h, tracing4, CID(5), 'added');
      assert.strictEqual(ra['k8s.pod.name'], 'web-3');
      ra = await spanOf(h, tracing, CID(1), 'modified');
      assert.strictEqual(ra['k8s.pod.label.app'], 'web-v2');

      // lifecycle records: created, deleted, and a container killed for memory
      api.modify(pod({ name: 'web-1', uid: 'uid-web-1', containerId: CID(1), ip: '10.244.1.11', labels: { app: 'web-v2' },
        restarts: 1, lastReason: 'OOMKilled' }));
      const life = (ev, podName) => (s) => s.logs().some((l) => attrs(l.log.attributes)['event.name'] === ev &&
        attrs(l.resource.attributes)['k8s.pod.name'] === podName);
      await h.sink.waitFor(life('k8s.pod.created', 'web-3'), 10000, 'k8s.pod.created of web-3');
      await h.sink.waitFor(life('k8s.pod.deleted', 'web-2'), 10000, 'k8s.pod.deleted of web-2');
      await h.sink.waitFor(life('k8s.container.oom_killed', 'web-1'), 10000, 'k8s.container.oom_killed of web-1');
      const oom = h.sink.logs().find((l) => attrs(l.log.attributes)['event.name'] === 'k8s.container.oom_killed');
      const oa = attrs(oom.log.attributes);
      assert.strictEqual(oa['k8s.container.name'], 'app');
      assert.strictEqual(String(oa['k8s.container.restart_count']), '1');
      assert.strictEqual(attrs(oom.resource.attributes)['k8s.namespace.name'], 'default');
      assert.ok(!life('k8s.pod.created', 'web-1')(h.sink), 'listed pods are not "created"');

      // bad objects: refused, counted, the cache untouched
      api.sendRaw('{"type":"MODIFIED","object":{"kind":"Pod","metadata":{"uid":42,"name":"x","namespace":"d"}}}');
      await waitFor(async () => (await metric(h, 'strata_receiver_k8s_bad_pods_total')) >= 1, 10000, { message: 'a bad pod counted' });
      ra = await spanOf(h, tracing, CID(1), 'after-bad');
      assert.strictEqual(ra['k8s.pod.name'], 'web-1');
      // a line that is not JSON: the stream is abandoned (said so) and watched again
      const watches = api.counts.watches;
      api.sendRaw('{"type":"MODIFIED","object":{"kind":"Pod","metadata":');
      api.sendRaw('not json at all');
      await waitFor(() => /watch of pods failed: a watch event that is not \{type, object\}/.test(h.strata.stderr), 10000, { message: 'the bad line told' });
      await waitFor(() => api.counts.watches > watches, 10000, { message: 'watched again' });
      ra = await spanOf(h, tracing, CID(1), 'after-bad-json');
      assert.strictEqual(ra['k8s.pod.name'], 'web-1');

      // the connection drops and the history is gone meanwhile (with a pod deleted unheard):
      // the watch gets 410 (an ERROR event), strata relists, and the cache matches the server
      const lists = api.counts.lists;
      api.silentRemove('uid-web-3');
      api.compact(); // strata's resourceVersion is now older than the server remembers
      api.dropWatches();
      await waitFor(() => api.counts.lists > lists, 15000, { message: 'a relist after 410' });
      await waitFor(async () => (await metric(h, 'strata_receiver_k8s_pods')) === 2, 10000, { message: '2 pods after the relist' });
      ra = await spanOf(h, tracing4, CID(5), 'after-relist');
      assert.strictEqual(ra['k8s.pod.name'], undefined, 'the pod deleted while away is gone');

      // 410 as an HTTP status, and a rotated token (re-read from its file)
      api.goneAsHttp = true;
      api.rotateToken('token-2');
      const lists2 = api.counts.lists;
      api.rv += 1; // changes strata did not hear of
      api.compact();
      api.dropWatches();
      await waitFor(() => api.counts.lists > lists2, 15000, { message: 'a relist after HTTP 410' });
      api.add(pod({ name: 'web-4', uid: 'uid-web-4', containerId: CID(6), ip: '10.244.1.14' }));
      await waitFor(async () => (await metric(h, 'strata_receiver_k8s_pods')) === 3, 10000, { message: 'the pod added after rotation' });
      assert.strictEqual(api.counts.unauthorized, 0, 'the new token was used');
      assert.ok(await metric(h, 'strata_receiver_k8s_pod_cache_bytes') > 0);
    } catch (e) {
      for (const line of context(h).split('\n')) t.diagnostic(line);
      throw e;
    }
  });

  test('a kubeconfig (development): server, CA data and token of its current context; HTTP/2 when offered', { timeout: TEST_TIMEOUT }, async (t) => {
    const api = await new KubeApiServer({ http2: true }).start();
    t.after(() => api.stop());
    api.add(pod({ name: 'web-1', uid: 'uid-web-1', containerId: CID(1), ip: '10.244.1.11' }));
    const kubeconfig = require('node:path').join(api.dir, 'kubeconfig');
    const ca = require('node:fs').readFileSync(api.caFile).toString('base64');
    require('node:fs').writeFileSync(kubeconfig, [
      'apiVersion: v1', 'kind: Config', 'current-context: test',
      'clusters:', '- name: fake', '  cluster:', `    server: ${api.url}`, `    certificate-authority-data: ${ca}`,
      'contexts:', '- name: test', '  context:', '    cluster: fake', '    user: dev',
      'users:', '- name: dev', '  user:', `    token: ${api.token}`, '',
    ].join('\n'));
    const h = await setup(t, {
      configure: (cfg) => {
        cfg.receivers.k8s = { kubeconfig, node: '*' };
        cfg.service.pipelines.logs.receivers = ['otlp', 'k8s'];
        return cfg;
      },
    });
    if (!h) return;
    await waitFor(async () => (await metric(h, 'strata_receiver_k8s_pods')) === 1, 10000, { message: 'the pod listed through the kubeconfig' });
    assert.strictEqual(api.counts.unauthorized, 0);
    assert.ok(api.counts.http2 >= 1, 'the list went over HTTP/2');
    // the watch works over an HTTP/2 stream too
    api.add(pod({ name: 'web-2', uid: 'uid-web-2', containerId: CID(2), ip: '10.244.1.12' }));
    await waitFor(async () => (await metric(h, 'strata_receiver_k8s_pods')) === 2, 10000, { message: 'a pod added through the HTTP/2 watch' });
  });

  test('an API that refuses the token or is down: clear errors, strata keeps running', { timeout: TEST_TIMEOUT }, async (t) => {
    const api = await new KubeApiServer().start();
    t.after(() => api.stop());
    api.token = 'not-what-the-file-says';
    const h = await setup(t, {
      configure: (cfg) => {
        cfg.receivers.k8s = { api_server: api.url, ca_file: api.caFile, token_file: api.tokenFile, node: 'node-1' };
        cfg.service.pipelines.logs.receivers = ['otlp', 'k8s'];
        return cfg;
      },
    });
    if (!h) return;
    await waitFor(() => /cannot list pods from https:\/\/127\.0\.0\.1:\d+: HTTP 401: Unauthorized; retrying/.test(h.strata.stderr), 10000,
      { message: 'the 401 told' });
    assert.ok(await metric(h, 'strata_receiver_k8s_errors_total') >= 1);
    // a CA that did not sign the server's certificate: a TLS error, said so
    const r = await h.strata.healthz();
    assert.strictEqual(r.status, 200);
  });
});
