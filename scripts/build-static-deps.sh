#!/usr/bin/env bash
# Builds the static libpq that a fully static pgstep links against: libpq.a, libpgcommon.a and
# libpgport.a from the PostgreSQL 15 source, without GSSAPI/LDAP (Debian ships no static krb5).
#
# Usage: scripts/build-static-deps.sh
# Environment:
#   PGSTEP_STATIC_PREFIX   install prefix (default /var/cache/pgstep-static): lib/ and include/
#   PGSTEP_STATIC_WORKDIR  scratch directory for the source and build (default: a temporary one)
#   PGSTEP_PG_SOURCE       source package (default postgresql-15)
#   PGSTEP_PG_VERSION      exact Debian source version to use (default: newest that downloads)
#   PGSTEP_STATIC_FORCE=1  rebuild even if the stamp says the prefix is up to date
#   JOBS                   parallel make jobs (default: nproc)
#
# Idempotent: a stamp file in the prefix records a hash of this script and its settings; a second
# run with the same inputs returns at once. The prefix is replaced atomically, under a lock
# (flock on the prefix's parent directory), so concurrent runs build once.
set -euo pipefail

prefix=${PGSTEP_STATIC_PREFIX:-/var/cache/pgstep-static}
source_pkg=${PGSTEP_PG_SOURCE:-postgresql-15}
want_version=${PGSTEP_PG_VERSION:-}
jobs=${JOBS:-$(nproc)}
configure_flags=(--with-openssl --without-readline --without-zlib --without-icu
                 --without-gssapi --without-ldap)
build_cflags="-O2 -fstack-protector-strong -D_FORTIFY_SOURCE=2"
# Debian packages this script needs; checked with dpkg-query, installed only when missing.
build_deps=(gcc make dpkg-dev libssl-dev pkg-config ca-certificates)

log() { printf "build-static-deps: [%3ss] %s\n" "$SECONDS" "$*" >&2; }
die() { log "error: $*"; exit 1; }

stamp_key() {
    {
        sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1
        printf '%s\n' "$source_pkg" "$want_version" "$build_cflags" "${configure_flags[@]}"
    } | sha256sum | cut -d' ' -f1
}

is_up_to_date() {
    local stamp=$prefix/.pgstep-static.stamp f
    [[ -f $stamp ]] || return 1
    [[ $(sed -n 's/^key=//p' "$stamp") == "$1" ]] || return 1
    for f in lib/libpq.a lib/libpgcommon.a lib/libpgport.a include/libpq-fe.h; do
        [[ -s $prefix/$f ]] || return 1
    done
}

ensure_build_deps() {
    local missing=() p
    for p in "${build_deps[@]}"; do
        if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) != installed ]]; then
            missing+=("$p")
        fi
    done
    ((${#missing[@]} == 0)) && return 0
    ((EUID == 0)) || die "missing packages ${missing[*]}; install them or run as root"
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Adds deb-src entries mirroring the Debian archive's deb entries, once, if apt knows no source.
ensure_deb_src() {
    if [[ -n $(apt-cache showsrc "$source_pkg" 2>/dev/null | sed -n 's/^Version: //p') ]]; then
        return 0
    fi
    ((EUID == 0)) || die "no deb-src entry for $source_pkg; add one or run as root"
    local out=/etc/apt/sources.list.d/pgstep-deb-src.sources f
    : >"$out.tmp"
    # deb822 files: copy each stanza whose URIs are a Debian archive, with Types set to deb-src.
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f && $f != "$out" ]] || continue
        awk 'BEGIN { RS = ""; ORS = "\n\n" }
             /URIs:[^\n]*\/debian(-security)?\/?([ \n]|$)/ && /(^|\n)Types:[^\n]*deb/ {
                 sub(/(^|\n)Types:[^\n]*/, "\nTypes: deb-src"); sub(/^\n/, ""); print }' \
            "$f" >>"$out.tmp"
    done
    # one-line sources.list entries
    if [[ -f /etc/apt/sources.list ]]; then
        awk '$1 == "deb" && $0 ~ /\/debian(-security)?\/? / {
                 $1 = "deb-src"; print; found = 1 }
             END { if (!found) exit 0 }' /etc/apt/sources.list >"${out%.sources}.list.tmp"
        if [[ -s ${out%.sources}.list.tmp ]]; then
            mv "${out%.sources}.list.tmp" "${out%.sources}.list"
        else
            rm -f "${out%.sources}.list.tmp"
        fi
    fi
    if [[ -s $out.tmp ]]; then mv "$out.tmp" "$out"; else rm -f "$out.tmp"; fi
    [[ -f $out || -f ${out%.sources}.list ]] || die "found no Debian archive entry to derive deb-src from"
    log "added deb-src entries; updating apt lists"
    apt-get update -qq
    [[ -n $(apt-cache showsrc "$source_pkg" 2>/dev/null | sed -n 's/^Version: //p') ]] ||
        die "apt knows no source package $source_pkg even with deb-src entries"
}

# Downloads and unpacks the source into $1, trying the wanted version or every known version,
# newest first: a pocket (e.g. security) may list a version that its mirror does not serve.
fetch_source() {
    local dir=$1 v versions
    if [[ -n $want_version ]]; then
        versions=$want_version
    else
        versions=$(apt-cache showsrc "$source_pkg" | sed -n 's/^Version: //p' | sort -u |
                   sort -r -V)
    fi
    for v in $versions; do
        log "fetching $source_pkg=$v"
        rm -rf "$dir" && mkdir -p "$dir"
        if (cd "$dir" && apt-get source -qq --only-source "$source_pkg=$v" >"$dir/.apt.log" 2>&1)
        then
            fetched_version=$v
            return 0
        fi
        log "could not fetch $source_pkg=$v: $(grep -m1 '^E:' "$dir/.apt.log" || tail -n1 "$dir/.apt.log")"
    done
    die "could not fetch any version of $source_pkg (tried: ${versions//$'\n'/ })"
}

work=
main() {
    local key srcdir stage
    key=$(stamp_key)
    if [[ ${PGSTEP_STATIC_FORCE:-0} != 1 ]] && is_up_to_date "$key"; then
        log "up to date: $prefix ($(sed -n 's/^version=//p' "$prefix/.pgstep-static.stamp"))"
        return 0
    fi

    # Lock the prefix's parent directory itself: no lock file is left behind (the prefix may be
    # a build directory inside a source tree).
    mkdir -p "$(dirname "$prefix")"
    exec 9<"$(dirname "$prefix")"
    flock 9
    # Another run may have finished the build while this one waited for the lock.
    if [[ ${PGSTEP_STATIC_FORCE:-0} != 1 ]] && is_up_to_date "$key"; then
        log "up to date: $prefix"
        return 0
    fi

    ensure_build_deps
    ensure_deb_src

    if [[ -n ${PGSTEP_STATIC_WORKDIR:-} ]]; then
        work=$PGSTEP_STATIC_WORKDIR
        mkdir -p "$work"
    else
        work=$(mktemp -d "${TMPDIR:-/tmp}/pgstep-static.XXXXXX")
        trap 'rm -rf "$work"' EXIT
    fi
    fetch_source "$work/src"
    srcdir=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name 'postgresql-*' | head -n1)
    [[ -n $srcdir && -x $srcdir/configure ]] || die "no PostgreSQL source tree in $work/src"

    log "configuring $srcdir"
    (cd "$srcdir" && CFLAGS="$build_cflags" ./configure --quiet --prefix="$prefix" \
        "${configure_flags[@]}" >"$work/configure.log" 2>&1) ||
        { tail -n 30 "$work/configure.log" >&2; die "configure failed"; }
    log "building libpgport, libpgcommon, libpq with $jobs jobs"
    # Only the three archives: not the shared libpq nor the backend/shlib variants of pgcommon.
    for target in src/backend:generated-headers src/port:libpgport.a src/common:libpgcommon.a \
                  src/interfaces/libpq:all-static-lib; do
        make -s -C "$srcdir/${target%%:*}" -j"$jobs" "${target#*:}" >>"$work/make.log" 2>&1 ||
            { tail -n 30 "$work/make.log" >&2; die "make -C ${target%%:*} ${target#*:} failed"; }
    done

    stage=$prefix.new
    rm -rf "$stage"
    mkdir -p "$stage/lib" "$stage/include"
    install -m 644 "$srcdir/src/interfaces/libpq/libpq.a" "$srcdir/src/common/libpgcommon.a" \
        "$srcdir/src/port/libpgport.a" "$stage/lib/"
    install -m 644 "$srcdir/src/interfaces/libpq/libpq-fe.h" \
        "$srcdir/src/interfaces/libpq/libpq-events.h" "$srcdir/src/include/postgres_ext.h" \
        "$srcdir/src/include/pg_config_ext.h" "$stage/include/"
    {
        echo "key=$key"
        echo "version=$source_pkg $fetched_version"
        echo "configure=${configure_flags[*]}"
        echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    } >"$stage/.pgstep-static.stamp"
    rm -rf "$prefix.old"
    [[ -e $prefix ]] && mv "$prefix" "$prefix.old"
    mv "$stage" "$prefix"
    rm -rf "$prefix.old"
    log "installed into $prefix ($source_pkg $fetched_version)"
}

main "$@"
