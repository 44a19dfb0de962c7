#include "ebpf_decode.h"

#include <errno.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static size_t fixed_size(enum st_ev_type t) {
        switch (t) {
        case ST_EV_FORK:
                return sizeof(struct st_ev_fork);
        case ST_EV_EXEC:
                return sizeof(struct st_ev_exec);
        case ST_EV_EXIT:
                return sizeof(struct st_ev_exit);
        case ST_EV_CONNECT:
        case ST_EV_ACCEPT:
        case ST_EV_CLOSE:
                return sizeof(struct st_ev_conn);
        case ST_EV_CODE:
                return sizeof(struct st_ev_code);
        case ST_EV_DNS:
                return sizeof(struct st_ev_dns);
        default:
                return 0;
        }
}

int kevent_decode(const void *data, size_t len, struct kevent *ret) {
        const struct st_ev_header *h = data;
        struct kevent ev = { 0 };

        /* ring-buffer records are 8-byte aligned; synthetic ones must be too */
        if (!data || len < sizeof(*h) || ((uintptr_t) data & 7))
                return -EBADMSG;
        size_t need = fixed_size((enum st_ev_type) h->type);
        if (!need || h->size < need || h->size > len)
                return -EBADMSG;
        ev.type = (enum st_ev_type) h->type;
        ev.h = h;
        switch (ev.type) {
        case ST_EV_FORK:
                ev.fork = data;
                break;
        case ST_EV_EXIT:
                ev.exit = data;
                break;
        case ST_EV_EXEC:
                ev.exec = data;
                if ((size_t) ev.exec->path_len + ev.exec->args_len != h->size - need ||
                    ev.exec->path_len > ST_PATH_MAX || ev.exec->args_len > ST_ARGS_MAX)
                        return -EBADMSG;
                ev.path = (const char *) data + need;
                ev.path_len = ev.exec->path_len;
                ev.args = ev.path + ev.path_len;
                ev.args_len = ev.exec->args_len;
                break;
        case ST_EV_CONNECT:
        case ST_EV_ACCEPT:
        case ST_EV_CLOSE:
                ev.conn = data;
                if ((ev.conn->family != AF_INET && ev.conn->family != AF_INET6) ||
                    (ev.conn->direction != ST_CONN_OUTBOUND && ev.conn->direction != ST_CONN_INBOUND))
                        return -EBADMSG;
                break;
        case ST_EV_CODE:
                ev.code = data;
                if ((size_t) ev.code->path_len != h->size - need || ev.code->path_len > ST_CODE_PATH_MAX ||
                    (ev.code->kind != ST_CODE_MMAP_EXEC && ev.code->kind != ST_CODE_OPEN))
                        return -EBADMSG;
                ev.path = (const char *) data + need;
                ev.path_len = ev.code->path_len;
                break;
        case ST_EV_DNS:
                ev.dns = data;
                if ((ev.dns->family != AF_INET && ev.dns->family != AF_INET6) || ev.dns->payload_len > ST_DNS_PAYLOAD_MAX)
                        return -EBADMSG;
                break;
        default:
                return -EBADMSG;
        }
        *ret = ev;
        return 0;
}

size_t kevent_code_path(const char *c, size_t len, char *out, size_t cap) {
        size_t n = 0, end = len;
        if (!cap)
                return 0;
        /* components are leaf first: walk them from the last (the top directory) down */
        while (end > 0) {
                size_t start = end - 1; /* end - 1 is the NUL of the component, or its cut end */
                if (c[start] == '\0' && start > 0)
                        start--;
                while (start > 0 && c[start - 1] != '\0')
                        start--;
                size_t l = strnlen(c + start, end - start);
                if (n + 1 < cap)
                        out[n++] = '/';
                for (size_t i = 0; i < l && n + 1 < cap; i++)
                        out[n++] = c[start + i];
                end = start;
        }
        out[n] = '\0';
        return n;
}

const char *kevent_addr(unsigned family, const __u8 addr[16], char *out, size_t cap) {
        static const __u8 v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        /* a dual-stack socket talking IPv4: the address as IPv4, as the peer knows itself */
        if (family == AF_INET6 && memcmp(addr, v4_mapped, sizeof(v4_mapped)) == 0) {
                family = AF_INET;
                addr += 12;
        }
        if (family != AF_INET6 && cap >= 16) {
                /* by hand: inet_ntop formats IPv4 with sprintf, a tenth of the reader's CPU in
                 * a connection storm */
                char *p = out;
                for (int i = 0; i < 4; i++) {
                        unsigned v = addr[i];
                        if (v >= 100)
                                *p++ = (char) ('0' + v / 100);
                        if (v >= 10)
                                *p++ = (char) ('0' + v / 10 % 10);
                        *p++ = (char) ('0' + v % 10);
                        *p++ = i < 3 ? '.' : '\0';
                }
                return out;
        }
        if (!inet_ntop(family == AF_INET6 ? AF_INET6 : AF_INET, addr, out, (socklen_t) cap))
                snprintf(out, cap, "?");
        return out;
}

size_t kevent_command_line(const char *args, size_t args_len, char *out, size_t cap) {
        size_t n = 0;
        if (!cap)
                return 0;
        /* trailing NULs end the last argument; inner ones separate arguments */
        while (args_len && args[args_len - 1] == '\0')
                args_len--;
        for (size_t i = 0; i < args_len && n + 1 < cap; i++)
                out[n++] = args[i] ? args[i] : ' ';
        out[n] = '\0';
        return n;
}

static const char *qtype_name(uint16_t t, char *buf, size_t cap) {
        static const struct {
                uint16_t t;
                const char *n;
        } names[] = { { 1, "A" }, { 2, "NS" }, { 5, "CNAME" }, { 6, "SOA" }, { 12, "PTR" }, { 15, "MX" }, { 16, "TXT" },
                      { 28, "AAAA" }, { 33, "SRV" }, { 64, "SVCB" }, { 65, "HTTPS" }, { 255, "ANY" } };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (names[i].t == t)
                        return names[i].n;
        snprintf(buf, cap, "TYPE%u", (unsigned) t);
        return buf;
}

int kevent_dns_question(const uint8_t *p, size_t n, char *name, size_t cap, char *type, size_t type_cap, uint16_t *ret_id) {
        char tbuf[16];
        if (n < 12 || cap < 2)
                return -EBADMSG;
        uint16_t id = (uint16_t) (p[0] << 8 | p[1]), flags = (uint16_t) (p[2] << 8 | p[3]), qd = (uint16_t) (p[4] << 8 | p[5]);
        if ((flags & 0x8000) || ((flags >> 11) & 0xf) != 0 || qd == 0) /* a standard query with a question */
                return -EBADMSG;
        size_t i = 12, w = 0;
        for (;;) {
                if (i >= n)
                        return -EBADMSG;
                uint8_t l = p[i++];
                if (l == 0)
                        break;
                if (l & 0xc0 || i + l > n || w + l + 1 >= cap) /* no compression in a question; cut names refused */
                        return -EBADMSG;
                if (w)
                        name[w++] = '.';
                for (uint8_t k = 0; k < l; k++) {
                        unsigned char c = p[i + k];
                        name[w++] = (char) (c >= 0x21 && c <= 0x7e ? c : '?');
                }
                i += l;
        }
        if (i + 4 > n)
                return -EBADMSG;
        if (!w)
                name[w++] = '.'; /* the root */
        name[w] = '\0';
        snprintf(type, type_cap, "%s", qtype_name((uint16_t) (p[i] << 8 | p[i + 1]), tbuf, sizeof(tbuf)));
        *ret_id = id;
        return 0;
}
