'use strict';
// A CloudWatch endpoint for tests: GetMetricData and ListMetrics over the AWS JSON 1.0
// protocol (X-Amz-Target: GraniteServiceVersion20100801.*) and STS GetCallerIdentity (query
// protocol), as AWS answers them — NextToken pages, PartialData, throttling on demand. Every
// request's SigV4 signature is checked by signing it again with an independent implementation
// (the AWS SDK's own signer, @smithy/signature-v4); a mismatch is answered 403 and counted.

const http = require('node:http');
const { SignatureV4 } = require('@smithy/signature-v4');
const { Sha256 } = require('@aws-crypto/sha256-js');

const PERIOD = 60;

class CloudWatchServer {
  /** @param {{accessKeyId, secretAccessKey, sessionToken?}} credentials  what strata must sign with */
  constructor(credentials) {
    this.credentials = credentials;
    this.counts = { getMetricData: 0, listMetrics: 0, sts: 0, badSignatures: 0, throttled: 0 };
    this.throttleNext = 0;      // GetMetricData calls to answer ThrottlingException
    this.invalidNext = 0;       // GetMetricData calls to answer with a body that is not JSON
    const now = Math.floor(Date.now() / 1000);
    this.base = Math.floor(now / PERIOD) * PERIOD;
    this.timestamps = [this.base - 2 * PERIOD, this.base - PERIOD]; // what every poll returns
    this.lambda = ['orders', 'payments', 'emails'];
    this.signatureErrors = [];
  }

  async start() {
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => this.handle(req, res, Buffer.concat(chunks).toString()).catch((e) => {
        res.writeHead(500);
        res.end(String(e.stack || e));
      }));
    });
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = this.server.address().port;
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  stop() { return new Promise((r) => this.server.close(r)); }

  /** Signs the request again with the SDK's signer; true when the signatures are the same. */
  async verify(req, body) {
    const auth = req.headers.authorization || '';
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m || m[1] !== this.credentials.accessKeyId) return false;
    const [, , , region, service, signed] = m;
    const headers = {};
    for (const h of signed.split(';')) headers[h] = req.headers[h];
    const d = req.headers['x-amz-date'];
    const date = new Date(Date.UTC(+d.slice(0, 4), +d.slice(4, 6) - 1, +d.slice(6, 8), +d.slice(9, 11), +d.slice(11, 13), +d.slice(13, 15)));
    const signer = new SignatureV4({ credentials: this.credentials, region, service, sha256: Sha256, applyChecksum: false });
    const out = await signer.sign({
      method: req.method, protocol: 'http:', hostname: '127.0.0.1', port: this.port, path: req.url.split('?')[0],
      query: {}, headers, body,
    }, { signingDate: date });
    if (out.headers.authorization !== auth) {
      this.signatureErrors.push({ ours: out.headers.authorization, theirs: auth });
      return false;
    }
    return true;
  }

  json(res, code, obj) {
    res.writeHead(code, { 'Content-Type': 'application/x-amz-json-1.0', 'x-amzn-RequestId': 'req-1' });
    res.end(JSON.stringify(obj));
  }

  async handle(req, res, body) {
    if (!(await this.verify(req, body))) {
      this.counts.badSignatures += 1;
      return this.json(res, 403, { __type: 'com.amazon.coral.service#InvalidSignatureException', message: 'The request signature we calculated does not match the signature you provided.' });
    }
    const target = req.headers['x-amz-target'] || '';
    if (!target && body.includes('Action=GetCallerIdentity')) {
      this.counts.sts += 1;
      res.writeHead(200, { 'Content-Type': 'text/xml' });
      return res.end('<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
        + '<Arn>arn:aws:iam::123456789012:user/strata</Arn><UserId>AIDA</UserId><Account>123456789012</Account>'
        + '</GetCallerIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>');
    }
    const q = JSON.parse(body);
    if (target === 'GraniteServiceVersion20100801.ListMetrics') {
      this.counts.listMetrics += 1;
      if (q.Namespace !== 'AWS/Lambda') return this.json(res, 200, { Metrics: [] });
      // two pages: orders, payments | emails
      const page = q.NextToken === 'lm-2' ? this.lambda.slice(2) : this.lambda.slice(0, 2);
      return this.json(res, 200, {
        Metrics: page.map((f) => ({ Namespace: 'AWS/Lambda', MetricName: 'Invocations', Dimensions: [{ Name: 'FunctionName', Value: f }] })),
        ...(q.NextToken ? {} : { NextToken: 'lm-2' }),
      });
    }
    if (target === 'GraniteServiceVersion20100801.GetMetricData') {
      this.counts.getMetricData += 1;
      if (this.throttleNext > 0) {
        this.throttleNext -= 1;
        this.counts.throttled += 1;
        return this.json(res, 400, { __type: 'com.amazon.coral.availability#ThrottlingException', message: 'Rate exceeded' });
      }
      if (this.invalidNext > 0) {
        this.invalidNext -= 1;
        res.writeHead(200, { 'Content-Type': 'application/x-amz-json-1.0' });
        return res.end('{"MetricDataResults": [');
      }
      // pages of 2 results; each query gets the datapoints inside its window
      const all = q.MetricDataQueries.map((mq) => {
        const dims = Object.fromEntries((mq.MetricStat.Metric.Dimensions || []).map((d) => [d.Name, d.Value]));
        const ts = this.timestamps.filter((t) => t >= q.StartTime && t <= q.EndTime);
        return {
          Id: mq.Id, Label: mq.MetricStat.Metric.MetricName, StatusCode: 'Complete',
          Timestamps: ts, Values: ts.map((t) => this.value(mq.MetricStat.Metric.MetricName, dims, mq.MetricStat.Stat, t)),
        };
      });
      const start = q.NextToken ? Number(q.NextToken.slice(3)) : 0;
      const page = all.slice(start, start + 2);
      const more = start + 2 < all.length;
      if (more) page.forEach((r) => { r.StatusCode = 'PartialData'; });
      return this.json(res, 200, { MetricDataResults: page, Messages: [], ...(more ? { NextToken: `gm-${start + 2}` } : {}) });
    }
    return this.json(res, 400, { __type: '#UnknownOperationException', message: `unknown ${target}` });
  }

  /** The value of a datapoint: a function of what it is, so that tests can check it. */
  value(name, dims, stat, t) {
    const key = `${name}|${JSON.stringify(dims)}|${stat}`;
    let h = 0;
    for (const c of key) h = (h * 31 + c.charCodeAt(0)) % 1000;
    return h + (t % 3600) / 60;
  }
}

module.exports = { CloudWatchServer, PERIOD };
