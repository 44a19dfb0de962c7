#!/usr/bin/env bash
# The libraries linked statically into strata (OpenSSL, libmicrohttpd: cmake/grpc_static.cmake,
# cmake/microhttpd.cmake) must not be exported from its dynamic symbol table. A libcurl loaded
# later (agent/curl_loader.c) brings the shared OpenSSL, and would otherwise bind some of its
# calls to our copy and some to its own. Checks every binary given: strata, and a test that
# links libcurl at build time, where the linker exports what a shared library asks for.
set -euo pipefail
status=0
for bin in "$@"; do
        leaked=$(nm -D --defined-only "$bin" | awk '{ print $NF }' |
                 grep -E '^(SSL_|TLS_|DTLS_|EVP_|OPENSSL_|CRYPTO_|ERR_|BIO_|X509_|MHD_)' || true)
        if [[ -n $leaked ]]; then
                echo "exported_symbols: $bin exports $(wc -l <<< "$leaked") symbols of a static library, e.g.:" >&2
                head -5 <<< "$leaked" >&2
                status=1
        else
                echo "exported_symbols: $bin: none"
        fi
done
exit $status
