'use strict';
// The cloudwatch receiver against a local CloudWatch endpoint (lib/cloudwatch-server.js) that
// checks every signature with the AWS SDK's own SigV4 signer: configured metrics and metrics
// found with ListMetrics (two pages), GetMetricData pages (NextToken, PartialData), one
// throttled call retried, one answer that is not JSON, windows that overlap without a
// datapoint emitted twice, a datapoint that arrives late, and the account from STS.

const { test } = require('node:test');
const assert = require('node:assert');
const { setup, context } = require('./lib/harness');
const { attrs } = require('./lib/otlp');
const { waitFor } = require('./lib/util');
const { CloudWatchServer, PERIOD } = require('./lib/cloudwatch-server');

const CREDS = { accessKeyId: 'AKIDSTRATATEST', secretAccessKey: 'strata/test+secret', sessionToken: 'session-token-value' };

function points(sink) {
  const out = [];
  for (const m of sink.metrics()) {
    for (const p of m.metric.gauge?.dataPoints || []) {
      out.push({ name: m.name, resource: attrs(m.resource.attributes), attrs: attrs(p.attributes), t: Number(BigInt(p.timeUnixNano) / 1000000000n), v: p.asDouble });
    }
  }
  return out;
}

async function metric(h, name) {
  const text = await h.strata.metricsText();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').pop()) : NaN;
}

test('cloudwatch: signed calls, pages, throttling, discovery, no duplicates', { timeout: 90000 }, async (t) => {
  const cw = await new CloudWatchServer(CREDS).start();
  t.after(() => cw.stop());
  cw.throttleNext = 1;
  const h = await setup(t, {
    configure: (cfg) => {
      cfg.receivers.cloudwatch = {
        region: 'eu-west-1', interval: '1s', delay: '0s', lookback: '5m',
        metrics: [
          { namespace: 'AWS/EC2', metric_name: 'CPUUtilization', dimensions: { InstanceId: 'i-0abc' }, statistics: ['Average', 'Maximum'], period: '60s' },
          { namespace: 'AWS/RDS', metric_name: 'FreeableMemory', dimensions: { DBInstanceIdentifier: 'db-1' }, period: '60s' },
        ],
        discovery: { namespaces: ['AWS/Lambda'], metric_names: ['Invocations'], statistics: ['Sum'], refresh: '1h' },
      };
      cfg.service.pipelines.metrics.receivers = ['otlp', 'cloudwatch'];
      return cfg;
    },
    env: {
      AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey, AWS_SESSION_TOKEN: CREDS.sessionToken,
      AWS_ENDPOINT_URL: cw.url, AWS_EC2_METADATA_DISABLED: 'true',
    },
  });
  if (!h) return;
  try {
    // 3 configured series + 3 discovered, 2 datapoints each
    await h.sink.waitFor((s) => points(s).length >= 12, 20000, '12 datapoints at the sink');
    assert.ok(cw.counts.throttled >= 1, 'a throttled call');
    await waitFor(async () => (await metric(h, 'strata_receiver_cloudwatch_polls_total')) >= 3, 15000, { message: 'three polls' });
    assert.strictEqual(cw.counts.badSignatures, 0, `signatures rejected by the SDK's signer: ${JSON.stringify(cw.signatureErrors[0])}`);
    assert.ok(cw.counts.sts >= 1, 'the account asked of STS');
    assert.ok(cw.counts.listMetrics >= 2, 'ListMetrics pages followed');

    const got = points(h.sink);
    assert.strictEqual(got.length, 12, `each datapoint once across overlapping polls (got ${got.length})`);
    const cpu = got.filter((p) => p.name === 'amazonaws.com/AWS/EC2/CPUUtilization' && p.attrs['aws.cloudwatch.statistic'] === 'Average');
    assert.deepStrictEqual(cpu.map((p) => p.t).sort(), [...cw.timestamps].sort());
    for (const p of cpu) {
      assert.strictEqual(p.attrs.InstanceId, 'i-0abc');
      assert.strictEqual(p.v, cw.value('CPUUtilization', { InstanceId: 'i-0abc' }, 'Average', p.t));
      assert.strictEqual(p.resource['cloud.provider'], 'aws');
      assert.strictEqual(p.resource['cloud.region'], 'eu-west-1');
      assert.strictEqual(p.resource['cloud.account.id'], '123456789012');
    }
    const lambda = got.filter((p) => p.name === 'amazonaws.com/AWS/Lambda/Invocations');
    assert.deepStrictEqual([...new Set(lambda.map((p) => p.attrs.FunctionName))].sort(), ['emails', 'orders', 'payments']);
    assert.ok(lambda.every((p) => p.attrs['aws.cloudwatch.statistic'] === 'Sum'));

    // a datapoint that settles late (older than those sent) is emitted once when it comes
    cw.timestamps.unshift(cw.base - 3 * PERIOD);
    await h.sink.waitFor((s) => points(s).length >= 18, 15000, 'the late datapoints');
    const polls = await metric(h, 'strata_receiver_cloudwatch_polls_total');
    await waitFor(async () => (await metric(h, 'strata_receiver_cloudwatch_polls_total')) >= polls + 2, 15000, { message: 'two more polls' });
    assert.strictEqual(points(h.sink).length, 18, 'still once each');

    // an answer that is not JSON: said, counted, and the next poll goes on
    cw.invalidNext = 1;
    await waitFor(() => /GetMetricData: the response is not a JSON object; the next poll tries again/.test(h.strata.stderr), 15000,
      { message: 'the bad answer told' });
    assert.ok(await metric(h, 'strata_receiver_cloudwatch_errors_total') >= 1);
    assert.ok(!h.strata.stderr.includes(CREDS.secretAccessKey) && !h.strata.stderr.includes(CREDS.sessionToken), 'no secret in the log');
  } catch (e) {
    for (const line of context(h).split('\n')) t.diagnostic(line);
    throw e;
  }
});
