/* Endpoint strings from config: "host:port", "[v6]:port", ":port", "unix:///path". */
#pragma once
#include <stdbool.h>
#include <sys/socket.h>

/* Resolves a TCP "host:port" (numeric or by name) into a socket address. -EINVAL when malformed. */
int st_endpoint_parse_tcp(const char *endpoint, struct sockaddr_storage *ret, socklen_t *ret_len);
/* True for "unix:///path" (ret_path points into endpoint, at the path) */
bool st_endpoint_is_unix(const char *endpoint, const char **ret_path);
/* Checks syntax only (no resolution): host:port with port 0..65535, or unix:///absolute. */
int st_endpoint_check(const char *endpoint);
