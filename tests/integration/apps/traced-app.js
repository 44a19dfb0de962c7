'use strict';
// An application instrumented with the OpenTelemetry JS SDK, for the correlation test: inside
// one known span ("work") it spawns a child process and opens a TCP connection, the two
// things the kernel receiver sees on its own. Spans go to strata over OTLP/gRPC (a Unix
// socket or TCP), span starts and ends over the context channel (agents/node).
//
//   STRATA_OTLP           unix:///path or http://127.0.0.1:port
//   STRATA_CONTEXT_SOCKET the context channel's socket
//   CONNECT_PORT          a local TCP port that accepts
//   CHILD_TAG             an argument that makes the child's exec recognisable
//
// Prints one JSON line: { pid, traceId, spanId, childPid }.
const net = require('node:net');
const { spawn } = require('node:child_process');
const api = require('@opentelemetry/api');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { Resource } = require('@opentelemetry/resources');
const { BasicTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
const grpc = require('@grpc/grpc-js');
const { StrataContextSpanProcessor } = require('../../../agents/node');

const cm = new AsyncLocalStorageContextManager();
cm.enable();
api.context.setGlobalContextManager(cm);

const channel = new StrataContextSpanProcessor({ socketPath: process.env.STRATA_CONTEXT_SOCKET });
const provider = new BasicTracerProvider({
  // a pid that is not ours: strata must attribute the spans to the process it sees
  resource: new Resource({ 'service.name': 'traced-app', 'process.pid': 1 }),
  spanProcessors: [channel, new SimpleSpanProcessor(new OTLPTraceExporter({
    url: process.env.STRATA_OTLP, timeoutMillis: 5000, credentials: grpc.credentials.createInsecure(),
  }))],
});
const tracer = provider.getTracer('traced-app');

function connectOnce(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => { s.end(); resolve(); });
    s.on('error', reject);
  });
}

function runChild(tag) {
  return new Promise((resolve, reject) => {
    const c = spawn('/bin/sh', ['-c', 'exit 0', tag], { stdio: 'ignore' });
    c.on('error', reject);
    c.on('exit', () => resolve(c.pid));
  });
}

async function main() {
  // a gRPC channel does not keep the event loop alive: nor would an export still underway
  const keepalive = setInterval(() => {}, 1000);
  // let the channel connect first, so that the span start is not queued behind it; and give
  // strata's clock alignment samples to work with, as a running application does: it takes
  // the smallest delay it sees per connection, and four records received while its reader
  // waited for a busy CPU would all look late (docs/context-channel.md, "Clocks")
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 0; i < 20; i++) {
    tracer.startSpan('warm-up').end();
    await new Promise((r) => setTimeout(r, 5));
  }
  const out = await tracer.startActiveSpan('outer', async (outer) => {
    const r = await tracer.startActiveSpan('work', async (span) => {
      const childPid = await runChild(process.env.CHILD_TAG || 'strata-e2e');
      await connectOnce(Number(process.env.CONNECT_PORT));
      span.end();
      return { pid: process.pid, traceId: span.spanContext().traceId, spanId: span.spanContext().spanId, childPid };
    });
    outer.end();
    return r;
  });
  await provider.forceFlush();
  await provider.shutdown();
  clearInterval(keepalive);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e) => { process.stderr.write(`${e.stack || e}\n`); process.exit(1); });
