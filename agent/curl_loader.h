/* libcurl, loaded when the first HTTP client needs it, not at start-up.
 *
 * Only the Kubernetes, ECS and CloudWatch components, the AWS credentials chain and `doctor`
 * speak HTTP as clients. Linked normally, libcurl and the libraries it pulls in (Kerberos,
 * LDAP, SSH, RTMP, PSL, …: 17 of them) cost every agent about 1.5 MiB of RSS and their
 * relocations at start, whether it uses them or not. Here it is dlopen()ed on first use.
 *
 * Calls that take a CURL handle go straight through the loaded pointers (a handle exists only
 * once libcurl is loaded): use st_curl_easy_setopt() etc. as curl_easy_setopt(). The others
 * are functions that load libcurl first, or do nothing with NULL.
 *
 * A host without libcurl.so.4 gets NULL from st_curl_easy_init() (st_curl_init_error():
 * -ELIBACC) and a one-time error that says why; the rest of the agent runs. */
#pragma once
#include <stddef.h>
#include <curl/curl.h>

/* Loads libcurl once (thread-safe): 0, or -ELIBACC when it cannot be loaded. */
int st_curl_load(void);

CURL *st_curl_easy_init(void);
/* Why st_curl_easy_init() returned NULL: -ELIBACC (libcurl cannot be loaded; the reason was
 * logged once) or -ENOMEM, also said in err. */
int st_curl_init_error(char *err, size_t errlen);
void st_curl_easy_cleanup(CURL *h);
struct curl_slist *st_curl_slist_append(struct curl_slist *list, const char *s);
void st_curl_slist_free_all(struct curl_slist *list);
void st_curl_free(void *p);
const char *st_curl_easy_strerror(CURLcode c);

/* Loaded by st_curl_load(); call only with a handle from st_curl_easy_init(). */
extern CURLcode (*st_curl_sym_easy_setopt)(CURL *, CURLoption, ...);
extern CURLcode (*st_curl_sym_easy_getinfo)(CURL *, CURLINFO, ...);
extern CURLcode (*st_curl_sym_easy_perform)(CURL *);
extern char *(*st_curl_sym_easy_escape)(CURL *, const char *, int);
#define st_curl_easy_setopt(h, ...) st_curl_sym_easy_setopt((h), __VA_ARGS__)
#define st_curl_easy_getinfo(h, ...) st_curl_sym_easy_getinfo((h), __VA_ARGS__)
#define st_curl_easy_perform(h) st_curl_sym_easy_perform(h)
#define st_curl_easy_escape(h, s, n) st_curl_sym_easy_escape((h), (s), (n))
