#!/usr/bin/env bash
# Builds libmicrohttpd without HTTPS, as a static library, into .deps/libmicrohttpd (or $1).
#
# Why: Debian's libmicrohttpd links GnuTLS for HTTPS, which strata never uses (its OTLP/HTTP
# receiver and /metrics speak plain HTTP). Loading GnuTLS and the eight libraries under it
# (p11-kit, nettle, hogweed, gmp, tasn1, idn2, unistring, ffi) was 2.5 MiB of an idle agent's
# 12.5 MiB RSS. This builds the very source Debian ships for the installed libmicrohttpd-dev
# (apt-get source: same version, same patches) with --disable-https. CMake links the result
# when it is there, and the system library otherwise (cmake/microhttpd.cmake).
#
# Needs dpkg-dev (build-essential brings it) and the Debian archive the system installs from.
# Touches nothing outside the prefix: the deb-src lists it needs are its own, in a scratch
# directory. Exits non-zero on failure; install-deps.sh then goes on with the system library.
set -euo pipefail
PREFIX=$(realpath -m "${1:-$(dirname "$0")/../.deps/libmicrohttpd}") # configure wants it absolute
cd "$(dirname "$0")/.."

# the source package's version: a binary-only rebuild (+b1) has no source of its own version
VERSION=$(dpkg-query -W -f='${source:Version}' libmicrohttpd-dev 2>/dev/null) || {
        echo "build-mhd: libmicrohttpd-dev is not installed" >&2
        exit 1
}
STAMP=$PREFIX/debian-version
if [[ -f $PREFIX/lib/libmicrohttpd.a && -f $STAMP && $(<"$STAMP") == "$VERSION" ]]; then
        echo "build-mhd: $PREFIX is up to date ($VERSION)"
        exit 0
fi
# Whatever is there is for another version: gone now, so that a failed build below leaves
# the system library in use, not a stale copy.
rm -rf "$PREFIX"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/build-mhd.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/parts" "$WORK/lists/partial" "$WORK/cache/archives/partial" "$WORK/get"

# deb-src entries for the archives the system's own "deb" entries name (deb822 and one-line)
for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] && sed 's/^Types:.*/Types: deb-src/' "$f" > "$WORK/parts/$(basename "$f")"
done
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] && sed -n 's/^deb[[:space:]]\+/deb-src /p' "$f" > "$WORK/parts/$(basename "$f" .list).list"
done
APT=(-o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts="$WORK/parts" -o Dir::State::Lists="$WORK/lists"
     -o Dir::Cache="$WORK/cache" -o Debug::NoLocking=1 -o APT::Sandbox::User=root -qq)

echo "build-mhd: libmicrohttpd $VERSION from Debian's source, without HTTPS, into $PREFIX"
apt-get "${APT[@]}" update
(cd "$WORK/get" && apt-get "${APT[@]}" source --download-only "libmicrohttpd=$VERSION")
dpkg-source --no-check -x "$WORK"/get/libmicrohttpd_*.dsc "$WORK/src" > /dev/null

rm -rf "$PREFIX.tmp"
(
        cd "$WORK/src"
        ./configure --quiet --prefix="$PREFIX.tmp" --disable-https --disable-curl --disable-doc --disable-examples \
                --enable-static --disable-shared --with-pic > "$WORK/configure.log" 2>&1 ||
                { tail -30 "$WORK/configure.log" >&2; exit 1; }
        make -s -j "$(nproc)" > "$WORK/make.log" 2>&1 || { tail -30 "$WORK/make.log" >&2; exit 1; }
        make -s install > /dev/null
)
echo "$VERSION" > "$PREFIX.tmp/debian-version"
rm -rf "$PREFIX"
mv "$PREFIX.tmp" "$PREFIX"
echo "build-mhd: done"
