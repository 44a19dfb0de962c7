/* Who sent this request: the process at the other end of a receiver's connection, as the
 * kernel knows it, whatever the payload claims.
 *
 *   Unix socket   SO_PEERCRED at accept: the sender's pid (in strata's pid namespace: run
 *                 with the host's, hostPID in Kubernetes), uid, gid.
 *   TCP           a connection to one of strata's own ports from this host: the kernel
 *                 receiver records who connected (pid at connect(), in process context) in a
 *                 table keyed by the client's address and port, which a "connection owner
 *                 source" lets receivers read. Without the kernel receiver there is no source
 *                 and TCP senders stay unattributed.
 *
 * st_peer_attribute() then rewrites the resources of a request: process.pid becomes the
 * observed pid, and what the sender claimed, when it differs, is kept beside it
 * (strata.claimed.process.pid) rather than silently overwritten; strata.attribution.method
 * says how the pid was learnt. Processors (correlate) add the rest of the process's and its
 * container's identity from the process table. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "batch.h"

enum st_peer_method {
        ST_PEER_NONE,
        ST_PEER_UNIX,   /* "unix_peercred" */
        ST_PEER_TCP,    /* "kernel_connection" */
};
const char *st_peer_method_name(enum st_peer_method m);

struct st_peer {
        enum st_peer_method method;
        uint32_t pid, uid, gid;
        uint64_t start_ns; /* the process's start (CLOCK_BOOTTIME ns), 0 when unknown */
};

/* SO_PEERCRED of a connected Unix socket, and the start time of that pid from proc_root. */
int st_peer_from_unix_fd(int fd, const char *proc_root, struct st_peer *ret);

/* --- TCP: the connection owner source --------------------------------------------------- */

/* The client end of a connection to one of our ports. Addresses in network order, IPv4 in the
 * first 4 bytes; ports in host order. */
struct st_conn_key {
        uint16_t family; /* AF_INET, AF_INET6 */
        uint16_t client_port, server_port;
        uint8_t client_addr[16];
};

struct st_conn_owner {
        uint32_t pid, tid, uid;
        uint64_t start_ns, cgroup_id;
};

struct st_conn_owner_source {
        /* 0 and *ret, or -ENOENT. Called from receivers' threads. */
        int (*lookup)(void *data, const struct st_conn_key *k, struct st_conn_owner *ret);
        /* Starts (add) or stops following connections to port. */
        int (*watch_port)(void *data, uint16_t port, bool add);
        void *data;
};

/* The kernel receiver provides a source while it runs (src NULL: withdraws it; returns when no
 * lookup is using it any more). The ports watched so far are handed to a new source. */
void st_conn_owner_provide(const struct st_conn_owner_source *src);
/* Servers announce the TCP ports they accept on (and withdraw them when they stop). */
void st_conn_owner_watch_port(uint16_t port, bool add);
/* -ENODEV when no source runs, -ENOENT when the connection is not known. */
int st_conn_owner_lookup(const struct st_conn_key *k, struct st_conn_owner *ret);

/* The sender of a TCP connection from family/addr:client_port to our server_port. */
int st_peer_from_tcp(const struct st_conn_key *k, struct st_peer *ret);

/* Parses a gRPC peer string ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", v4-mapped IPv6 too)
 * into k (server_port left 0). -EINVAL for others ("unix:", "fd:7"). */
int st_conn_key_from_grpc_peer(const char *peer, struct st_conn_key *k);

/* --- attribution ----------------------------------------------------------------------------- */

/* Rewrites every resource of b (a writable batch) as sent by p. No-op for ST_PEER_NONE. */
int st_peer_attribute(st_batch *b, const struct st_peer *p);
