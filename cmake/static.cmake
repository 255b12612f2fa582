# Fully static pgstep for FROM-scratch images (PGSTEP_STATIC=ON).
#
# Included by the root CMakeLists.txt after find_package(PostgreSQL), pkg_check_modules(LIBCONFIG
# ... IMPORTED_TARGET) / (SODIUM ...), add_library(pgstep_core ...) and add_executable(pgstep ...).
# It repoints the imported targets PostgreSQL::PostgreSQL, PkgConfig::LIBCONFIG and
# PkgConfig::SODIUM at static archives, so everything that links pgstep_core (pgstep and the
# tests) uses the same code, and links only the pgstep executable with -static.
#
# libpq comes from scripts/build-static-deps.sh (PostgreSQL 15 built without GSSAPI/LDAP: Debian's
# own libpq.a needs krb5 and OpenLDAP, which Debian ships only as shared libraries). OpenSSL,
# libconfig and libsodium are Debian's .a files.
#
# glibc prints link-time warnings that getaddrinfo/getpwuid "require at runtime the shared
# libraries from the glibc version used for linking". Static glibc still resolves through
# /etc/hosts, /etc/resolv.conf (DNS) and /etc/passwd without loading any NSS module when
# /etc/nsswitch.conf is absent; see container/README.md for what the image relies on.

if(NOT TARGET pgstep OR NOT TARGET pgstep_core)
  message(FATAL_ERROR "cmake/static.cmake must be included after add_library(pgstep_core ...) "
                      "and add_executable(pgstep ...)")
endif()
foreach(_pgstep_target IN ITEMS PostgreSQL::PostgreSQL PkgConfig::LIBCONFIG PkgConfig::SODIUM)
  if(NOT TARGET ${_pgstep_target})
    message(FATAL_ERROR "cmake/static.cmake needs the imported target ${_pgstep_target}: include "
                        "it after find_package(PostgreSQL) and pkg_check_modules(... IMPORTED_TARGET)")
  endif()
endforeach()
if(PGSTEP_SANITIZE)
  message(FATAL_ERROR "PGSTEP_STATIC and PGSTEP_SANITIZE cannot be combined: the sanitizer "
                      "runtimes do not support -static")
endif()

set(PGSTEP_STATIC_PREFIX "/var/cache/pgstep-static" CACHE PATH
    "Prefix holding the static libpq built by scripts/build-static-deps.sh")
option(PGSTEP_STATIC_STRIP "Strip the static pgstep binary at link time" ON)

# --- libpq, libpgcommon, libpgport from the prefix -------------------------------------------
set(_pgstep_pq_libs)
foreach(_pgstep_lib IN ITEMS pq pgcommon pgport)
  set(_pgstep_path "${PGSTEP_STATIC_PREFIX}/lib/lib${_pgstep_lib}.a")
  if(NOT EXISTS "${_pgstep_path}")
    message(FATAL_ERROR "${_pgstep_path} not found.\n"
                        "Build it with: PGSTEP_STATIC_PREFIX=${PGSTEP_STATIC_PREFIX} "
                        "scripts/build-static-deps.sh (or set -DPGSTEP_STATIC_PREFIX=...)")
  endif()
  list(APPEND _pgstep_pq_libs "${_pgstep_path}")
endforeach()
if(NOT EXISTS "${PGSTEP_STATIC_PREFIX}/include/libpq-fe.h")
  message(FATAL_ERROR "${PGSTEP_STATIC_PREFIX}/include/libpq-fe.h not found; rerun "
                      "scripts/build-static-deps.sh")
endif()

find_package(Threads REQUIRED)

# --- OpenSSL: Debian's libssl.a/libcrypto.a (FindOpenSSL adds Threads and libdl) -------------
set(OPENSSL_USE_STATIC_LIBS TRUE)
find_package(OpenSSL 3 REQUIRED)
get_target_property(_pgstep_crypto OpenSSL::Crypto IMPORTED_LOCATION)
if(NOT _pgstep_crypto MATCHES "\\.a$")
  message(FATAL_ERROR "FindOpenSSL found ${_pgstep_crypto}, not a static archive; "
                      "install libssl-dev")
endif()

# --- libconfig and libsodium: the .a next to the .so that pkg-config pointed at --------------
function(_pgstep_find_static_archive out name hint_dirs)
  find_library(${out} NAMES "lib${name}.a" HINTS ${hint_dirs} NO_CACHE REQUIRED)
  set(${out} "${${out}}" PARENT_SCOPE)
endfunction()
_pgstep_find_static_archive(_pgstep_config_a config "${LIBCONFIG_LIBRARY_DIRS}")
_pgstep_find_static_archive(_pgstep_sodium_a sodium "${SODIUM_LIBRARY_DIRS}")

# --- repoint the imported targets --------------------------------------------------------------
get_target_property(_pgstep_pq_includes PostgreSQL::PostgreSQL INTERFACE_INCLUDE_DIRECTORIES)
if(NOT _pgstep_pq_includes)
  set(_pgstep_pq_includes)
endif()
list(GET _pgstep_pq_libs 0 _pgstep_libpq_a)
list(SUBLIST _pgstep_pq_libs 1 -1 _pgstep_pq_deps)
# The prefix's headers match the archive; Debian's stay after it for any server header
# (catalog/pg_type_d.h) that code may include.
set_target_properties(PostgreSQL::PostgreSQL PROPERTIES
  IMPORTED_LOCATION "${_pgstep_libpq_a}"
  INTERFACE_INCLUDE_DIRECTORIES "${PGSTEP_STATIC_PREFIX}/include;${_pgstep_pq_includes}"
  INTERFACE_LINK_LIBRARIES "${_pgstep_pq_deps};OpenSSL::SSL;OpenSSL::Crypto;Threads::Threads;m")
foreach(_pgstep_config IN ITEMS RELEASE DEBUG RELWITHDEBINFO MINSIZEREL)
  set_property(TARGET PostgreSQL::PostgreSQL PROPERTY IMPORTED_LOCATION_${_pgstep_config}
               "${_pgstep_libpq_a}")
endforeach()

set_target_properties(PkgConfig::LIBCONFIG PROPERTIES
  INTERFACE_LINK_LIBRARIES "${_pgstep_config_a}")
set_target_properties(PkgConfig::SODIUM PROPERTIES
  INTERFACE_LINK_LIBRARIES "${_pgstep_sodium_a};Threads::Threads")

# --- the executable ---------------------------------------------------------------------------
target_link_options(pgstep PRIVATE -static)
if(PGSTEP_STATIC_STRIP)
  target_link_options(pgstep PRIVATE -s)
endif()

message(STATUS "pgstep: static link against ${_pgstep_libpq_a}, ${_pgstep_crypto}, "
               "${_pgstep_config_a}, ${_pgstep_sodium_a}")
