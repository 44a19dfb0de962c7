#include "curl_loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

/* libcurl4 (OpenSSL). Not libcurl-gnutls.so.4: it refuses CURLOPT_CAINFO_BLOB, which the k8s
 * receiver needs for a kubeconfig's inline CA. */
static const char *const SONAMES[] = { "libcurl.so.4" };

CURLcode (*st_curl_sym_easy_setopt)(CURL *, CURLoption, ...);
CURLcode (*st_curl_sym_easy_getinfo)(CURL *, CURLINFO, ...);
CURLcode (*st_curl_sym_easy_perform)(CURL *);
char *(*st_curl_sym_easy_escape)(CURL *, const char *, int);
static CURL *(*sym_easy_init)(void);
static void (*sym_easy_cleanup)(CURL *);
static struct curl_slist *(*sym_slist_append)(struct curl_slist *, const char *);
static void (*sym_slist_free_all)(struct curl_slist *);
static void (*sym_free)(void *);
static const char *(*sym_easy_strerror)(CURLcode);
static CURLcode (*sym_global_init)(long);
static void (*sym_global_cleanup)(void);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded = -ELIBACC;

#define SYM(var, name)                                                                                  \
        do {                                                                                            \
                *(void **) &(var) = dlsym(h, name);                                                     \
                if (!(var)) {                                                                           \
                        st_error("curl", "cannot use %s: it has no %s, HTTP clients are off", so, name); \
                        return;                                                                         \
                }                                                                                       \
        } while (0)

static void load(void) {
        const char *so = NULL, *test = secure_getenv("STRATA_TEST_CURL_SONAME"); /* tests: one that is not there */
        size_t n = test ? 1 : sizeof(SONAMES) / sizeof(SONAMES[0]);
        char why[256] = "";
        void *h = NULL;
        for (size_t i = 0; i < n && !h; i++) {
                so = test ? test : SONAMES[i];
                /* NODELETE: the pointers stay valid for the life of the process */
                h = dlopen(so, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
                const char *e = h ? NULL : dlerror(); /* its buffer is reused by the next dl call */
                if (e && !why[0])
                        snprintf(why, sizeof(why), "%s", e);
        }
        if (!h) {
                st_error("curl", "cannot load libcurl (%s), HTTP clients (k8s, ecs, cloudwatch, AWS credentials) are off",
                         why[0] ? why : "not found");
                return;
        }
        SYM(st_curl_sym_easy_setopt, "curl_easy_setopt");
        SYM(st_curl_sym_easy_getinfo, "curl_easy_getinfo");
        SYM(st_curl_sym_easy_perform, "curl_easy_perform");
        SYM(st_curl_sym_easy_escape, "curl_easy_escape");
        SYM(sym_easy_init, "curl_easy_init");
        SYM(sym_easy_cleanup, "curl_easy_cleanup");
        SYM(sym_slist_append, "curl_slist_append");
        SYM(sym_slist_free_all, "curl_slist_free_all");
        SYM(sym_free, "curl_free");
        SYM(sym_easy_strerror, "curl_easy_strerror");
        SYM(sym_global_init, "curl_global_init");
        SYM(sym_global_cleanup, "curl_global_cleanup");
        /* before any thread makes a handle: curl_easy_init() would do it unlocked otherwise.
         * Never cleaned up: libcurl stays loaded and initialised for the life of the process. */
        if (sym_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                st_error("curl", "curl_global_init failed, HTTP clients are off");
                return;
        }
        st_debug("curl", "loaded %s", so);
        loaded = 0;
}

int st_curl_load(void) {
        pthread_once(&once, load);
        return loaded;
}

CURL *st_curl_easy_init(void) {
        return st_curl_load() < 0 ? NULL : sym_easy_init();
}

int st_curl_init_error(char *err, size_t errlen) {
        bool missing = st_curl_load() < 0;
        if (err && errlen)
                snprintf(err, errlen, "%s", missing ? "libcurl cannot be loaded (see the error logged at its first use)"
                                                    : "cannot make a curl handle: out of memory");
        return missing ? -ELIBACC : -ENOMEM;
}

void st_curl_easy_cleanup(CURL *h) {
        if (h)
                sym_easy_cleanup(h);
}

struct curl_slist *st_curl_slist_append(struct curl_slist *list, const char *s) {
        return st_curl_load() < 0 ? NULL : sym_slist_append(list, s);
}

void st_curl_slist_free_all(struct curl_slist *list) {
        if (list)
                sym_slist_free_all(list);
}

void st_curl_free(void *p) {
        if (p)
                sym_free(p);
}

const char *st_curl_easy_strerror(CURLcode c) {
        return st_curl_load() < 0 ? "libcurl is not loaded" : sym_easy_strerror(c);
}
