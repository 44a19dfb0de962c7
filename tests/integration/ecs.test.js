'use strict';
// ECS: the ecs receiver and the resourcedetection processor against a local task metadata
// endpoint v4 serving the documents AWS documents, for the Fargate and the EC2 launch types
// (the container's own document, /task, /task/stats in Docker's format). Spans sent by the
// OpenTelemetry JS SDK must leave with the task's and the application container's identity;
// the stats must become the exact per-container metrics.

const { describe, test } = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const { setup, shutdownQuietly, context } = require('./lib/harness');
const sdk = require('./lib/sdk');
const { attrs } = require('./lib/otlp');
const { withTimeout, waitFor, freePorts } = require('./lib/util');
const { spawn } = require('node:child_process');
const { STRATA_BIN } = require('./lib/strata');

const APP = '1b5bdb6fa4f5465ab7e1d3e7f48c9a6e-1234567890';
const STRATA = '1b5bdb6fa4f5465ab7e1d3e7f48c9a6e-0987654321';

function task(launchType) {
  const fargate = launchType === 'FARGATE';
  return {
    Cluster: fargate ? 'arn:aws:ecs:eu-west-1:111122223333:cluster/shop' : 'shop',
    TaskARN: 'arn:aws:ecs:eu-west-1:111122223333:task/shop/1b5bdb6fa4f5465ab7e1d3e7f48c9a6e',
    Family: 'checkout', Revision: '7', DesiredStatus: 'RUNNING', KnownStatus: 'RUNNING',
    Limits: { CPU: 0.5, Memory: 1024 }, PullStartedAt: '2026-11-30T10:00:00.1Z', PullStoppedAt: '2026-11-30T10:00:05.2Z',
    AvailabilityZone: 'eu-west-1b', LaunchType: launchType,
    Containers: [
      ...(fargate ? [] : [{ DockerId: 'abc0pause', Name: '~internal~ecs~pause', DockerName: 'ecs-pause', Image: 'amazon/amazon-ecs-pause:0.1.0', Type: 'CNI_PAUSE' }]),
      { DockerId: APP, Name: 'checkout-app', DockerName: 'checkout-app', Image: '111122223333.dkr.ecr.eu-west-1.amazonaws.com/checkout:2.3.1',
        ImageID: 'sha256:aaa', Labels: { 'com.amazonaws.ecs.container-name': 'checkout-app' }, DesiredStatus: 'RUNNING', KnownStatus: 'RUNNING',
        Limits: { CPU: 256, Memory: 512 }, Type: 'NORMAL', Networks: [{ NetworkMode: 'awsvpc', IPv4Addresses: ['10.0.1.17'] }] },
      { DockerId: STRATA, Name: 'strata', DockerName: 'strata', Image: 'ghcr.io/strata-dev/strata:0.1.0', Type: 'NORMAL',
        DesiredStatus: 'RUNNING', KnownStatus: 'RUNNING' },
    ],
  };
}

function stats(id, base) {
  return {
    read: '2026-11-30T10:10:00.000Z', preread: '2026-11-30T10:09:50.000Z', id, name: id,
    cpu_stats: { cpu_usage: { total_usage: base * 2e9 }, system_cpu_usage: 200e9, online_cpus: 2 },
    precpu_stats: { cpu_usage: { total_usage: base * 2e9 - 5e8 }, system_cpu_usage: 190e9, online_cpus: 2 },
    memory_stats: { usage: base * 1048576, limit: 536870912, stats: { cache: 0 } },
    networks: { eth1: { rx_bytes: base * 1000, tx_bytes: base * 2000, rx_packets: 1, tx_packets: 1 } },
    blkio_stats: { io_service_bytes_recursive: [{ major: 259, minor: 0, op: 'Read', value: base * 10 }, { major: 259, minor: 0, op: 'Write', value: base * 20 }, { major: 259, minor: 0, op: 'Total', value: base * 30 }] },
  };
}

async function metadataServer(launchType) {
  const srv = http.createServer((req, res) => {
    const send = (o) => { res.writeHead(200, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(o)); };
    if (req.url === '/v4/strata') return send(task(launchType).Containers.find((c) => c.Name === 'strata'));
    if (req.url === '/v4/strata/task') return send(task(launchType));
    if (req.url === '/v4/strata/task/stats') return send({ [APP]: stats(APP, 3), [STRATA]: stats(STRATA, 1), abc0pause: null });
    res.writeHead(404);
    res.end();
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { srv, uri: `http://127.0.0.1:${srv.address().port}/v4/strata` };
}

for (const launchType of ['FARGATE', 'EC2']) {
  describe(`ECS, ${launchType} launch type`, () => {
    test('task and container identity on every record; per-container metrics from /task/stats', { timeout: 60000 }, async (t) => {
      const md = await metadataServer(launchType);
      t.after(() => new Promise((r) => md.srv.close(r)));
      const h = await setup(t, {
        configure: (cfg) => {
          cfg.receivers.ecs = { interval: '1s' };
          cfg.processors.resourcedetection = { detectors: ['ecs'] };
          cfg.service.pipelines.traces.processors = ['resourcedetection', 'batch'];
          cfg.service.pipelines.metrics.receivers = ['otlp', 'ecs'];
          return cfg;
        },
        env: { ECS_CONTAINER_METADATA_URI_V4: md.uri },
      });
      if (!h) return;
      const tracing = sdk.createTracing({ protocol: 'grpc', target: h.strata.endpoints });
      h.track(() => shutdownQuietly(tracing));
      try {
        tracing.provider.getTracer('ecs').startSpan('checkout').end();
        await withTimeout(tracing.flush(), 10000, 'flush');
        await h.sink.waitFor((s) => s.spans().length >= 1, 10000, 'the span');
        const ra = attrs(h.sink.spans()[0].resource.attributes);
        assert.strictEqual(ra['cloud.provider'], 'aws');
        assert.strictEqual(ra['cloud.platform'], 'aws_ecs');
        assert.strictEqual(ra['cloud.region'], 'eu-west-1');
        assert.strictEqual(ra['cloud.availability_zone'], 'eu-west-1b');
        assert.strictEqual(ra['cloud.account.id'], '111122223333');
        assert.strictEqual(ra['aws.ecs.cluster.arn'], 'arn:aws:ecs:eu-west-1:111122223333:cluster/shop'); // EC2: built from the short name
        assert.strictEqual(ra['aws.ecs.task.arn'], 'arn:aws:ecs:eu-west-1:111122223333:task/shop/1b5bdb6fa4f5465ab7e1d3e7f48c9a6e');
        assert.strictEqual(ra['aws.ecs.task.family'], 'checkout');
        assert.strictEqual(ra['aws.ecs.task.revision'], '7');
        assert.strictEqual(ra['aws.ecs.launchtype'], launchType.toLowerCase());
        // the application's container: not strata's own, not the pause container
        assert.strictEqual(ra['container.id'], APP);
        assert.strictEqual(ra['container.name'], 'checkout-app');
        assert.strictEqual(ra['container.image.name'], '111122223333.dkr.ecr.eu-west-1.amazonaws.com/checkout:2.3.1');

        await h.sink.waitFor((s) => s.metrics().some((m) => m.name === 'container.cpu.utilization'), 10000, 'task metrics');
        const ms = h.sink.metrics().filter((m) => attrs(m.resource.attributes)['container.name'] === 'checkout-app');
        const val = (name, pred = () => true) => {
          const pts = ms.filter((x) => x.name === name)
            .flatMap((x) => (x.metric.gauge || x.metric.sum).dataPoints)
            .filter((p) => pred(attrs(p.attributes)));
          assert.ok(pts.length, `metric ${name}`);
          return pts[0].asDouble;
        };
        assert.strictEqual(val('container.cpu.utilization'), 0.1); // 0.5e9 / 10e9 * 2 CPUs
        assert.strictEqual(val('container.cpu.time'), 6);
        assert.strictEqual(val('container.memory.usage'), 3 * 1048576);
        assert.strictEqual(val('container.memory.limit'), 536870912);
        assert.strictEqual(val('container.network.io', (a) => a['network.io.direction'] === 'receive'), 3000);
        assert.strictEqual(val('container.network.io', (a) => a['network.io.direction'] === 'transmit'), 6000);
        assert.strictEqual(val('container.disk.io', (a) => a['disk.io.direction'] === 'read'), 30);
        assert.strictEqual(val('container.disk.io', (a) => a['disk.io.direction'] === 'write'), 60);
        const mr = attrs(ms[0].resource.attributes);
        assert.strictEqual(mr['aws.ecs.task.family'], 'checkout');
        assert.ok(!h.sink.metrics().some((m) => attrs(m.resource.attributes)['container.name'] === '~internal~ecs~pause'), 'no pause container');
      } catch (e) {
        for (const line of context(h).split('\n')) t.diagnostic(line);
        throw e;
      }
    });
  });
}

test('in an ECS task, strata run without --config starts in ECS mode on its own', { timeout: 60000 }, async (t) => {
  const md = await metadataServer('FARGATE');
  t.after(() => new Promise((r) => md.srv.close(r)));
  const [grpc, httpPort, tel] = await freePorts(3);
  const p = spawn(STRATA_BIN, ['run'], {
    env: { ...process.env, ECS_CONTAINER_METADATA_URI_V4: md.uri, STRATA_OTLP_GRPC_ENDPOINT: `127.0.0.1:${grpc}`,
      STRATA_OTLP_HTTP_ENDPOINT: `127.0.0.1:${httpPort}`, STRATA_METRICS_ADDRESS: `127.0.0.1:${tel}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  p.stderr.on('data', (c) => { err += c; });
  t.after(() => p.kill('SIGKILL'));
  await waitFor(() => /starting with the embedded ECS default config/.test(err) && /detector ecs: task arn:aws:ecs:eu-west-1:111122223333:task/.test(err)
    && /\[receiver\/ecs\] task stats every 30s/.test(err), 15000, { message: `ECS mode in the log:\n${err}` });
  // the kernel receiver is on in that mode: it runs, or says why it cannot (Fargate)
  await waitFor(() => /\[receiver\/ebpf\] (kernel hooks:|kernel collection is off:)/.test(err), 15000, { message: 'the kernel receiver reports' });
});
