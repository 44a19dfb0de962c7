/* Kernel events → aggregated OTLP metrics: counts and histograms kept in the agent and
 * exported every interval as cumulative points, never a point per event.
 *
 *   strata.process.execs                 Sum  {exec}        process.executable.name
 *   strata.network.connections           Sum  {connection}  strata.network.direction, network.peer.address,
 *                                                            network.peer.port (outbound) | network.local.port (inbound)
 *   strata.network.io                    Sum  By            network.io.direction (transmit|receive), network.peer.address,
 *                                                            strata.network.direction
 *   strata.network.connection.duration   Histogram  s       strata.network.direction
 *
 * Series are bounded (max_series): what does not fit is added to one series per metric with
 * otel.metric.overflow=true, as the OpenTelemetry SDKs do. One thread owns an instance. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "ebpf_decode.h"

struct kmetrics;

int kmetrics_new(size_t max_series, struct kmetrics **ret);
void kmetrics_free(struct kmetrics *m); /* NULL-safe */

/* Counts ev as `weight` events (a sampled connection stands for `weight` of them; kinds that
 * feed no metric are ignored). */
void kmetrics_add(struct kmetrics *m, const struct kevent *ev, uint32_t weight);

/* Every series as cumulative points since start_unix_ns, at now_unix_ns; *ret NULL when there
 * is nothing yet. */
int kmetrics_build(struct kmetrics *m, uint64_t start_unix_ns, uint64_t now_unix_ns, st_batch **ret);
size_t kmetrics_series(const struct kmetrics *m);
