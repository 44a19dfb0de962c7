/* Kernel records (bpf/events.h) → checked, typed views. No BPF here: the reader thread calls
 * this on ring-buffer bytes, and the unit tests on synthetic ones. */
#pragma once
#include <linux/types.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/events.h"

struct kevent {
        enum st_ev_type type;
        const struct st_ev_header *h;
        union {
                const struct st_ev_fork *fork;
                const struct st_ev_exec *exec;
                const struct st_ev_exit *exit;
                const struct st_ev_conn *conn; /* CONNECT, ACCEPT, CLOSE */
                const struct st_ev_code *code;
                const struct st_ev_dns *dns;
        };
        /* ST_EV_EXEC: borrowed from the record, not NUL-terminated.
         * ST_EV_CODE: the path's components, leaf first, each NUL-terminated (kevent_code_path). */
        const char *path;
        size_t path_len;
        const char *args; /* argv, each argument NUL-terminated (the last may be cut) */
        size_t args_len;
};

/* Checks one record of len bytes (sizes, lengths, type) and fills *ret with views into it.
 * -EBADMSG when it is short, inconsistent or of an unknown type (the reader counts it as a
 * decode error); data must stay valid while *ret is used. */
int kevent_decode(const void *data, size_t len, struct kevent *ret);

/* The question of a DNS query (a DNS event's payload, n bytes): the name ("example.com"), its
 * type ("A", "AAAA", "TYPE99") and the query id. -EBADMSG when the bytes are no standard query
 * with a whole question (a datagram to port 53 need not be DNS). */
int kevent_dns_question(const uint8_t *p, size_t n, char *name, size_t cap, char *type, size_t type_cap, uint16_t *ret_id);

/* A code event's path, "/a/b/c", from its leaf-first components, into out (cap bytes,
 * NUL-terminated; cut at cap). Returns the length, or 0 when there are no components. */
size_t kevent_code_path(const char *components, size_t len, char *out, size_t cap);

/* An address of a connection event as text ("127.0.0.1", "::1"), into out (>= 46 bytes). */
const char *kevent_addr(unsigned family, const __u8 addr[16], char *out, size_t cap);

/* argv as one command line: arguments joined by spaces (the OpenTelemetry
 * process.command_line), into out of cap bytes, NUL-terminated. Returns the length. */
size_t kevent_command_line(const char *args, size_t args_len, char *out, size_t cap);
