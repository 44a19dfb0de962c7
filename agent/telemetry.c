#include "telemetry.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "clock.h"
#include "endpoint.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct st_component_telemetry *registry;
static struct MHD_Daemon *daemon_;
static atomic_bool healthy;
static int64_t started_ns;

struct st_component_telemetry *st_tel_component(const char *kind, const char *id) {
        struct st_component_telemetry *t, **tail = &registry;
        pthread_mutex_lock(&registry_lock);
        for (t = registry; t; t = t->next) {
                if (strcmp(t->kind, kind) == 0 && strcmp(t->id, id) == 0)
                        goto out;
                tail = &t->next;
        }
        t = calloc(1, sizeof(*t));
        if (t) {
                t->kind = strdup(kind);
                t->id = strdup(id);
                if (!t->kind || !t->id) {
                        free(t->kind);
                        free(t->id);
                        free(t);
                        t = NULL;
                } else
                        *tail = t;
        }
out:
        pthread_mutex_unlock(&registry_lock);
        return t;
}

struct st_tel_metric *st_tel_metric(struct st_component_telemetry *t, const char *name, const char *help, bool gauge) {
        struct st_tel_metric *m = NULL, **tail;
        if (!t)
                return NULL;
        pthread_mutex_lock(&registry_lock);
        for (tail = &t->metrics; *tail; tail = &(*tail)->next)
                if (strcmp((*tail)->name, name) == 0) {
                        m = *tail;
                        goto out;
                }
        m = calloc(1, sizeof(*m));
        if (m && (!(m->name = strdup(name)) || !(m->help = strdup(help)))) {
                free(m->name);
                free(m);
                m = NULL;
        }
        if (m) {
                m->gauge = gauge;
                *tail = m;
        }
out:
        pthread_mutex_unlock(&registry_lock);
        return m;
}

void st_tel_metrics_free(struct st_component_telemetry *t) {
        while (t->metrics) {
                struct st_tel_metric *m = t->metrics->next;
                free(t->metrics->name);
                free(t->metrics->help);
                free(t->metrics);
                t->metrics = m;
        }
}

void st_tel_reset(void) {
        pthread_mutex_lock(&registry_lock);
        while (registry) {
                struct st_component_telemetry *n = registry->next;
                st_tel_metrics_free(registry);
                free(registry->kind);
                free(registry->id);
                free(registry);
                registry = n;
        }
        pthread_mutex_unlock(&registry_lock);
}

uint64_t st_rss_bytes(void) {
        FILE *f = fopen("/proc/self/statm", "re");
        unsigned long long size, rss;
        if (!f)
                return 0;
        int n = fscanf(f, "%llu %llu", &size, &rss);
        fclose(f);
        return n == 2 ? rss * (uint64_t) sysconf(_SC_PAGESIZE) : 0;
}

struct counter_def {
        const char *name, *help;
        size_t offset;
        unsigned kinds; /* bit per kind name below */
};
#define K_RECV 1u
#define K_PROC 2u
#define K_EXP 4u

static const struct counter_def counters[] = {
        { "accepted_items_total", "Items accepted into the pipeline.", offsetof(struct st_signal_counters, accepted), K_RECV },
        { "refused_items_total", "Items refused (the sender was told to retry).", offsetof(struct st_signal_counters, refused), K_RECV | K_PROC | K_EXP },
        { "sent_items_total", "Items acknowledged by the backend.", offsetof(struct st_signal_counters, sent), K_EXP },
        { "send_failed_items_total", "Items given up on after permanent errors or retries.", offsetof(struct st_signal_counters, failed), K_EXP },
        { "dropped_items_total", "Items discarded (refused downstream after acceptance, or left at shutdown).", offsetof(struct st_signal_counters, dropped), K_PROC | K_EXP },
};

static unsigned kind_bit(const char *kind) {
        return strcmp(kind, "receiver") == 0 ? K_RECV : strcmp(kind, "processor") == 0 ? K_PROC : K_EXP;
}

/* Whether a component before t in the registry has a metric of m's kind and name. */
static bool metric_seen_before(const struct st_component_telemetry *t, const struct st_tel_metric *m) {
        for (const struct st_component_telemetry *u = registry; u != t; u = u->next)
                for (const struct st_tel_metric *x = u->metrics; x; x = x->next)
                        if (strcmp(u->kind, t->kind) == 0 && strcmp(x->name, m->name) == 0)
                                return true;
        return false;
}

void st_tel_render(st_buf *out) {
        static const char *const kinds[] = { "receiver", "processor", "exporter" };
        pthread_mutex_lock(&registry_lock);
        for (size_t k = 0; k < 3; k++)
                for (size_t c = 0; c < sizeof(counters) / sizeof(counters[0]); c++) {
                        if (!(counters[c].kinds & kind_bit(kinds[k])))
                                continue;
                        bool header = false;
                        for (struct st_component_telemetry *t = registry; t; t = t->next) {
                                if (strcmp(t->kind, kinds[k]) != 0)
                                        continue;
                                if (!header) {
                                        st_buf_printf(out, "# HELP strata_%s_%s %s\n# TYPE strata_%s_%s counter\n", kinds[k],
                                                      counters[c].name, counters[c].help, kinds[k], counters[c].name);
                                        header = true;
                                }
                                for (int s = 0; s < ST_SIGNAL_COUNT; s++) {
                                        atomic_uint_least64_t *v = (atomic_uint_least64_t *) ((char *) &t->sig[s] + counters[c].offset);
                                        st_buf_printf(out, "strata_%s_%s{%s=\"%s\",signal=\"%s\"} %" PRIu64 "\n", kinds[k],
                                                      counters[c].name, kinds[k], t->id, st_signal_name(s),
                                                      (uint64_t) atomic_load_explicit(v, memory_order_relaxed));
                                }
                        }
                }
        bool header = false;
        for (struct st_component_telemetry *t = registry; t; t = t->next) {
                if (!t->queue_capacity)
                        continue;
                if (!header) {
                        st_buf_puts(out, "# HELP strata_exporter_queue_size Batches in the sending queue.\n"
                                         "# TYPE strata_exporter_queue_size gauge\n"
                                         "# HELP strata_exporter_queue_capacity Capacity of the sending queue in batches.\n"
                                         "# TYPE strata_exporter_queue_capacity gauge\n");
                        header = true;
                }
                st_buf_printf(out, "strata_exporter_queue_size{exporter=\"%s\"} %" PRId64 "\n", t->id,
                              (int64_t) atomic_load_explicit(&t->queue_size, memory_order_relaxed));
                st_buf_printf(out, "strata_exporter_queue_capacity{exporter=\"%s\"} %" PRId64 "\n", t->id, t->queue_capacity);
        }
        /* one HELP/TYPE per name, then one sample per component that has it */
        for (struct st_component_telemetry *t = registry; t; t = t->next)
                for (struct st_tel_metric *m = t->metrics; m; m = m->next) {
                        if (metric_seen_before(t, m))
                                continue;
                        st_buf_printf(out, "# HELP strata_%s_%s %s\n# TYPE strata_%s_%s %s\n", t->kind, m->name, m->help,
                                      t->kind, m->name, m->gauge ? "gauge" : "counter");
                        for (struct st_component_telemetry *u = t; u; u = u->next)
                                for (struct st_tel_metric *x = u->metrics; x; x = x->next)
                                        if (strcmp(u->kind, t->kind) == 0 && strcmp(x->name, m->name) == 0)
                                                st_buf_printf(out, "strata_%s_%s{%s=\"%s\"} %" PRId64 "\n", u->kind, x->name,
                                                              u->kind, u->id,
                                                              (int64_t) atomic_load_explicit(&x->value, memory_order_relaxed));
                }
        pthread_mutex_unlock(&registry_lock);
        st_buf_printf(out,
                      "# HELP strata_process_resident_memory_bytes Resident set size.\n"
                      "# TYPE strata_process_resident_memory_bytes gauge\n"
                      "strata_process_resident_memory_bytes %" PRIu64 "\n"
                      "# HELP strata_batch_memory_bytes Bytes held by batches in flight (arenas).\n"
                      "# TYPE strata_batch_memory_bytes gauge\n"
                      "strata_batch_memory_bytes %" PRIu64 "\n"
                      "# HELP strata_uptime_seconds Seconds since the telemetry server started.\n"
                      "# TYPE strata_uptime_seconds gauge\n"
                      "strata_uptime_seconds %.3f\n",
                      st_rss_bytes(), st_arena_total_bytes(), (double) (st_now_ns() - started_ns) / 1e9);
}

void st_tel_set_healthy(bool h) { atomic_store(&healthy, h); }

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_size, void **state) {
        struct MHD_Response *resp;
        enum MHD_Result ret;
        unsigned code = MHD_HTTP_OK;
        st_buf body = { 0 };
        const char *ctype = "text/plain; charset=utf-8";

        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
                code = MHD_HTTP_METHOD_NOT_ALLOWED;
                st_buf_puts(&body, "only GET\n");
        } else if (strcmp(url, "/metrics") == 0) {
                st_tel_render(&body);
                ctype = "text/plain; version=0.0.4; charset=utf-8";
        } else if (strcmp(url, "/healthz") == 0) {
                bool h = atomic_load(&healthy);
                code = h ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
                st_buf_puts(&body, h ? "ok\n" : "starting or stopping\n");
        } else {
                code = MHD_HTTP_NOT_FOUND;
                st_buf_puts(&body, "not found: try /metrics or /healthz\n");
        }
        resp = MHD_create_response_from_buffer(body.len, body.data ? body.data : (char *) "", MHD_RESPMEM_MUST_COPY);
        st_buf_free(&body);
        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, "Content-Type", ctype);
        ret = MHD_queue_response(conn, code, resp);
        MHD_destroy_response(resp);
        return ret;
}

int st_tel_server_start(const char *address) {
        struct sockaddr_storage ss;
        socklen_t len;
        int r = st_endpoint_parse_tcp(address, &ss, &len);
        if (r < 0)
                return r;
        started_ns = st_now_ns();
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
        if (ss.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        daemon_ = MHD_start_daemon(flags, 0, NULL, NULL, answer, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &ss,
                                   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 10, MHD_OPTION_END);
        return daemon_ ? 0 : -EADDRINUSE;
}

void st_tel_server_stop(void) {
        if (daemon_)
                MHD_stop_daemon(daemon_);
        daemon_ = NULL;
}
