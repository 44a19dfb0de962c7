/* Unix socket files: replacing the one a previous run left behind (but never one that a live
 * process still serves, nor a file that is not a socket), and listening on one. */
#pragma once
#include <sys/types.h>

/* Removes a socket file that nobody listens on any more. -EADDRINUSE when a process still
 * accepts connections on it, -EEXIST when the path exists and is not a socket. */
int st_unix_remove_stale(const char *path);
/* A listening, non-blocking Unix socket at path (a stale one is replaced) with the given mode. */
int st_unix_listen(const char *path, mode_t mode, int *ret_fd);
/* An octal file mode as written in a config ("0660"): 1 to 4 octal digits, else -EINVAL. */
int st_parse_mode(const char *s, mode_t *ret);
