#!/usr/bin/env bash
# Build and install DocumentDB 0.106-0 and its dependencies (libbson, pgvector,
# pg_cron) for PostgreSQL 15 from the pristine source trees in third_party/,
# for pgstep's DocumentDB tests. Debian 12 only; needs root unless cached.
#
# Idempotent and cached: a stamp file records a hash of the inputs (source
# trees, this script, PostgreSQL package versions) and checksums of the
# installed .so/.control files; when both still match, nothing is done.
#
# Environment:
#   PGSTEP_THIRD_PARTY        source trees (default: <repo>/../shared/third_party)
#   PGSTEP_THIRD_PARTY_CACHE  work/cache dir (default: /var/cache/pgstep-third-party)
#   PGSTEP_BUILD_JOBS         make/cmake parallelism (default: nproc)
set -euo pipefail
set -E # ERR trap also in functions

SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")
REPO_ROOT=$(cd "$(dirname "$SCRIPT_PATH")/../.." && pwd)
THIRD_PARTY=${PGSTEP_THIRD_PARTY:-$REPO_ROOT/../shared/third_party}
CACHE=${PGSTEP_THIRD_PARTY_CACHE:-/var/cache/pgstep-third-party}
JOBS=${PGSTEP_BUILD_JOBS:-$(nproc)}

PG_MAJOR=15
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config

LIBBSON=libbson-1.28.0
PGVECTOR=pgvector-0.8.0
PGCRON=pg_cron-1.6.3
DOCUMENTDB=documentdb-0.106-0
TREES=("$LIBBSON" "$PGVECTOR" "$PGCRON" "$DOCUMENTDB")

REQUIRED_PKGS=(build-essential pkg-config cmake "postgresql-$PG_MAJOR"
	"postgresql-server-dev-$PG_MAJOR" libkrb5-dev libpcre2-dev
	libintelrdfpmath-dev "postgresql-$PG_MAJOR-rum" "postgresql-$PG_MAJOR-postgis-3")
# Debian's pg_cron 1.4.2 is too old for DocumentDB and would clash with 1.6.3.
CONFLICTING_PKGS=("postgresql-$PG_MAJOR-cron")

STAMP=$CACHE/stamp
WORK=$CACHE/work
LOGS=$CACHE/logs
BSON_PREFIX=$CACHE/libbson
PC_DIR=$CACHE/pkgconfig

log() { printf 'build-deps: %s\n' "$*"; }
die() {
	printf 'build-deps: ERROR: %s\n' "$*" >&2
	exit 1
}
on_err() {
	local rc=$?
	printf 'build-deps: ERROR: command failed (exit %s) at line %s: %s\n' \
		"$rc" "${BASH_LINENO[0]}" "$BASH_COMMAND" >&2
}
trap on_err ERR

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Package status/version, read with one dpkg-query call (cheap fast path);
# call load_pkg_db again after apt changed anything.
declare -A PKG_STATUS=() PKG_VERSION=()
load_pkg_db() {
	local name status version
	PKG_STATUS=() PKG_VERSION=()
	while read -r name status version; do
		PKG_STATUS[$name]=$status
		PKG_VERSION[$name]=$version
	done < <(dpkg-query -W -f='${Package} ${db:Status-Status} ${Version}\n' \
		"${REQUIRED_PKGS[@]}" "${CONFLICTING_PKGS[@]}" libintelrdfpmath-dev 2>/dev/null || true)
}

# "installed", "config-files", ... or "not-installed" when dpkg does not know it.
pkg_status() { printf '%s\n' "${PKG_STATUS[$1]:-not-installed}"; }
pkg_version() { printf '%s\n' "${PKG_VERSION[$1]:-}"; }

missing_pkgs() {
	local p
	for p in "${REQUIRED_PKGS[@]}"; do
		[[ $(pkg_status "$p") == installed ]] || printf '%s\n' "$p"
	done
}

conflicting_pkgs() {
	local p
	for p in "${CONFLICTING_PKGS[@]}"; do
		case $(pkg_status "$p") in
		not-installed | config-files) ;;
		*) printf '%s\n' "$p" ;;
		esac
	done
}

installed_files() {
	local libdir sharedir
	libdir=$("$PG_CONFIG" --pkglibdir)
	sharedir=$("$PG_CONFIG" --sharedir)
	printf '%s\n' \
		"$libdir/vector.so" "$libdir/pg_cron.so" \
		"$libdir/pg_documentdb_core.so" "$libdir/pg_documentdb.so" \
		"$sharedir/extension/vector.control" "$sharedir/extension/pg_cron.control" \
		"$sharedir/extension/documentdb_core.control" "$sharedir/extension/documentdb.control"
}

# Extensions DocumentDB requires that come from Debian packages.
package_files() {
	local sharedir
	sharedir=$("$PG_CONFIG" --sharedir)
	printf '%s\n' "$sharedir/extension/rum.control" "$sharedir/extension/postgis.control" \
		"$sharedir/extension/tsm_system_rows.control"
}

inputs_hash() {
	local t
	{
		printf 'script %s\n' "$(sha256sum <"$SCRIPT_PATH")"
		for t in "${TREES[@]}"; do
			(cd "$THIRD_PARTY" && find "$t" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
		done
		printf 'postgresql %s\n' "$(pkg_version "postgresql-$PG_MAJOR")"
		printf 'server-dev %s\n' "$(pkg_version "postgresql-server-dev-$PG_MAJOR")"
		printf 'intelmath %s\n' "$(pkg_version libintelrdfpmath-dev)"
	} | sha256sum | cut -d' ' -f1
}

stamp_ok() {
	local f
	[[ -r $STAMP && -x $PG_CONFIG ]] || return 1
	[[ $(head -n 1 "$STAMP") == "inputs $1" ]] || return 1
	tail -n +2 "$STAMP" | sha256sum --check --status - 2>/dev/null || return 1
	while IFS= read -r f; do
		[[ -f $f ]] || return 1
	done < <(package_files)
}

# step SLUG TITLE FUNCTION: runs a build step quietly, output in
# $LOGS/SLUG.log; on failure shows the end of the log and exits. The body runs
# in a subshell with errexit on (not inside an if/||, where bash would
# silently disable errexit for the whole body).
step() {
	local slug=$1 title=$2 t0 rc
	shift 2
	t0=$(now)
	printf 'build-deps: %-30s' "$title"
	trap - ERR
	set +e
	(
		set -euo pipefail
		"$@"
	) >"$LOGS/$slug.log" 2>&1
	rc=$?
	set -e
	trap on_err ERR
	if ((rc != 0)); then
		printf 'FAILED\n'
		printf 'build-deps: ERROR: step "%s" failed (exit %d); last lines of %s:\n' \
			"$title" "$rc" "$LOGS/$slug.log" >&2
		tail -n 40 "$LOGS/$slug.log" >&2
		exit 1
	fi
	printf '%5s s\n' "$(elapsed "$t0")"
}

# Newest candidate version of PG extension package $1 that apt can install
# while keeping postgresql-$PG_MAJOR at version $2. (Debian-security's
# postgresql-15-rum, for one, depends on a newer server than bookworm's.)
compatible_version() {
	local v
	while read -r v; do
		if apt-get install -s -q --no-install-recommends \
			"postgresql-$PG_MAJOR=$2" "$1=$v" >/dev/null 2>&1; then
			printf '%s\n' "$v"
			return 0
		fi
	done < <(apt-cache madison "$1" | awk -F'|' '$3 ~ /Packages/ { gsub(/ /, "", $2); print $2 }')
	return 1
}

apt_step() {
	local missing conflicting pins=() hold=() p v server_ver t0
	mapfile -t missing < <(missing_pkgs)
	mapfile -t conflicting < <(conflicting_pkgs)
	export DEBIAN_FRONTEND=noninteractive
	local apt=(apt-get -y -q -o DPkg::Lock::Timeout=600)
	if ((${#conflicting[@]} > 0)); then
		log "apt: removing ${conflicting[*]} (too old for DocumentDB)"
		"${apt[@]}" remove "${conflicting[@]}" >"$LOGS/apt-remove.log" 2>&1 ||
			die "apt-get remove failed; see $LOGS/apt-remove.log"
		load_pkg_db
	fi
	((${#missing[@]} > 0)) || return 0
	t0=$(now)
	log "apt: missing ${missing[*]}"
	"${apt[@]}" update >"$LOGS/apt-update.log" 2>&1 ||
		die "apt-get update failed; see $LOGS/apt-update.log"
	server_ver=$(pkg_version "postgresql-$PG_MAJOR")
	# Never upgrade an installed server: hold it at its version and pin the
	# packages built for it to versions that work with that version.
	[[ -z $server_ver ]] || hold=("postgresql-$PG_MAJOR=$server_ver")
	for p in "${missing[@]}"; do
		if [[ -z $server_ver ]]; then
			pins+=("$p")
		elif [[ $p == "postgresql-server-dev-$PG_MAJOR" ]]; then
			pins+=("$p=$server_ver")
		elif [[ $p == "postgresql-$PG_MAJOR-"* ]]; then
			v=$(compatible_version "$p" "$server_ver") ||
				die "no version of $p installable with postgresql-$PG_MAJOR $server_ver (apt-cache policy $p)"
			pins+=("$p=$v")
		else
			pins+=("$p")
		fi
	done
	log "apt: installing ${pins[*]}${server_ver:+ (postgresql-$PG_MAJOR held at $server_ver)}"
	if ! "${apt[@]}" install --no-install-recommends "${hold[@]}" "${pins[@]}" >"$LOGS/apt-install.log" 2>&1; then
		tail -n 20 "$LOGS/apt-install.log" >&2
		die "apt-get install failed (is postgresql-server-dev-$PG_MAJOR=$server_ver still available? see apt-cache policy); log: $LOGS/apt-install.log"
	fi
	load_pkg_db
	mapfile -t missing < <(missing_pkgs)
	((${#missing[@]} == 0)) || die "still not installed after apt-get: ${missing[*]}"
	[[ -z $server_ver || $(pkg_version "postgresql-$PG_MAJOR") == "$server_ver" ]] ||
		die "apt changed postgresql-$PG_MAJOR from $server_ver to $(pkg_version "postgresql-$PG_MAJOR")"
	log "apt: done in $(elapsed "$t0") s"
}

copy_sources() {
	local t
	rm -rf "$WORK"
	mkdir -p "$WORK"
	for t in "${TREES[@]}"; do
		# Keep timestamps (so make does not regenerate shipped files) but make
		# the copy writable: the shared tree is read-only and must stay pristine.
		cp -R --preserve=timestamps "$THIRD_PARTY/$t" "$WORK/$t"
		chmod -R u+w "$WORK/$t"
	done
}

build_libbson() {
	rm -rf "$BSON_PREFIX" "$WORK/libbson-build"
	cmake -S "$WORK/$LIBBSON" -B "$WORK/libbson-build" \
		-DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_INSTALL_PREFIX="$BSON_PREFIX" -DCMAKE_INSTALL_LIBDIR=lib \
		-DENABLE_MONGOC=OFF -DENABLE_STATIC=ON -DENABLE_SHARED=OFF \
		-DENABLE_PIC=ON -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DCMAKE_C_FLAGS=-fPIC \
		-DENABLE_TESTS=OFF -DENABLE_EXAMPLES=OFF -DENABLE_UNINSTALL=OFF \
		-DENABLE_MAN_PAGES=OFF -DENABLE_HTML_DOCS=OFF
	cmake --build "$WORK/libbson-build" -j "$JOBS"
	cmake --install "$WORK/libbson-build"
	test -f "$BSON_PREFIX/lib/pkgconfig/libbson-static-1.0.pc"
}

# Debian ships Intel's decimal math library without a pkg-config file.
write_intelmathlib_pc() {
	local lib ver
	lib=$(dpkg-query -L libintelrdfpmath-dev | grep '/libbidgcc000\.a$' | head -n 1)
	[[ -n $lib ]] || {
		echo "libbidgcc000.a not found in libintelrdfpmath-dev"
		return 1
	}
	ver=$(pkg_version libintelrdfpmath-dev)
	ver=${ver#*:}
	mkdir -p "$PC_DIR"
	cat >"$PC_DIR/intelmathlib.pc" <<EOF
libdir=$(dirname "$lib")
includedir=/usr/include

Name: intelmathlib
Description: Intel Decimal Floating-Point Math Library (Debian libintelrdfpmath-dev)
Version: ${ver%%-*}
Cflags: -I\${includedir}
Libs: -L\${libdir} -lbidgcc000
EOF
	pkg-config --exists libbson-static-1.0 intelmathlib libpcre2-8
	pkg-config --cflags --libs libbson-static-1.0 intelmathlib libpcre2-8
}

pgxs() { make -C "$1" PG_CONFIG="$PG_CONFIG" with_llvm=no "${@:2}"; }

build_pgvector() {
	# OPTFLAGS= : no -march=native, so the build runs on any x86-64 machine.
	pgxs "$WORK/$PGVECTOR" -j "$JOBS" OPTFLAGS=
	pgxs "$WORK/$PGVECTOR" install OPTFLAGS=
}

build_pg_cron() {
	pgxs "$WORK/$PGCRON" -j "$JOBS"
	pgxs "$WORK/$PGCRON" install
}

build_documentdb_core() {
	local d=$WORK/$DOCUMENTDB/pg_documentdb_core
	# Generated error headers first, so -j cannot race them.
	pgxs "$d" generate_external_error_mapping_file
	pgxs "$d" -j "$JOBS"
	pgxs "$d" install
}

build_documentdb() {
	local d=$WORK/$DOCUMENTDB/pg_documentdb
	pgxs "$d" -j "$JOBS"
	pgxs "$d" install
}

write_stamp() {
	local files
	mapfile -t files < <(installed_files)
	{
		printf 'inputs %s\n' "$1"
		sha256sum "${files[@]}"
	} >"$STAMP.tmp"
	mv "$STAMP.tmp" "$STAMP"
}

main() {
	local t_start hash
	t_start=$(now)
	umask 022
	[[ -r /etc/debian_version ]] || die "Debian only (uses apt/dpkg)"
	[[ -d $THIRD_PARTY ]] ||
		die "third-party source trees not found in $THIRD_PARTY: put DocumentDB's sources there (see README) or set PGSTEP_THIRD_PARTY"
	THIRD_PARTY=$(readlink -f "$THIRD_PARTY")
	local t
	for t in "${TREES[@]}"; do
		[[ -d $THIRD_PARTY/$t ]] || die "missing source tree $THIRD_PARTY/$t (set PGSTEP_THIRD_PARTY)"
	done

	load_pkg_db
	# Fast path: packages in place, stamp matches, installed files unchanged.
	if [[ -z $(missing_pkgs) && -z $(conflicting_pkgs) ]]; then
		hash=$(inputs_hash)
		if stamp_ok "$hash"; then
			log "DocumentDB + deps up to date (cache $CACHE), checked in $(elapsed "$t_start") s"
			return 0
		fi
	fi

	[[ $EUID -eq 0 ]] || die "must run as root to install packages and extensions (nothing cached yet or inputs changed)"
	mkdir -p "$CACHE" "$LOGS"
	exec 9>"$CACHE/lock"
	flock 9 # serialize concurrent runs sharing the cache
	log "third_party=$THIRD_PARTY cache=$CACHE jobs=$JOBS"

	apt_step
	hash=$(inputs_hash)
	if stamp_ok "$hash"; then # another run may have finished while we waited
		log "DocumentDB + deps up to date (cache $CACHE), checked in $(elapsed "$t_start") s"
		return 0
	fi
	rm -f "$STAMP"

	export PKG_CONFIG_PATH=$BSON_PREFIX/lib/pkgconfig:$PC_DIR
	# The work copies must not look like part of an enclosing git checkout
	# (DocumentDB's Makefile embeds `git rev-parse` output when it does).
	export GIT_CEILING_DIRECTORIES=$WORK

	local t_build
	t_build=$(now)
	step copy "copy sources" copy_sources
	step libbson "libbson 1.28.0 (static, PIC)" build_libbson
	step intelmathlib "intelmathlib.pc" write_intelmathlib_pc
	step pgvector "pgvector 0.8.0" build_pgvector
	step pg_cron "pg_cron 1.6.3" build_pg_cron
	step documentdb_core "documentdb_core 0.106-0" build_documentdb_core
	step documentdb "documentdb 0.106-0" build_documentdb

	write_stamp "$hash"
	log "built and installed in $(elapsed "$t_build") s (total $(elapsed "$t_start") s; logs in $LOGS)"
}

main "$@"
