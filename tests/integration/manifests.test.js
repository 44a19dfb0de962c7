'use strict';
// deploy/kubernetes/, checked offline (no cluster, no kubectl): every document is a well-formed
// object of its kind; workloads select their own pods, mount only volumes they define, name
// the ports their probes and Services use, and bound their memory; the DaemonSet gets the host
// access eBPF needs and no more; RBAC grants only what strata uses (pods: get, list, watch),
// and binds what exists; every strata config in a ConfigMap passes `strata validate`.

const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const YAML = require('yaml');
const { runStrata, requireStrata } = require('./lib/strata');

const DIR = path.join(__dirname, '..', '..', 'deploy', 'kubernetes');

function load() {
  const docs = [];
  for (const f of fs.readdirSync(DIR).filter((n) => n.endsWith('.yaml')).sort()) {
    for (const d of YAML.parseAllDocuments(fs.readFileSync(path.join(DIR, f), 'utf8'))) {
      assert.deepStrictEqual(d.errors, [], `${f}: YAML errors`);
      const obj = d.toJS();
      if (obj) docs.push({ file: f, obj });
    }
  }
  return docs;
}

const NAMESPACED = new Set(['ServiceAccount', 'ConfigMap', 'DaemonSet', 'Deployment', 'Service', 'Role', 'RoleBinding']);
const API = {
  Namespace: 'v1', ServiceAccount: 'v1', ConfigMap: 'v1', Service: 'v1',
  DaemonSet: 'apps/v1', Deployment: 'apps/v1',
  ClusterRole: 'rbac.authorization.k8s.io/v1', ClusterRoleBinding: 'rbac.authorization.k8s.io/v1',
  Role: 'rbac.authorization.k8s.io/v1', RoleBinding: 'rbac.authorization.k8s.io/v1',
};
const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function checkPodTemplate(where, spec) {
  const pod = spec.template.spec;
  assert.ok(spec.selector?.matchLabels, `${where}: spec.selector.matchLabels`);
  for (const [k, v] of Object.entries(spec.selector.matchLabels)) {
    assert.strictEqual(spec.template.metadata.labels[k], v, `${where}: the selector matches its own pods (${k})`);
  }
  const volumes = new Set((pod.volumes || []).map((v) => v.name));
  for (const c of pod.containers) {
    const w = `${where} container ${c.name}`;
    assert.match(c.name, DNS1123, `${w}: name`);
    assert.ok(c.image && /:[\w.-]+$/.test(c.image), `${w}: an image with a tag`);
    assert.ok(c.resources?.limits?.memory, `${w}: a memory limit`);
    assert.ok(c.resources?.requests?.memory, `${w}: a memory request`);
    for (const m of c.volumeMounts || []) assert.ok(volumes.has(m.name), `${w}: mounts volume ${m.name}, which is defined`);
    const ports = new Set((c.ports || []).map((p) => p.name));
    for (const p of c.ports || []) assert.ok(p.name.length <= 15 && DNS1123.test(p.name), `${w}: port name ${p.name}`);
    for (const probe of [c.readinessProbe, c.livenessProbe].filter(Boolean)) {
      const port = probe.httpGet?.port;
      if (typeof port === 'string') assert.ok(ports.has(port), `${w}: probe port ${port} is named`);
    }
    for (const e of c.env || []) {
      const f = e.valueFrom?.fieldRef?.fieldPath;
      if (f) assert.ok(['spec.nodeName', 'metadata.namespace', 'metadata.name', 'metadata.uid', 'status.podIP'].includes(f), `${w}: env ${e.name} fieldRef ${f}`);
    }
  }
  return pod;
}

test('deploy/kubernetes manifests are valid and least-privilege', async (t) => {
  if (!requireStrata(t)) return;
  const docs = load();
  const byKind = (k) => docs.filter((d) => d.obj.kind === k).map((d) => d.obj);
  const names = new Set(docs.map((d) => `${d.obj.kind}/${d.obj.metadata?.namespace || ''}/${d.obj.metadata?.name}`));

  for (const { file, obj } of docs) {
    const w = `${file}: ${obj.kind}/${obj.metadata?.name}`;
    assert.strictEqual(obj.apiVersion, API[obj.kind], `${w}: apiVersion of a known kind`);
    assert.match(obj.metadata.name, DNS1123, `${w}: metadata.name`);
    if (NAMESPACED.has(obj.kind)) assert.ok(obj.metadata.namespace, `${w}: a namespace`);
    else assert.strictEqual(obj.metadata.namespace, undefined, `${w}: cluster-scoped, no namespace`);
  }

  // the node agent: host pid namespace, capabilities instead of privileged, read-only host paths
  const [ds] = byKind('DaemonSet');
  assert.ok(ds, 'a DaemonSet');
  const pod = checkPodTemplate('DaemonSet strata', ds.spec);
  assert.strictEqual(pod.hostPID, true, 'hostPID: pids as the kernel reports them');
  const c = pod.containers[0];
  assert.notStrictEqual(c.securityContext.privileged, true, 'not privileged');
  assert.deepStrictEqual(c.securityContext.capabilities.drop, ['ALL']);
  for (const cap of c.securityContext.capabilities.add) {
    assert.ok(['BPF', 'PERFMON', 'SYS_RESOURCE', 'DAC_READ_SEARCH', 'SYS_PTRACE'].includes(cap), `capability ${cap} is needed`);
  }
  const mount = (p) => c.volumeMounts.find((m) => m.mountPath === p);
  assert.strictEqual(mount('/sys/kernel/btf')?.readOnly, true, 'BTF read-only');
  assert.strictEqual(mount('/sys/fs/cgroup')?.readOnly, true, 'cgroupfs read-only');
  assert.ok((c.env || []).some((e) => e.name === 'NODE_NAME' && e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName'), 'NODE_NAME from the downward API');
  assert.strictEqual(pod.serviceAccountName, 'strata');
  assert.ok(names.has('ServiceAccount/strata/strata'), 'its ServiceAccount exists');

  for (const d of byKind('Deployment')) checkPodTemplate(`Deployment ${d.metadata.name}`, d.spec);

  // RBAC: pods get/list/watch, nothing else; bindings bind what exists
  for (const r of [...byKind('ClusterRole'), ...byKind('Role')]) {
    for (const rule of r.rules) {
      assert.deepStrictEqual(rule.apiGroups, [''], `${r.kind} ${r.metadata.name}: core API only`);
      assert.deepStrictEqual(rule.resources, ['pods'], `${r.kind} ${r.metadata.name}: pods only`);
      assert.deepStrictEqual([...rule.verbs].sort(), ['get', 'list', 'watch'], `${r.kind} ${r.metadata.name}: read only`);
    }
  }
  for (const b of [...byKind('ClusterRoleBinding'), ...byKind('RoleBinding')]) {
    const ns = b.roleRef.kind === 'Role' ? b.metadata.namespace : '';
    assert.ok(names.has(`${b.roleRef.kind}/${ns}/${b.roleRef.name}`), `${b.kind} ${b.metadata.name}: its role exists`);
    for (const s of b.subjects) assert.ok(names.has(`ServiceAccount/${s.namespace}/${s.name}`), `${b.kind} ${b.metadata.name}: subject ${s.name} exists`);
  }

  // the gateway Service selects the agent and names its ports
  for (const s of byKind('Service')) {
    for (const [k, v] of Object.entries(s.spec.selector)) assert.strictEqual(ds.spec.template.metadata.labels[k], v, `Service ${s.metadata.name}: selects the DaemonSet`);
    const ports = new Set(c.ports.map((p) => p.name));
    for (const p of s.spec.ports) assert.ok(ports.has(p.targetPort), `Service ${s.metadata.name}: targetPort ${p.targetPort} exists`);
  }

  // every strata config validates
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-manifests-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  let configs = 0;
  for (const cm of byKind('ConfigMap')) {
    for (const [key, text] of Object.entries(cm.data || {})) {
      if (!key.endsWith('.yaml')) continue;
      const f = path.join(tmp, `${cm.metadata.name}-${key}`);
      fs.writeFileSync(f, text);
      const r = await runStrata(['validate', '--config', f], { env: { POD_NAMESPACE: 'default' } });
      assert.strictEqual(r.code, 0, `ConfigMap ${cm.metadata.name} ${key}: strata validate says\n${r.stdout}${r.stderr}`);
      configs++;
    }
  }
  assert.ok(configs >= 2, 'the DaemonSet and sidecar configs were checked');
});

test('deploy/ecs: a Fargate task with strata as a non-essential sidecar, and the least IAM policy', () => {
  const dir = path.join(__dirname, '..', '..', 'deploy', 'ecs');
  const td = JSON.parse(fs.readFileSync(path.join(dir, 'task-definition.json'), 'utf8'));
  assert.ok(td.family && td.requiresCompatibilities.includes('FARGATE'));
  assert.strictEqual(td.networkMode, 'awsvpc', 'awsvpc: containers share localhost');
  const strata = td.containerDefinitions.find((c) => c.name === 'strata');
  const app = td.containerDefinitions.find((c) => c.name !== 'strata');
  assert.ok(strata && app);
  assert.strictEqual(strata.essential, false, 'strata does not take the task down');
  assert.strictEqual(app.essential, true);
  assert.ok(strata.memory >= strata.memoryReservation, 'a memory limit');
  const env = Object.fromEntries(app.environment.map((e) => [e.name, e.value]));
  assert.match(env.OTEL_EXPORTER_OTLP_ENDPOINT, /^http:\/\/(localhost|127\.0\.0\.1):4317$/, 'the app sends to strata on localhost');
  const senv = Object.fromEntries(strata.environment.map((e) => [e.name, e.value]));
  assert.strictEqual(senv.STRATA_OTLP_GRPC_ENDPOINT.split(':')[1], '4317');
  assert.ok(app.dependsOn.some((d) => d.containerName === 'strata'));
  for (const c of td.containerDefinitions) assert.match(c.image, /:[\w.-]+$/, `${c.name}: a tagged image`);
  const policy = JSON.parse(fs.readFileSync(path.join(dir, 'iam-policy.json'), 'utf8'));
  const actions = policy.Statement.flatMap((st) => st.Action).sort();
  assert.deepStrictEqual(actions, ['cloudwatch:GetMetricData', 'cloudwatch:ListMetrics'], 'only what the cloudwatch receiver calls');
  assert.ok(policy.Statement.every((st) => st.Effect === 'Allow'));
});
