#include "peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "otlp.h"
#include "otlp_attr.h"
#include "process_table.h"

const char *st_peer_method_name(enum st_peer_method m) {
        switch (m) {
        case ST_PEER_UNIX: return "unix_peercred";
        case ST_PEER_TCP: return "kernel_connection";
        case ST_PEER_NONE: break;
        }
        return "none";
}

int st_peer_from_unix_fd(int fd, const char *proc_root, struct st_peer *ret) {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return -errno;
        if (cred.pid <= 0)
                return -ESRCH; /* a sender in another pid namespace that we cannot see */
        struct st_peer p = { .method = ST_PEER_UNIX, .pid = (uint32_t) cred.pid, .uid = cred.uid, .gid = cred.gid };
        (void) st_proc_start_ns(proc_root, p.pid, &p.start_ns); /* gone already: 0, "whoever has the pid" */
        *ret = p;
        return 0;
}

/* --- the connection owner source ------------------------------------------------------------- */

#define MAX_PORTS 16

static struct {
        pthread_rwlock_t lock; /* readers: lookups; writer: provide/withdraw, port changes */
        struct st_conn_owner_source src;
        bool have_src;
        uint16_t ports[MAX_PORTS];
        unsigned port_refs[MAX_PORTS];
} owners = { .lock = PTHREAD_RWLOCK_INITIALIZER };

void st_conn_owner_provide(const struct st_conn_owner_source *src) {
        pthread_rwlock_wrlock(&owners.lock);
        owners.have_src = src != NULL;
        if (src) {
                owners.src = *src;
                for (size_t i = 0; i < MAX_PORTS; i++)
                        if (owners.port_refs[i])
                                (void) src->watch_port(src->data, owners.ports[i], true);
        }
        pthread_rwlock_unlock(&owners.lock);
}

void st_conn_owner_watch_port(uint16_t port, bool add) {
        pthread_rwlock_wrlock(&owners.lock);
        size_t i, free_slot = MAX_PORTS;
        for (i = 0; i < MAX_PORTS; i++) {
                if (owners.port_refs[i] && owners.ports[i] == port)
                        break;
                if (!owners.port_refs[i] && free_slot == MAX_PORTS)
                        free_slot = i;
        }
        bool changed = false;
        if (add) {
                if (i == MAX_PORTS && free_slot < MAX_PORTS) {
                        owners.ports[free_slot] = port;
                        owners.port_refs[free_slot] = 1;
                        changed = true;
                } else if (i < MAX_PORTS)
                        owners.port_refs[i]++;
        } else if (i < MAX_PORTS && --owners.port_refs[i] == 0)
                changed = true;
        if (changed && owners.have_src)
                (void) owners.src.watch_port(owners.src.data, port, add);
        pthread_rwlock_unlock(&owners.lock);
}

int st_conn_owner_lookup(const struct st_conn_key *k, struct st_conn_owner *ret) {
        int r = -ENODEV;
        pthread_rwlock_rdlock(&owners.lock);
        if (owners.have_src)
                r = owners.src.lookup(owners.src.data, k, ret);
        pthread_rwlock_unlock(&owners.lock);
        return r;
}

int st_peer_from_tcp(const struct st_conn_key *k, struct st_peer *ret) {
        struct st_conn_owner o;
        int r = st_conn_owner_lookup(k, &o);
        if (r < 0)
                return r;
        *ret = (struct st_peer) { .method = ST_PEER_TCP, .pid = o.pid, .uid = o.uid, .start_ns = o.start_ns };
        return 0;
}

int st_conn_key_from_grpc_peer(const char *peer, struct st_conn_key *k) {
        char host[INET6_ADDRSTRLEN + 1];
        const char *h, *end, *port;
        struct st_conn_key key = { 0 };

        if (strncmp(peer, "ipv4:", 5) == 0) {
                h = peer + 5;
                end = strrchr(h, ':');
                key.family = AF_INET;
                port = end ? end + 1 : NULL;
        } else if (strncmp(peer, "ipv6:[", 6) == 0 || strncasecmp(peer, "ipv6:%5B", 8) == 0) {
                /* gRPC 1.51 percent-encodes the brackets: "ipv6:%5B::1%5D:5000" */
                bool encoded = peer[5] == '%';
                h = peer + (encoded ? 8 : 6);
                end = encoded ? strcasestr(h, "%5D:") : strstr(h, "]:");
                key.family = AF_INET6;
                port = end ? end + (encoded ? 4 : 2) : NULL;
        } else
                return -EINVAL;
        if (!end || (size_t) (end - h) >= sizeof(host))
                return -EINVAL;
        memcpy(host, h, (size_t) (end - h));
        host[end - h] = '\0';
        char *pe;
        unsigned long pn = strtoul(port, &pe, 10);
        if (*port == '\0' || *pe != '\0' || pn == 0 || pn > 65535)
                return -EINVAL;
        key.client_port = (uint16_t) pn;
        if (inet_pton(key.family, host, key.client_addr) != 1)
                return -EINVAL;
        static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        if (key.family == AF_INET6 && memcmp(key.client_addr, v4mapped, 12) == 0) {
                /* a dual-stack listener sees IPv4 clients so; their sockets are AF_INET */
                key.family = AF_INET;
                memmove(key.client_addr, key.client_addr + 12, 4);
                memset(key.client_addr + 4, 0, 12);
        }
        *k = key;
        return 0;
}

/* --- attribution ------------------------------------------------------------------------------- */

/* process.pid as the sender wrote it: an int, or a string of digits. */
static bool claimed_pid(const st_any_value *v, int64_t *ret) {
        if (!v)
                return false;
        if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE) {
                *ret = v->int_value;
                return true;
        }
        if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE && v->string_value) {
                char *end;
                long long n = strtoll(v->string_value, &end, 10);
                if (*v->string_value && !*end) {
                        *ret = n;
                        return true;
                }
        }
        return false;
}

static int attribute_resource(st_arena *a, st_resource *res, const struct st_peer *p, st_key_value *pid_kv,
                              st_key_value *method_kv) {
        size_t n = res->n_attributes, m = 0;
        st_key_value **v = st_arena_alloc(a, (n + 3) * sizeof(*v));
        if (!v)
                return -ENOMEM;
        int64_t claimed = 0;
        bool have_claim = false;
        for (size_t i = 0; i < n; i++) {
                st_key_value *kv = res->attributes[i];
                if (!kv || !kv->key)
                        continue;
                if (strcmp(kv->key, "process.pid") == 0) {
                        have_claim = claimed_pid(kv->value, &claimed) || have_claim;
                        continue;
                }
                /* ours to say: a sender cannot set them */
                if (strcmp(kv->key, "strata.attribution.method") == 0 || strcmp(kv->key, "strata.claimed.process.pid") == 0)
                        continue;
                v[m++] = kv;
        }
        v[m++] = pid_kv;
        v[m++] = method_kv;
        if (have_claim && claimed != (int64_t) p->pid) {
                st_key_value *c = st_kv_int(a, "strata.claimed.process.pid", claimed);
                if (!c)
                        return -ENOMEM;
                v[m++] = c;
        }
        res->attributes = v;
        res->n_attributes = m;
        return 0;
}

int st_peer_attribute(st_batch *b, const struct st_peer *p) {
        if (p->method == ST_PEER_NONE)
                return 0;
        enum st_signal s = b->signal;
        st_arena *a = &b->arena;
        /* shared by every resource of the request: KeyValues are never written once listed */
        st_key_value *pid_kv = st_kv_int(a, "process.pid", p->pid);
        st_key_value *method_kv = st_kv_static(a, "strata.attribution.method", st_peer_method_name(p->method));
        if (!pid_kv || !method_kv)
                return -ENOMEM;
        for (size_t i = 0; i < st_req_n(s, b->req); i++) {
                void *entry = st_req_v(s, b->req)[i];
                st_resource *res = st_res_resource(s, entry);
                if (!res) {
                        if (!(res = st_arena_alloc(a, sizeof(*res))))
                                return -ENOMEM;
                        opentelemetry__proto__resource__v1__resource__init(res);
                        ST_FIELD(entry, st_signals[s].res_resource, st_resource *) = res;
                }
                int r = attribute_resource(a, res, p, pid_kv, method_kv);
                if (r < 0)
                        return r;
        }
        return 0;
}
