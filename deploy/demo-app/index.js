'use strict';
// strata compose demo: a pretend shop that serves one "checkout" every second.
// Each checkout is one trace: a SERVER parent span with INTERNAL and CLIENT children, attributes
// and events, exported over OTLP/gRPC to strata (which batches it and forwards it to Jaeger).
//
// Settings (environment):
//   OTEL_EXPORTER_OTLP_ENDPOINT  where strata's OTLP/gRPC receiver is (default http://strata:4317;
//                                http:// means plaintext gRPC)
//   OTEL_SERVICE_NAME            service.name of the spans (default strata-demo)
//   DEMO_INTERVAL_MS             time between checkouts (default 1000)

const { trace, SpanKind, SpanStatusCode } = require('@opentelemetry/api');
const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
const { Resource } = require('@opentelemetry/resources');
const {
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_ROUTE,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_URL_PATH,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_ERROR_TYPE,
} = require('@opentelemetry/semantic-conventions');

const endpoint = process.env.OTEL_EXPORTER_OTLP_ENDPOINT || 'http://strata:4317';
const serviceName = process.env.OTEL_SERVICE_NAME || 'strata-demo';
const intervalMs = Number(process.env.DEMO_INTERVAL_MS) || 1000;

const provider = new NodeTracerProvider({
  resource: new Resource({
    [ATTR_SERVICE_NAME]: serviceName,
    [ATTR_SERVICE_VERSION]: '0.1.0',
    'deployment.environment.name': 'compose-demo',
  }),
  spanProcessors: [
    new BatchSpanProcessor(new OTLPTraceExporter({ url: endpoint }), {
      scheduledDelayMillis: 1000, // ship about once a second so traces show up quickly
    }),
  ],
});
provider.register(); // global tracer provider + AsyncLocalStorage context: children nest across awaits

const tracer = trace.getTracer('strata-demo-app', '0.1.0');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const jitter = (min, max) => min + Math.floor(Math.random() * (max - min));

const SKUS = ['sku-espresso', 'sku-grinder', 'sku-filter', 'sku-mug', 'sku-beans-1kg'];
let orderSeq = 0;

async function lookupInventory(items) {
  return tracer.startActiveSpan('inventory.lookup', { kind: SpanKind.INTERNAL }, async (span) => {
    try {
      span.setAttribute('db.system', 'postgresql');
      span.setAttribute('db.operation.name', 'SELECT');
      span.setAttribute('db.collection.name', 'inventory');
      span.setAttribute('inventory.items', items);
      await sleep(jitter(5, 40));
      span.setAttribute('inventory.in_stock', true);
    } finally {
      span.end();
    }
  });
}

async function chargePayment(orderId, amount, declined) {
  return tracer.startActiveSpan('payment.charge', {
    kind: SpanKind.CLIENT,
    attributes: {
      [ATTR_SERVER_ADDRESS]: 'payments.internal',
      [ATTR_SERVER_PORT]: 443,
      'payment.amount': amount,
      'payment.currency': 'EUR',
    },
  }, async (span) => {
    try {
      await sleep(jitter(20, 120));
      if (declined) {
        const err = new Error(`card declined for order ${orderId}`);
        err.name = 'CardDeclinedError';
        span.recordException(err); // an "exception" event on the span
        span.setAttribute(ATTR_ERROR_TYPE, err.name);
        span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
        throw err;
      }
      span.addEvent('payment.authorized', { 'payment.authorization_code': `AUTH-${orderId}` });
    } finally {
      span.end();
    }
  });
}

async function sendConfirmation(orderId) {
  return tracer.startActiveSpan('email.send', { kind: SpanKind.PRODUCER }, async (span) => {
    try {
      span.setAttribute('messaging.system', 'demo-queue');
      span.setAttribute('messaging.destination.name', 'order-confirmations');
      span.setAttribute('order.id', orderId);
      await sleep(jitter(2, 15));
    } finally {
      span.end();
    }
  });
}

async function checkout() {
  const orderId = `ord-${++orderSeq}`;
  const items = SKUS.filter(() => Math.random() < 0.5);
  if (items.length === 0) items.push(SKUS[0]);
  const amount = Math.round(items.length * (5 + Math.random() * 40) * 100) / 100;
  const declined = orderSeq % 10 === 0; // every tenth order fails, so there are error traces too

  return tracer.startActiveSpan('POST /checkout', {
    kind: SpanKind.SERVER,
    attributes: {
      [ATTR_HTTP_REQUEST_METHOD]: 'POST',
      [ATTR_HTTP_ROUTE]: '/checkout',
      [ATTR_URL_PATH]: '/checkout',
      'order.id': orderId,
      'order.item_count': items.length,
    },
  }, async (span) => {
    const traceId = span.spanContext().traceId;
    try {
      span.addEvent('checkout.started', { 'order.items': items.join(',') });
      await lookupInventory(items);
      await chargePayment(orderId, amount, declined);
      await sendConfirmation(orderId);
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, 200);
      console.log(`${orderId} ok       trace_id=${traceId}`);
    } catch (err) {
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, 402);
      span.setAttribute(ATTR_ERROR_TYPE, err.name);
      span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
      console.log(`${orderId} declined trace_id=${traceId}`);
    } finally {
      span.end();
    }
  });
}

console.log(`strata-demo: one checkout every ${intervalMs} ms, service.name=${serviceName}, OTLP/gRPC to ${endpoint}`);
const timer = setInterval(() => {
  checkout().catch((err) => console.error('checkout failed:', err));
}, intervalMs);

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  console.log(`strata-demo: ${signal}, flushing spans`);
  try {
    await provider.shutdown(); // flushes the batch processor and closes the exporter
  } catch (err) {
    console.error('strata-demo: shutdown:', err);
  }
  process.exit(0);
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
