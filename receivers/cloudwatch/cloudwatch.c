/* The cloudwatch receiver: CloudWatch metrics pulled with GetMetricData on an interval and
 * turned into OTLP gauges.
 *
 * What to pull: the metrics configured (namespace, name, dimensions, statistics, period), and
 * the metrics ListMetrics finds in the namespaces of `discovery` (refreshed on its own
 * period). Every poll asks for the window [now - delay - interval - lookback, now - delay]:
 * CloudWatch's datapoints settle late (`delay`), and some come later still (`lookback`); a
 * datapoint already emitted is never emitted again (per series, by timestamp). Up to 500
 * queries per call, NextToken pages followed. Throttling backs off and retries; other errors
 * are logged with AWS's code and message, and the next poll tries again. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws_credentials.h"
#include "clock.h"
#include "stop_signal.h"
#include "component.h"
#include "cw_api.h"
#include "log.h"
#include "otlp_attr.h"

#define MAX_QUERIES 500
#define THROTTLE_RETRIES 4

struct cw_metric_cfg {
        char *namespace_, *metric_name;
        struct st_kvv dimensions;
        struct st_strv statistics;
        int64_t period;
};

struct cw_discovery_cfg {
        struct st_strv namespaces, metric_names, statistics;
        int64_t period, refresh;
};

struct cw_cfg {
        char *region, *endpoint, *account_id;
        int64_t interval, delay, lookback;
        struct st_list metrics;
        struct cw_discovery_cfg discovery;
        bool has_discovery;
};

static const struct st_cfg_field metric_fields[] = {
        { .name = "namespace", .type = ST_CFG_STRING, .offset = offsetof(struct cw_metric_cfg, namespace_), .desc = "AWS/EC2, …" },
        { .name = "metric_name", .type = ST_CFG_STRING, .offset = offsetof(struct cw_metric_cfg, metric_name), .desc = "CPUUtilization, …" },
        { .name = "dimensions", .type = ST_CFG_MAP, .offset = offsetof(struct cw_metric_cfg, dimensions), .desc = "name: value" },
        { .name = "statistics", .type = ST_CFG_STRINGS, .offset = offsetof(struct cw_metric_cfg, statistics),
          .desc = "Average, Sum, Minimum, Maximum, SampleCount, p99, … (default Average)" },
        { .name = "period", .type = ST_CFG_DURATION, .offset = offsetof(struct cw_metric_cfg, period), .def = "60s",
          .desc = "aggregation period, a multiple of 60s (1s, 5s, 10s, 30s for high-resolution metrics)" },
        ST_CFG_END,
};

static const struct st_cfg_field discovery_fields[] = {
        { .name = "namespaces", .type = ST_CFG_STRINGS, .offset = offsetof(struct cw_discovery_cfg, namespaces), .desc = "namespaces to list metrics of" },
        { .name = "metric_names", .type = ST_CFG_STRINGS, .offset = offsetof(struct cw_discovery_cfg, metric_names), .desc = "only these metric names (default all)" },
        { .name = "statistics", .type = ST_CFG_STRINGS, .offset = offsetof(struct cw_discovery_cfg, statistics), .desc = "statistics of each (default Average)" },
        { .name = "period", .type = ST_CFG_DURATION, .offset = offsetof(struct cw_discovery_cfg, period), .def = "60s", .desc = "aggregation period" },
        { .name = "refresh", .type = ST_CFG_DURATION, .offset = offsetof(struct cw_discovery_cfg, refresh), .def = "15m", .desc = "how often ListMetrics runs again" },
        ST_CFG_END,
};

static const struct st_cfg_field cw_fields[] = {
        { .name = "region", .type = ST_CFG_STRING, .offset = offsetof(struct cw_cfg, region), .def = "",
          .desc = "AWS region (\"\" = AWS_REGION, AWS_DEFAULT_REGION, the config file's)" },
        { .name = "endpoint", .type = ST_CFG_STRING, .offset = offsetof(struct cw_cfg, endpoint), .def = "",
          .desc = "CloudWatch endpoint URL (\"\" = AWS_ENDPOINT_URL_CLOUDWATCH, AWS_ENDPOINT_URL, the region's)" },
        { .name = "account_id", .type = ST_CFG_STRING, .offset = offsetof(struct cw_cfg, account_id), .def = "",
          .desc = "cloud.account.id (\"\" = asked of STS GetCallerIdentity at start)" },
        { .name = "interval", .type = ST_CFG_DURATION, .offset = offsetof(struct cw_cfg, interval), .def = "5m", .desc = "how often to poll" },
        { .name = "delay", .type = ST_CFG_DURATION, .offset = offsetof(struct cw_cfg, delay), .def = "5m",
          .desc = "how far behind now each window ends: CloudWatch's datapoints settle late" },
        { .name = "lookback", .type = ST_CFG_DURATION, .offset = offsetof(struct cw_cfg, lookback), .def = "5m",
          .desc = "how far each window reaches back beyond the last one, for datapoints later still (never emitted twice)" },
        { .name = "metrics", .type = ST_CFG_LIST, .offset = offsetof(struct cw_cfg, metrics), .sub = metric_fields,
          .elem_size = sizeof(struct cw_metric_cfg), .desc = "metrics to pull" },
        { .name = "discovery", .type = ST_CFG_SECTION, .offset = offsetof(struct cw_cfg, discovery), .sub = discovery_fields,
          .present = ST_CFG_PRESENT(struct cw_cfg, has_discovery), .desc = "metrics found with ListMetrics" },
        ST_CFG_END,
};

struct series {
        char *ns, *name, *stat;
        char **dk, **dv;
        size_t nd;
        int64_t period_s;
        int64_t *seen;          /* timestamps emitted, for the overlap of windows */
        size_t n_seen, cap_seen; /* as many as one window holds periods, and some */
        bool discovered;
        bool fresh; /* found by the discovery underway */
};

struct cw_receiver {
        struct st_component_settings set;
        const struct cw_cfg *cfg;
        struct st_aws_provider *creds;
        struct cw_client client;
        char account[64];
        struct series *s;
        size_t n, cap;
        int64_t next_discovery;
        pthread_t thread;
        bool running;
        struct st_stop stop;
        struct st_tel_metric *m_polls, *m_points, *m_errors, *m_throttled, *m_series;
};

static int cw_validate(const void *cfg, struct st_cfg_ctx *ctx) {
        const struct cw_cfg *c = cfg;
        const struct cw_metric_cfg *m = c->metrics.v;
        for (size_t i = 0; i < c->metrics.n; i++)
                if (!m[i].namespace_ || !*m[i].namespace_ || !m[i].metric_name || !*m[i].metric_name) {
                        st_cfg_errorf(ctx, "metrics", "element %zu: namespace and metric_name are required", i);
                        return -EINVAL;
                }
        if (c->interval < ST_NS_PER_SEC) {
                st_cfg_errorf(ctx, "interval", "must be at least 1s");
                return -EINVAL;
        }
        return 0;
}

static void series_free(struct series *s) {
        free(s->seen);
        free(s->ns);
        free(s->name);
        free(s->stat);
        for (size_t i = 0; i < s->nd; i++) {
                free(s->dk[i]);
                free(s->dv[i]);
        }
        free(s->dk);
        free(s->dv);
}

static int add_series(struct cw_receiver *r, const char *ns, const char *name, char *const *dk, char *const *dv, size_t nd,
                      const char *stat, int64_t period_s, bool discovered) {
        if (r->n == r->cap) {
                size_t cap = r->cap ? 2 * r->cap : 16;
                struct series *v = realloc(r->s, cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                r->s = v;
                r->cap = cap;
        }
        struct series *s = &r->s[r->n];
        memset(s, 0, sizeof(*s));
        s->ns = strdup(ns);
        s->name = strdup(name);
        s->stat = strdup(stat);
        s->dk = calloc(nd ? nd : 1, sizeof(char *));
        s->dv = calloc(nd ? nd : 1, sizeof(char *));
        s->period_s = period_s;
        s->discovered = discovered;
        s->fresh = discovered;
        int64_t window_s = (r->cfg->interval + r->cfg->lookback) / ST_NS_PER_SEC;
        s->cap_seen = (size_t) (window_s / (period_s > 0 ? period_s : 60)) + 8;
        s->seen = calloc(s->cap_seen, sizeof(*s->seen));
        if (!s->ns || !s->name || !s->stat || !s->dk || !s->dv || !s->seen) {
                series_free(s);
                return -ENOMEM;
        }
        for (size_t i = 0; i < nd; i++) {
                s->dk[i] = strdup(dk[i]);
                s->dv[i] = strdup(dv[i]);
                s->nd++;
                if (!s->dk[i] || !s->dv[i]) {
                        series_free(s);
                        return -ENOMEM;
                }
        }
        r->n++;
        return 0;
}

/* --- discovery ---------------------------------------------------------------------------------- */

static bool wanted_name(const struct cw_discovery_cfg *d, const char *name) {
        if (!d->metric_names.n)
                return true;
        for (size_t i = 0; i < d->metric_names.n; i++)
                if (strcmp(d->metric_names.v[i], name) == 0)
                        return true;
        return false;
}

static bool same_series(const struct series *a, const struct series *b) {
        if (strcmp(a->ns, b->ns) || strcmp(a->name, b->name) || strcmp(a->stat, b->stat) || a->nd != b->nd || a->period_s != b->period_s)
                return false;
        for (size_t i = 0; i < a->nd; i++)
                if (strcmp(a->dk[i], b->dk[i]) || strcmp(a->dv[i], b->dv[i]))
                        return false;
        return true;
}

/* Keeps the series for which keep(s) holds, freeing the others. */
static void keep_only(struct cw_receiver *r, bool (*keep)(const struct series *)) {
        size_t w = 0;
        for (size_t i = 0; i < r->n; i++) {
                if (keep(&r->s[i]))
                        r->s[w++] = r->s[i];
                else
                        series_free(&r->s[i]);
        }
        r->n = w;
}
static bool not_fresh(const struct series *s) { return !s->fresh; }
static bool not_stale(const struct series *s) { return !s->discovered || s->fresh; }

static void discover(struct cw_receiver *r) {
        const struct cw_discovery_cfg *d = &r->cfg->discovery;
        char err[512];
        bool ok = true;
        /* the new list is built beside the old one, which stays until it is complete: a
         * failed or throttled ListMetrics changes nothing */
        for (size_t k = 0; k < d->namespaces.n; k++) {
                char *token = NULL;
                do {
                        json_object *req = json_object_new_object(), *resp = NULL, *v;
                        json_object_object_add(req, "Namespace", json_object_new_string(d->namespaces.v[k]));
                        if (token)
                                json_object_object_add(req, "NextToken", json_object_new_string(token));
                        free(token);
                        token = NULL;
                        enum cw_result res = cw_call(&r->client, "ListMetrics", req, &resp, err, sizeof(err));
                        json_object_put(req);
                        if (res != CW_OK) {
                                st_tel_metric_add(res == CW_THROTTLED ? r->m_throttled : r->m_errors, 1);
                                st_warn(r->set.log_name, "cannot list the metrics of %s: %s; keeping what was found before, "
                                        "trying again in a minute", d->namespaces.v[k], err);
                                ok = false;
                                break;
                        }
                        json_object *metrics = NULL;
                        json_object_object_get_ex(resp, "Metrics", &metrics);
                        for (size_t i = 0; json_object_is_type(metrics, json_type_array) && i < json_object_array_length(metrics); i++) {
                                json_object *m = json_object_array_get_idx(metrics, i), *ns = NULL, *name = NULL, *dims = NULL;
                                if (!json_object_object_get_ex(m, "MetricName", &name) || !json_object_is_type(name, json_type_string) ||
                                    !wanted_name(d, json_object_get_string(name)))
                                        continue;
                                json_object_object_get_ex(m, "Namespace", &ns);
                                json_object_object_get_ex(m, "Dimensions", &dims);
                                char *dk[30], *dv[30];
                                size_t nd = 0;
                                for (size_t j = 0; json_object_is_type(dims, json_type_array) && j < json_object_array_length(dims) && nd < 30; j++) {
                                        json_object *dim = json_object_array_get_idx(dims, j), *dn = NULL, *dval = NULL;
                                        if (json_object_object_get_ex(dim, "Name", &dn) && json_object_object_get_ex(dim, "Value", &dval) &&
                                            json_object_is_type(dn, json_type_string) && json_object_is_type(dval, json_type_string)) {
                                                dk[nd] = (char *) json_object_get_string(dn);
                                                dv[nd++] = (char *) json_object_get_string(dval);
                                        }
                                }
                                size_t ns_n = d->statistics.n ? d->statistics.n : 1;
                                for (size_t st = 0; st < ns_n; st++)
                                        (void) add_series(r, ns && json_object_is_type(ns, json_type_string) ? json_object_get_string(ns) : d->namespaces.v[k],
                                                          json_object_get_string(name), dk, dv, nd,
                                                          d->statistics.n ? d->statistics.v[st] : "Average", d->period / ST_NS_PER_SEC, true);
                        }
                        if (json_object_object_get_ex(resp, "NextToken", &v) && json_object_is_type(v, json_type_string) &&
                            *json_object_get_string(v))
                                token = strdup(json_object_get_string(v));
                        json_object_put(resp);
                } while (token && !st_stop_raised(&r->stop));
                free(token);
                if (!ok)
                        break;
        }
        if (!ok || st_stop_raised(&r->stop)) {
                keep_only(r, not_fresh);
                r->next_discovery = st_wall_ns() + 60 * ST_NS_PER_SEC;
                return;
        }
        /* what was emitted already stays emitted: the history goes over to the new series */
        for (size_t i = 0; i < r->n; i++) {
                struct series *nw = &r->s[i];
                if (!nw->fresh)
                        continue;
                for (size_t j = 0; j < r->n; j++)
                        if (r->s[j].discovered && !r->s[j].fresh && same_series(&r->s[j], nw)) {
                                size_t n = r->s[j].n_seen < nw->cap_seen ? r->s[j].n_seen : nw->cap_seen;
                                memcpy(nw->seen, r->s[j].seen, n * sizeof(nw->seen[0]));
                                nw->n_seen = n;
                                break;
                        }
        }
        keep_only(r, not_stale);
        for (size_t i = 0; i < r->n; i++)
                r->s[i].fresh = false;
        r->next_discovery = st_wall_ns() + d->refresh;
        st_tel_metric_set(r->m_series, (int64_t) r->n);
}

/* --- polling ---------------------------------------------------------------------------------------- */

static bool seen(struct series *s, int64_t ts) {
        for (size_t i = 0; i < s->n_seen; i++)
                if (s->seen[i] == ts)
                        return true;
        return false;
}

/* Keeps ts among the emitted ones: those older than the window go first, then, when still
 * full, the oldest (whatever the window, never a wrong "not seen" for a recent one). */
static void remember(struct series *s, int64_t ts, int64_t oldest) {
        size_t w = 0;
        for (size_t i = 0; i < s->n_seen; i++)
                if (s->seen[i] >= oldest)
                        s->seen[w++] = s->seen[i];
        s->n_seen = w;
        if (s->n_seen == s->cap_seen) {
                size_t min = 0;
                for (size_t i = 1; i < s->n_seen; i++)
                        if (s->seen[i] < s->seen[min])
                                min = i;
                s->seen[min] = s->seen[--s->n_seen];
        }
        s->seen[s->n_seen++] = ts;
}

struct points {
        st_batch *b;
        st_metric **metrics;
        size_t n_metrics, cap;
        size_t points;
};

/* One result's new datapoints as a gauge. */
static int add_points(struct cw_receiver *r, struct points *pt, struct series *s, json_object *ts, json_object *vals,
                      int64_t oldest) {
        st_arena *a = &pt->b->arena;
        size_t n = json_object_array_length(ts);
        if (n != json_object_array_length(vals))
                return -EBADMSG;
        st_number_point **v = st_arena_zalloc(a, (n ? n : 1) * sizeof(*v));
        int64_t *when_v = calloc(n ? n : 1, sizeof(*when_v));
        size_t m = 0;
        int rc = 0;
        if (!v || !when_v) {
                free(when_v);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
                json_object *t = json_object_array_get_idx(ts, i), *x = json_object_array_get_idx(vals, i);
                if (!(json_object_is_type(t, json_type_int) || json_object_is_type(t, json_type_double)) ||
                    !(json_object_is_type(x, json_type_int) || json_object_is_type(x, json_type_double))) {
                        rc = -EBADMSG;
                        break;
                }
                int64_t when = json_object_is_type(t, json_type_int) ? json_object_get_int64(t) : (int64_t) json_object_get_double(t);
                if (seen(s, when))
                        continue;
                st_number_point *p = st_arena_zalloc(a, sizeof(*p));
                st_key_value **attrs = st_arena_zalloc(a, (s->nd + 1) * sizeof(*attrs));
                if (!p || !attrs) {
                        rc = -ENOMEM;
                        break;
                }
                opentelemetry__proto__metrics__v1__number_data_point__init(p);
                p->time_unix_nano = (uint64_t) when * 1000000000u;
                p->start_time_unix_nano = (uint64_t) (when - s->period_s) * 1000000000u;
                p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
                p->as_double = json_object_get_double(x);
                for (size_t k = 0; k < s->nd && rc == 0; k++) {
                        /* the series may go (rediscovery) while the batch is still queued */
                        const char *key = st_arena_strdup(a, s->dk[k]);
                        if (!key || !(attrs[p->n_attributes++] = st_kv_str(a, key, s->dv[k])))
                                rc = -ENOMEM;
                }
                if (rc == 0 && !(attrs[p->n_attributes++] = st_kv_str(a, "aws.cloudwatch.statistic", s->stat)))
                        rc = -ENOMEM;
                p->attributes = attrs;
                when_v[m] = when;
                v[m++] = p;
        }
        /* seen only once all of them will be sent: a failure loses nothing for the next poll */
        if (rc < 0) {
                free(when_v);
                return rc;
        }
        for (size_t i = 0; i < m; i++)
                remember(s, when_v[i], oldest);
        free(when_v);
        if (!m)
                return 0;
        st_metric *metric = st_arena_zalloc(a, sizeof(*metric));
        Opentelemetry__Proto__Metrics__V1__Gauge *g = st_arena_zalloc(a, sizeof(*g));
        char name[512];
        if (!metric || !g)
                return -ENOMEM;
        opentelemetry__proto__metrics__v1__metric__init(metric);
        opentelemetry__proto__metrics__v1__gauge__init(g);
        /* CloudWatch metric streams' OpenTelemetry naming */
        snprintf(name, sizeof(name), "amazonaws.com/%s/%s", s->ns, s->name);
        metric->name = st_arena_strdup(a, name);
        g->data_points = v;
        g->n_data_points = m;
        metric->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
        metric->gauge = g;
        if (pt->n_metrics == pt->cap) {
                size_t cap = pt->cap ? 2 * pt->cap : 32;
                st_metric **nv = realloc(pt->metrics, cap * sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                pt->metrics = nv;
                pt->cap = cap;
        }
        pt->metrics[pt->n_metrics++] = metric;
        pt->points += m;
        return 0;
}

static json_object *query_of(const struct series *s, size_t id) {
        char qid[32];
        json_object *q = json_object_new_object(), *ms = json_object_new_object(), *m = json_object_new_object(),
                    *dims = json_object_new_array();
        snprintf(qid, sizeof(qid), "q%zu", id);
        for (size_t i = 0; i < s->nd; i++) {
                json_object *d = json_object_new_object();
                json_object_object_add(d, "Name", json_object_new_string(s->dk[i]));
                json_object_object_add(d, "Value", json_object_new_string(s->dv[i]));
                json_object_array_add(dims, d);
        }
        json_object_object_add(m, "Namespace", json_object_new_string(s->ns));
        json_object_object_add(m, "MetricName", json_object_new_string(s->name));
        json_object_object_add(m, "Dimensions", dims);
        json_object_object_add(ms, "Metric", m);
        json_object_object_add(ms, "Period", json_object_new_int64(s->period_s));
        json_object_object_add(ms, "Stat", json_object_new_string(s->stat));
        json_object_object_add(q, "Id", json_object_new_string(qid));
        json_object_object_add(q, "MetricStat", ms);
        json_object_object_add(q, "ReturnData", json_object_new_boolean(1));
        return q;
}

/* One chunk of up to MAX_QUERIES series, all its pages, into pt. */
static int poll_chunk(struct cw_receiver *r, size_t from, size_t to, int64_t start, int64_t end, struct points *pt) {
        char err[512], *token = NULL;
        int tries = 0, rc = 0;
        for (;;) {
                json_object *req = json_object_new_object(), *qs = json_object_new_array(), *resp = NULL, *v;
                for (size_t i = from; i < to; i++)
                        json_object_array_add(qs, query_of(&r->s[i], i - from));
                json_object_object_add(req, "MetricDataQueries", qs);
                json_object_object_add(req, "StartTime", json_object_new_int64(start));
                json_object_object_add(req, "EndTime", json_object_new_int64(end));
                json_object_object_add(req, "ScanBy", json_object_new_string("TimestampAscending"));
                if (token)
                        json_object_object_add(req, "NextToken", json_object_new_string(token));
                enum cw_result res = cw_call(&r->client, "GetMetricData", req, &resp, err, sizeof(err));
                json_object_put(req);
                if (res == CW_THROTTLED && tries++ < THROTTLE_RETRIES) {
                        st_tel_metric_add(r->m_throttled, 1);
                        st_info(r->set.log_name, "throttled (%s); retrying in %ds", err, 1 << tries);
                        if (!st_stop_sleep_until(&r->stop, st_wall_ns() + (INT64_C(1) << tries) * ST_NS_PER_SEC))
                                break;
                        continue; /* the same page again (the first one too: token may be NULL) */
                }
                if (res != CW_OK) {
                        st_tel_metric_add(r->m_errors, 1);
                        st_warn(r->set.log_name, "%s; the next poll tries again", err);
                        rc = -EIO;
                        break;
                }
                tries = 0;
                free(token);
                token = NULL;
                json_object *results = NULL;
                json_object_object_get_ex(resp, "MetricDataResults", &results);
                for (size_t i = 0; json_object_is_type(results, json_type_array) && i < json_object_array_length(results); i++) {
                        json_object *res1 = json_object_array_get_idx(results, i), *id = NULL, *ts = NULL, *vals = NULL;
                        if (!json_object_object_get_ex(res1, "Id", &id) || !json_object_is_type(id, json_type_string) ||
                            json_object_get_string(id)[0] != 'q')
                                continue;
                        size_t k = strtoul(json_object_get_string(id) + 1, NULL, 10) + from;
                        if (k >= to || !json_object_object_get_ex(res1, "Timestamps", &ts) ||
                            !json_object_object_get_ex(res1, "Values", &vals) || !json_object_is_type(ts, json_type_array) ||
                            !json_object_is_type(vals, json_type_array)) {
                                st_warn(r->set.log_name, "a GetMetricData result without Timestamps and Values, ignoring");
                                continue;
                        }
                        int e = add_points(r, pt, &r->s[k], ts, vals, start);
                        if (e == -EBADMSG)
                                st_warn(r->set.log_name, "result %s: timestamps and values do not pair up, ignoring",
                                        json_object_get_string(id));
                        else if (e < 0)
                                rc = e;
                }
                if (json_object_object_get_ex(resp, "NextToken", &v) && json_object_is_type(v, json_type_string) &&
                    *json_object_get_string(v))
                        token = strdup(json_object_get_string(v));
                json_object_put(resp);
                if (!token || st_stop_raised(&r->stop))
                        break;
        }
        free(token);
        return rc;
}

static void send_points(struct cw_receiver *r, struct points *pt) {
        st_arena *a = &pt->b->arena;
        st_metrics_req *req = (st_metrics_req *) pt->b->req;
        st_resource_metrics *rm = st_arena_zalloc(a, sizeof(*rm));
        st_resource *res = st_arena_zalloc(a, sizeof(*res));
        st_scope_metrics *sm = st_arena_zalloc(a, sizeof(*sm));
        st_scope *scope = st_arena_zalloc(a, sizeof(*scope));
        void **one = st_arena_zalloc(a, 2 * sizeof(void *));
        st_key_value **ra = st_arena_zalloc(a, 3 * sizeof(*ra));
        st_metric **mv = pt->n_metrics ? st_arena_memdup(a, pt->metrics, pt->n_metrics * sizeof(*mv)) : NULL;
        const struct st_consumer *next = &r->set.next[ST_METRICS];
        if (!rm || !res || !sm || !scope || !one || !ra || !mv) {
                st_tel_add(&r->set.tel->sig[ST_METRICS].refused, pt->points);
                return;
        }
        opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
        opentelemetry__proto__resource__v1__resource__init(res);
        opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
        opentelemetry__proto__common__v1__instrumentation_scope__init(scope);
        scope->name = (char *) "strata/cloudwatch";
        if (!(ra[res->n_attributes++] = st_kv_str(a, "cloud.provider", "aws")) ||
            !(ra[res->n_attributes++] = st_kv_str(a, "cloud.region", r->client.region)) ||
            (r->account[0] && !(ra[res->n_attributes++] = st_kv_str(a, "cloud.account.id", r->account)))) {
                st_tel_add(&r->set.tel->sig[ST_METRICS].refused, pt->points);
                return;
        }
        res->attributes = ra;
        sm->scope = scope;
        sm->metrics = mv;
        sm->n_metrics = pt->n_metrics;
        one[0] = sm;
        rm->scope_metrics = (st_scope_metrics **) &one[0];
        rm->n_scope_metrics = 1;
        rm->resource = res;
        one[1] = rm;
        req->resource_metrics = (st_resource_metrics **) &one[1];
        req->n_resource_metrics = 1;
        st_batch_recount(pt->b);
        int e = st_consume(next, pt->b);
        st_tel_add(e < 0 ? &r->set.tel->sig[ST_METRICS].refused : &r->set.tel->sig[ST_METRICS].accepted, pt->points);
        if (e < 0)
                st_warn(r->set.log_name, "the pipeline refused %zu datapoints: %s", pt->points, strerror(-e));
        st_tel_metric_add(r->m_points, (int64_t) pt->points);
}

static void poll_once(struct cw_receiver *r) {
        int64_t now = (int64_t) time(NULL);
        int64_t end = now - r->cfg->delay / ST_NS_PER_SEC;
        int64_t start = end - (r->cfg->interval + r->cfg->lookback) / ST_NS_PER_SEC;
        struct points pt = { 0 };
        if (!r->n || st_batch_new(ST_METRICS, &pt.b) < 0)
                return;
        st_tel_metric_add(r->m_polls, 1);
        for (size_t i = 0; i < r->n && !st_stop_raised(&r->stop); i += MAX_QUERIES)
                (void) poll_chunk(r, i, i + MAX_QUERIES < r->n ? i + MAX_QUERIES : r->n, start, end, &pt);
        if (pt.n_metrics && st_consumer_set(&r->set.next[ST_METRICS]))
                send_points(r, &pt);
        free(pt.metrics);
        st_batch_unref(pt.b);
}

static void *run(void *arg) {
        struct cw_receiver *r = arg;
        char err[512];
        if (!r->account[0] && cw_account_id(&r->client, r->account, sizeof(r->account), err, sizeof(err)) < 0)
                st_warn(r->set.log_name, "no cloud.account.id: %s (set account_id to skip the call)", err);
        while (!st_stop_raised(&r->stop)) {
                int64_t t0 = st_wall_ns();
                if (r->cfg->has_discovery && r->cfg->discovery.namespaces.n && t0 >= r->next_discovery)
                        discover(r); /* sets next_discovery: the refresh, or a minute after a failure */
                poll_once(r);
                if (!st_stop_sleep_until(&r->stop, t0 + r->cfg->interval))
                        break;
        }
        return NULL;
}

static int cw_create(const struct st_component_settings *set, const void *cfg, void **ret) {
        const struct cw_cfg *c = cfg;
        struct cw_receiver *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->set = *set;
        r->cfg = c;
        st_stop_init(&r->stop);
        const struct cw_metric_cfg *m = c->metrics.v;
        int e = st_aws_provider_new(&r->creds);
        for (size_t i = 0; e >= 0 && i < c->metrics.n; i++) {
                size_t ns = m[i].statistics.n ? m[i].statistics.n : 1;
                for (size_t k = 0; e >= 0 && k < ns; k++)
                        e = add_series(r, m[i].namespace_, m[i].metric_name, m[i].dimensions.k, m[i].dimensions.v, m[i].dimensions.n,
                                       m[i].statistics.n ? m[i].statistics.v[k] : "Average", m[i].period / ST_NS_PER_SEC, false);
        }
        if (e < 0) {
                for (size_t i = 0; i < r->n; i++)
                        series_free(&r->s[i]);
                free(r->s);
                st_aws_provider_free(r->creds);
                st_stop_destroy(&r->stop);
                free(r);
                return e;
        }
        if (c->account_id && *c->account_id)
                snprintf(r->account, sizeof(r->account), "%s", c->account_id);
        r->m_polls = st_tel_metric(set->tel, "cloudwatch_polls_total", "GetMetricData polls.", false);
        r->m_points = st_tel_metric(set->tel, "cloudwatch_datapoints_total", "Datapoints emitted.", false);
        r->m_errors = st_tel_metric(set->tel, "cloudwatch_errors_total", "Failed CloudWatch calls (not throttling).", false);
        r->m_throttled = st_tel_metric(set->tel, "cloudwatch_throttled_total", "Throttled CloudWatch calls (retried).", false);
        r->m_series = st_tel_metric(set->tel, "cloudwatch_series", "Metric and statistic pairs pulled.", true);
        st_tel_metric_set(r->m_series, (int64_t) r->n);
        *ret = r;
        return 0;
}

static int cw_start(void *self) {
        struct cw_receiver *r = self;
        char region[64];
        if (!r->n && !(r->cfg->has_discovery && r->cfg->discovery.namespaces.n)) {
                st_warn(r->set.log_name, "nothing to pull: no metrics and no discovery.namespaces configured");
                return 0;
        }
        if (r->cfg->region && *r->cfg->region)
                snprintf(region, sizeof(region), "%s", r->cfg->region);
        else
                st_aws_region(region, sizeof(region));
        if (!*region) {
                st_error(r->set.log_name, "no AWS region: set region, or AWS_REGION");
                return -EINVAL;
        }
        cw_client_init(&r->client, r->cfg->endpoint, region, r->creds);
        r->client.stop = &r->stop.raised; /* shutdown does not wait for a 30 s request */
        st_aws_provider_set_stop(r->creds, &r->stop.raised);
        int e = -pthread_create(&r->thread, NULL, run, r);
        if (e < 0) {
                st_error(r->set.log_name, "cannot start the polling thread: %s", strerror(-e));
                return e;
        }
        r->running = true;
        (void) pthread_setname_np(r->thread, "cloudwatch");
        st_info(r->set.log_name, "pulling %zu series every %" PRId64 "s from %s (%s)", r->n, r->cfg->interval / ST_NS_PER_SEC,
                r->client.endpoint, region);
        return 0;
}

static int cw_shutdown(void *self, int64_t deadline_ns) {
        struct cw_receiver *r = self;
        (void) deadline_ns;
        if (!r || !r->running)
                return 0;
        st_stop_raise(&r->stop);
        pthread_join(r->thread, NULL);
        r->running = false;
        return 0;
}

static void cw_destroy(void *self) {
        struct cw_receiver *r = self;
        if (!r)
                return;
        cw_shutdown(r, 0);
        for (size_t i = 0; i < r->n; i++)
                series_free(&r->s[i]);
        free(r->s);
        st_aws_provider_free(r->creds);
        st_stop_destroy(&r->stop);
        free(r);
}

const struct st_factory st_receiver_cloudwatch = {
        .type = "cloudwatch",
        .kind = ST_RECEIVER,
        .signals = ST_SIG_BIT(ST_METRICS),
        .description = "CloudWatch metrics pulled with GetMetricData (SigV4, the AWS credentials chain) as OTLP gauges",
        .config_size = sizeof(struct cw_cfg),
        .config = cw_fields,
        .validate = cw_validate,
        .create = cw_create,
        .start = cw_start,
        .shutdown = cw_shutdown,
        .destroy = cw_destroy,
};
