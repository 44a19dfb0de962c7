#include "ebpf_records.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SCOPE_NAME "strata/ebpf"

struct krec_group {
        uint32_t pid;
        uint64_t start_ns;
        st_resource_logs *rl;
        st_log_record **recs; /* malloc'd while building, copied into the arena by krec_take */
        size_t n, cap;
};

void krec_clock_sync(struct krec_builder *kb) {
        struct timespec rt, bt;
        clock_gettime(CLOCK_REALTIME, &rt);
        clock_gettime(CLOCK_BOOTTIME, &bt);
        kb->boot_to_unix_ns = ((int64_t) rt.tv_sec - bt.tv_sec) * 1000000000 + (rt.tv_nsec - bt.tv_nsec);
}

/* --- attributes --------------------------------------------------------------------------- */

struct kvs {
        st_arena *a;
        st_key_value **v;
        size_t n, cap;
};

static st_any_value *kv_new(struct kvs *k, const char *key) {
        struct pair {
                st_key_value kv;
                st_any_value v;
        } *p;
        if (k->n == k->cap || !(p = st_arena_alloc(k->a, sizeof(*p))))
                return NULL;
        opentelemetry__proto__common__v1__key_value__init(&p->kv);
        opentelemetry__proto__common__v1__any_value__init(&p->v);
        p->kv.key = (char *) key; /* static strings: the arena batch never frees keys */
        p->kv.value = &p->v;
        k->v[k->n++] = &p->kv;
        return &p->v;
}

static void kv_str(struct kvs *k, const char *key, const char *s, size_t len) {
        st_any_value *v;
        char *c;
        if (!s || !(c = st_arena_alloc(k->a, len + 1)) || !(v = kv_new(k, key)))
                return;
        memcpy(c, s, len);
        c[len] = '\0';
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v->string_value = c;
}

static void kv_cstr(struct kvs *k, const char *key, const char *s) {
        if (s)
                kv_str(k, key, s, strlen(s));
}

static void kv_int(struct kvs *k, const char *key, int64_t i) {
        st_any_value *v = kv_new(k, key);
        if (!v)
                return;
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        v->int_value = i;
}

static void kv_bool(struct kvs *k, const char *key, bool b) {
        st_any_value *v = kv_new(k, key);
        if (!v)
                return;
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        v->bool_value = b;
}

/* argv as an array of strings (process.command_args). */
static void kv_args(struct kvs *k, const char *key, const char *args, size_t len) {
        size_t n = 0;
        for (size_t i = 0; i < len; i++)
                n += args[i] == '\0';
        if (len && args[len - 1] != '\0')
                n++; /* a cut last argument */
        st_array_value *arr = st_arena_alloc(k->a, sizeof(*arr));
        st_any_value **vals = n ? st_arena_alloc(k->a, n * sizeof(*vals)) : NULL;
        st_any_value *items = n ? st_arena_alloc(k->a, n * sizeof(*items)) : NULL;
        st_any_value *v;
        if (!arr || (n && (!vals || !items)) || !(v = kv_new(k, key)))
                return;
        opentelemetry__proto__common__v1__array_value__init(arr);
        size_t j = 0;
        for (size_t i = 0; i < len && j < n;) {
                size_t l = strnlen(args + i, len - i);
                char *c = st_arena_alloc(k->a, l + 1);
                if (!c)
                        return;
                memcpy(c, args + i, l);
                c[l] = '\0';
                opentelemetry__proto__common__v1__any_value__init(&items[j]);
                items[j].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
                items[j].string_value = c;
                vals[j] = &items[j];
                j++;
                i += l + 1;
        }
        arr->values = vals;
        arr->n_values = j;
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
        v->array_value = arr;
}

/* --- groups --------------------------------------------------------------------------------- */

static int ensure_batch(struct krec_builder *kb) {
        if (kb->batch)
                return 0;
        int r = st_batch_new(ST_LOGS, &kb->batch);
        if (r < 0)
                return r;
        if (!kb->boot_to_unix_ns)
                krec_clock_sync(kb);
        return 0;
}

static st_resource_logs *new_resource(st_arena *a, uint32_t pid, const struct st_process *proc) {
        st_resource_logs *rl = st_arena_alloc(a, sizeof(*rl));
        st_resource *res = st_arena_alloc(a, sizeof(*res));
        st_scope_logs *sl = st_arena_alloc(a, sizeof(*sl));
        st_scope_logs **slv = st_arena_alloc(a, sizeof(*slv));
        st_scope *scope = st_arena_alloc(a, sizeof(*scope));
        st_key_value **attrs = st_arena_alloc(a, 12 * sizeof(*attrs));
        if (!rl || !res || !sl || !slv || !scope || !attrs)
                return NULL;
        opentelemetry__proto__logs__v1__resource_logs__init(rl);
        opentelemetry__proto__resource__v1__resource__init(res);
        opentelemetry__proto__logs__v1__scope_logs__init(sl);
        opentelemetry__proto__common__v1__instrumentation_scope__init(scope);
        scope->name = (char *) SCOPE_NAME;
        scope->version = (char *) STRATA_VERSION;
        sl->scope = scope;
        *slv = sl;
        rl->resource = res;
        rl->scope_logs = slv;
        rl->n_scope_logs = 1;

        struct kvs k = { .a = a, .v = attrs, .cap = 12 };
        kv_int(&k, "process.pid", pid);
        /* the pid is the kernel's: processors may trust it (peer.h) */
        kv_cstr(&k, "strata.attribution.method", "kernel");
        if (proc) {
                kv_int(&k, "process.parent_pid", proc->ppid);
                if (proc->comm[0])
                        kv_cstr(&k, "process.executable.name", proc->comm);
                kv_cstr(&k, "process.executable.path", proc->exe);
                kv_cstr(&k, "process.command_line", proc->cmdline);
                kv_int(&k, "process.user.id", proc->uid);
                if (proc->cgroup_id)
                        kv_int(&k, "strata.cgroup.id", (int64_t) proc->cgroup_id);
                if (st_container_known(&proc->container)) {
                        kv_cstr(&k, "container.id", proc->container.id);
                        kv_cstr(&k, "container.runtime.name", proc->container.runtime);
                        if (proc->container.pod_uid[0])
                                kv_cstr(&k, "k8s.pod.uid", proc->container.pod_uid);
                }
        }
        res->attributes = attrs;
        res->n_attributes = k.n;
        return rl;
}

static struct krec_group *group_for(struct krec_builder *kb, uint32_t pid, uint64_t start_ns, bool fresh,
                                    const struct st_process *proc) {
        if (!fresh)
                for (size_t i = kb->n_groups; i-- > 0;)
                        if (kb->groups[i].pid == pid && kb->groups[i].start_ns == start_ns)
                                return &kb->groups[i];
        if (kb->n_groups == kb->cap_groups) {
                size_t cap = kb->cap_groups ? 2 * kb->cap_groups : 16;
                struct krec_group *g = realloc(kb->groups, cap * sizeof(*g));
                if (!g)
                        return NULL;
                kb->groups = g;
                kb->cap_groups = cap;
        }
        struct krec_group *g = &kb->groups[kb->n_groups];
        *g = (struct krec_group) { .pid = pid, .start_ns = start_ns };
        if (!(g->rl = new_resource(&kb->batch->arena, pid, proc)))
                return NULL;
        kb->n_groups++;
        return g;
}

static int group_push(struct krec_group *g, st_log_record *rec) {
        if (g->n == g->cap) {
                size_t cap = g->cap ? 2 * g->cap : 8;
                st_log_record **v = realloc(g->recs, cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                g->recs = v;
                g->cap = cap;
        }
        g->recs[g->n++] = rec;
        return 0;
}

static st_log_record *new_record(struct krec_builder *kb, const char *event, uint64_t ts_boot_ns, struct kvs *k,
                                 size_t max_attrs) {
        st_arena *a = &kb->batch->arena;
        st_log_record *rec = st_arena_alloc(a, sizeof(*rec));
        st_key_value **attrs = st_arena_alloc(a, max_attrs * sizeof(*attrs));
        if (!rec || !attrs)
                return NULL;
        opentelemetry__proto__logs__v1__log_record__init(rec);
        rec->time_unix_nano = (uint64_t) ((int64_t) ts_boot_ns + kb->boot_to_unix_ns);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        rec->observed_time_unix_nano = (uint64_t) now.tv_sec * 1000000000u + (uint64_t) now.tv_nsec;
        rec->event_name = (char *) event;
        rec->severity_number = OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO;
        rec->attributes = attrs;
        *k = (struct kvs) { .a = a, .v = attrs, .cap = max_attrs };
        kv_cstr(k, "event.name", event);
        return rec;
}

int krec_add(struct krec_builder *kb, const struct kevent *ev, const struct st_process *proc) {
        const struct st_ev_header *h = ev->h;
        struct krec_group *g;
        struct kvs k;
        st_log_record *rec;
        int r = ensure_batch(kb);
        if (r < 0)
                return r;
        st_arena *a = &kb->batch->arena;

        switch (ev->type) {
        case ST_EV_FORK:
                /* the parent forked: its resource, the child in the attributes */
                g = group_for(kb, h->pid, h->start_ns, false, proc);
                if (!g || !(rec = new_record(kb, "process.fork", h->ts_ns, &k, 4)))
                        return -ENOMEM;
                kv_int(&k, "process.pid", ev->fork->child_pid);
                kv_int(&k, "process.parent_pid", h->pid);
                kv_int(&k, "thread.id", h->tid);
                break;
        case ST_EV_EXEC: {
                g = group_for(kb, h->pid, h->start_ns, true, proc);
                if (!g || !(rec = new_record(kb, "process.exec", h->ts_ns, &k, 13)))
                        return -ENOMEM;
                char *line = st_arena_alloc(a, ev->args_len + 1);
                kv_int(&k, "process.pid", h->pid);
                kv_int(&k, "process.parent_pid", ev->exec->ppid);
                kv_str(&k, "process.executable.path", ev->path, ev->path_len);
                kv_str(&k, "process.executable.name", h->comm, strnlen(h->comm, sizeof(h->comm)));
                if (line)
                        kv_str(&k, "process.command_line", line,
                               kevent_command_line(ev->args, ev->args_len, line, ev->args_len + 1));
                kv_args(&k, "process.command_args", ev->args, ev->args_len);
                kv_int(&k, "process.user.id", h->uid);
                kv_int(&k, "thread.id", h->tid);
                if (ev->exec->exe_inode)
                        kv_int(&k, "strata.process.executable.inode", (int64_t) ev->exec->exe_inode);
                if (ev->exec->old_pid != h->pid)
                        kv_int(&k, "strata.process.old_pid", ev->exec->old_pid);
                if (ev->exec->args_truncated)
                        kv_bool(&k, "strata.process.args_truncated", true);
                if (ev->exec->path_truncated)
                        kv_bool(&k, "strata.process.path_truncated", true);
                break;
        }
        case ST_EV_EXIT: {
                g = group_for(kb, h->pid, h->start_ns, false, proc);
                if (!g || !(rec = new_record(kb, "process.exit", h->ts_ns, &k, 6)))
                        return -ENOMEM;
                int status = ev->exit->exit_code;
                kv_int(&k, "process.pid", h->pid);
                if (WIFSIGNALED(status))
                        kv_int(&k, "strata.process.exit.signal", WTERMSIG(status));
                else
                        kv_int(&k, "process.exit.code", WEXITSTATUS(status));
                if (h->start_ns && h->ts_ns >= h->start_ns)
                        kv_int(&k, "strata.process.duration_ns", (int64_t) (h->ts_ns - h->start_ns));
                kv_int(&k, "thread.id", h->tid);
                break;
        }
        case ST_EV_CONNECT:
        case ST_EV_ACCEPT:
        case ST_EV_CLOSE: {
                static const char *const names[] = { [ST_EV_CONNECT] = "network.connect", [ST_EV_ACCEPT] = "network.accept",
                                                     [ST_EV_CLOSE] = "network.close" };
                const struct st_ev_conn *c = ev->conn;
                char addr[64];
                g = group_for(kb, h->pid, h->start_ns, false, proc);
                if (!g || !(rec = new_record(kb, names[ev->type], h->ts_ns, &k, 15)))
                        return -ENOMEM;
                kv_int(&k, "process.pid", h->pid);
                kv_int(&k, "thread.id", h->tid);
                kv_cstr(&k, "network.transport", "tcp");
                kv_cstr(&k, "network.type", c->family == AF_INET6 ? "ipv6" : "ipv4");
                kv_cstr(&k, "network.peer.address", kevent_addr(c->family, c->remote_addr, addr, sizeof(addr)));
                kv_int(&k, "network.peer.port", c->remote_port);
                kv_cstr(&k, "network.local.address", kevent_addr(c->family, c->local_addr, addr, sizeof(addr)));
                kv_int(&k, "network.local.port", c->local_port);
                kv_cstr(&k, "strata.network.direction", c->direction == ST_CONN_INBOUND ? "inbound" : "outbound");
                if (kb->net_sample_every > 1)
                        kv_int(&k, "strata.sample_every", kb->net_sample_every);
                if (ev->type == ST_EV_CLOSE) {
                        kv_int(&k, "strata.network.bytes_sent", (int64_t) c->bytes_sent);
                        kv_int(&k, "strata.network.bytes_received", (int64_t) c->bytes_received);
                        kv_int(&k, "strata.network.duration_ns", (int64_t) c->duration_ns);
                }
                break;
        }
        case ST_EV_CODE: {
                char path[ST_CODE_PATH_MAX + 2];
                size_t n = kevent_code_path(ev->path, ev->path_len, path, sizeof(path));
                g = group_for(kb, h->pid, h->start_ns, false, proc);
                if (!g || !(rec = new_record(kb, "code.load", h->ts_ns, &k, 8)))
                        return -ENOMEM;
                const char *base = strrchr(path, '/');
                kv_int(&k, "process.pid", h->pid);
                kv_str(&k, "file.path", path, n);
                kv_cstr(&k, "file.name", base ? base + 1 : path);
                kv_int(&k, "strata.file.inode", (int64_t) ev->code->inode);
                kv_cstr(&k, "strata.code.load_kind", ev->code->kind == ST_CODE_MMAP_EXEC ? "mmap_exec" : "open");
                if (ev->code->path_truncated)
                        kv_bool(&k, "strata.file.path_truncated", true);
                kv_int(&k, "thread.id", h->tid);
                break;
        }
        case ST_EV_DNS: {
                const struct st_ev_dns *d = ev->dns;
                char name[260], type[16], addr[64];
                uint16_t id;
                if (kevent_dns_question(d->payload, d->payload_len, name, sizeof(name), type, sizeof(type), &id) < 0)
                        return 0; /* a datagram to port 53 that is no DNS query: not a record */
                g = group_for(kb, h->pid, h->start_ns, false, proc);
                if (!g || !(rec = new_record(kb, "dns.query", h->ts_ns, &k, 10)))
                        return -ENOMEM;
                kv_int(&k, "process.pid", h->pid);
                kv_int(&k, "thread.id", h->tid);
                kv_cstr(&k, "dns.question.name", name);
                kv_cstr(&k, "strata.dns.question.type", type);
                kv_int(&k, "strata.dns.id", id);
                kv_cstr(&k, "network.transport", "udp");
                kv_cstr(&k, "network.type", d->family == AF_INET6 ? "ipv6" : "ipv4");
                kv_cstr(&k, "network.peer.address", kevent_addr(d->family, d->remote_addr, addr, sizeof(addr)));
                kv_int(&k, "network.peer.port", d->remote_port);
                break;
        }
        default:
                return -EINVAL;
        }
        rec->n_attributes = k.n;
        if ((r = group_push(g, rec)) < 0)
                return r;
        kb->records++;
        return 0;
}

int krec_add_gap(struct krec_builder *kb, const char *what, uint64_t lost, uint64_t first_ns, uint64_t last_ns) {
        struct kvs k;
        st_log_record *rec;
        int r = ensure_batch(kb);
        if (r < 0)
                return r;
        uint32_t self = (uint32_t) getpid();
        struct krec_group *g = group_for(kb, self, 0, false, NULL);
        if (!g || !(rec = new_record(kb, "strata.gap", first_ns, &k, 5)))
                return -ENOMEM;
        rec->severity_number = OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_WARN;
        kv_cstr(&k, "strata.gap.cause", what);
        kv_int(&k, "strata.gap.lost_events", (int64_t) lost);
        kv_int(&k, "strata.gap.start_time_unix_nano", (int64_t) first_ns + kb->boot_to_unix_ns);
        kv_int(&k, "strata.gap.end_time_unix_nano", (int64_t) last_ns + kb->boot_to_unix_ns);
        rec->n_attributes = k.n;
        if ((r = group_push(g, rec)) < 0)
                return r;
        kb->records++;
        kb->gap_records++;
        kb->gap_lost += lost;
        return 0;
}

static void clear_groups(struct krec_builder *kb) {
        for (size_t i = 0; i < kb->n_groups; i++)
                free(kb->groups[i].recs);
        kb->n_groups = 0;
        kb->records = 0;
        kb->gap_records = 0;
        kb->gap_lost = 0;
}

st_batch *krec_take(struct krec_builder *kb) {
        st_batch *b = kb->batch;
        if (!b)
                return NULL;
        st_logs_req *req = (st_logs_req *) b->req;
        st_arena *a = &b->arena;
        st_resource_logs **rls = kb->n_groups ? st_arena_alloc(a, kb->n_groups * sizeof(*rls)) : NULL;
        size_t n = 0;
        for (size_t i = 0; i < kb->n_groups; i++) {
                struct krec_group *g = &kb->groups[i];
                st_log_record **recs = rls && g->n ? st_arena_alloc(a, g->n * sizeof(*recs)) : NULL;
                if (!recs) {
                        kb->dropped += g->n; /* out of memory: counted by the caller */
                        continue;
                }
                memcpy(recs, g->recs, g->n * sizeof(*recs));
                g->rl->scope_logs[0]->log_records = recs;
                g->rl->scope_logs[0]->n_log_records = g->n;
                rls[n++] = g->rl;
        }
        req->resource_logs = rls;
        req->n_resource_logs = n;
        b->pid_source = ST_PIDS_KERNEL;
        st_batch_recount(b);
        clear_groups(kb);
        kb->batch = NULL;
        if (!b->items) {
                st_batch_unref(b);
                return NULL;
        }
        return b;
}

void krec_reset(struct krec_builder *kb) {
        clear_groups(kb);
        st_batch_unref(kb->batch);
        kb->batch = NULL;
        free(kb->groups);
        kb->groups = NULL;
        kb->cap_groups = 0;
}
