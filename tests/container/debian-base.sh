#!/usr/bin/env bash
# Makes a local Debian 12 image for the Containerfile's BASE_IMAGE, for machines that reach
# Debian's mirror but no image registry: debootstrap --variant=minbase bookworm, with the apt
# sources the official debian:bookworm image has (bookworm, bookworm-updates, bookworm-security)
# on the mirror this machine uses, imported into podman. Prints the image's name on stdout.
#
# Cached on one machine: the root as a tarball in $PGSTEP_IMAGE_CACHE (default
# /var/cache/pgstep-image), the image in podman's storage (/var/lib/containers) under a tag
# derived from this script and the mirror, so a second run only checks that both are there.
# Needs root and podman; installs debootstrap if it is missing.
set -euo pipefail

cache=${PGSTEP_IMAGE_CACHE:-/var/cache/pgstep-image}
podman=(podman --runtime /usr/sbin/runc --cgroup-manager=cgroupfs)

log() { printf 'debian-base: [%3ss] %s\n' "$SECONDS" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "needs root (debootstrap, podman storage)"
command -v podman >/dev/null || die "podman is missing (scripts/install-deps.sh installs it)"

# The Debian mirror this machine's apt uses (deb822 or one-line sources), else Debian's own.
mirror=$(sed -n 's|^URIs: *\([^ ]*/debian\)/\?$|\1|p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
         head -n1)
[[ -n $mirror ]] || mirror=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ { sub(/\/$/, "", $2); print $2; exit }' \
                             /etc/apt/sources.list 2>/dev/null || true)
[[ -n $mirror ]] || mirror=http://deb.debian.org/debian
security=${mirror%/debian}/debian-security

key=$({ sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1; echo "$mirror"; } | sha256sum | cut -c1-12)
image=localhost/pgstep-debian-base:bookworm-$key
tarball=$cache/bookworm-minbase-$key.tar

mkdir -p "$cache"
exec 9<"$cache"
flock 9

if [[ ! -s $tarball ]]; then
    if ! command -v debootstrap >/dev/null; then
        log "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap \
            >/dev/null 2>&1 ||
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                  --no-install-recommends debootstrap >/dev/null; } ||
            die "could not install debootstrap"
    fi
    work=$(mktemp -d "$cache/root.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    log "debootstrap --variant=minbase bookworm from $mirror"
    debootstrap --variant=minbase bookworm "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    rm -f "$work/root/etc/apt/sources.list"
    cat >"$work/root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    # As in Debian's official image: no package caches, no downloaded lists.
    rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
    tar -C "$work/root" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$work"
    trap - EXIT
    # Tarballs of older versions of this script are of no further use.
    find "$cache" -maxdepth 1 -name 'bookworm-minbase-*.tar' ! -name "${tarball##*/}" -delete
    log "cached $tarball ($(du -h "$tarball" | cut -f1))"
fi

if ! "${podman[@]}" image exists "$image"; then
    log "importing $image"
    "${podman[@]}" import --quiet --change 'CMD ["bash"]' "$tarball" "$image" >/dev/null ||
        die "podman import failed"
    # Images of older versions of this script, and the build cache made from them (untagged
    # intermediate images), are of no further use: a new base rebuilds every layer anyway.
    "${podman[@]}" images --format '{{.Repository}}:{{.Tag}}' "${image%%:*}" | grep -vxF "$image" |
        xargs -r "${podman[@]}" rmi >/dev/null 2>&1 || true
    "${podman[@]}" image prune -f >/dev/null 2>&1 || true
fi
echo "$image"
