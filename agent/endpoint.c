#include "endpoint.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool st_endpoint_is_unix(const char *endpoint, const char **ret_path) {
        if (strncmp(endpoint, "unix://", 7) != 0)
                return false;
        if (ret_path)
                *ret_path = endpoint + 7;
        return true;
}

static int split(const char *endpoint, char *host, size_t hostsz, char *port, size_t portsz) {
        const char *colon;
        if (endpoint[0] == '[') {
                const char *close = strchr(endpoint, ']');
                if (!close || close[1] != ':' || (size_t) (close - endpoint - 1) >= hostsz)
                        return -EINVAL;
                snprintf(host, hostsz, "%.*s", (int) (close - endpoint - 1), endpoint + 1);
                colon = close + 1;
        } else {
                colon = strrchr(endpoint, ':');
                if (!colon || (size_t) (colon - endpoint) >= hostsz || memchr(endpoint, ':', (size_t) (colon - endpoint)))
                        return -EINVAL;
                snprintf(host, hostsz, "%.*s", (int) (colon - endpoint), endpoint);
        }
        if (strlen(colon + 1) == 0 || strlen(colon + 1) >= portsz)
                return -EINVAL;
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (*end || p < 0 || p > 65535)
                return -EINVAL;
        snprintf(port, portsz, "%s", colon + 1);
        return 0;
}

int st_endpoint_check(const char *endpoint) {
        const char *path;
        char host[256], port[16];
        if (st_endpoint_is_unix(endpoint, &path))
                return path[0] == '/' && path[1] ? 0 : -EINVAL;
        return split(endpoint, host, sizeof(host), port, sizeof(port));
}

int st_endpoint_parse_tcp(const char *endpoint, struct sockaddr_storage *ret, socklen_t *ret_len) {
        char host[256], port[16];
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res = NULL;
        int r = split(endpoint, host, sizeof(host), port, sizeof(port));
        if (r < 0)
                return r;
        if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0 || !res)
                return -EADDRNOTAVAIL;
        memcpy(ret, res->ai_addr, res->ai_addrlen);
        *ret_len = res->ai_addrlen;
        freeaddrinfo(res);
        return 0;
}
