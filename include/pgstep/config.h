/* Configuration: built-in defaults < configuration file < environment < command line, validated
 * into one read-only struct. Every key is listed in one table in config.c. */
#ifndef PGSTEP_CONFIG_H
#define PGSTEP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "pgstep/cli.h"
#include "pgstep/error.h"
#include "pgstep/log.h"
#include "pgstep/vars.h"

#define CONFIG_DEFAULT_PATH "/etc/pgstep/pgstep.conf"

typedef struct pgstep_config {
    /* connection */
    char *conninfo;      /* libpq key=value string or URI; "" means libpq's environment */
    char *password_file; /* NULL: none */
    char *dbname;        /* NULL: from conninfo or environment; wins over conninfo */
    int connect_timeout; /* seconds per connection attempt */
    char *application_name;
    /* wait */
    int wait_timeout; /* seconds */
    int wait_max_interval_ms;
    int wait_auth_grace; /* seconds an authentication failure is retried after the server answers */
    /* steps */
    char *steps_dir;
    char *history_schema;
    char **databases; /* NULL-terminated, in order, each from the subdirectory of steps_dir of its
                       * name; NULL: the database the connection names */
    bool require_manifest; /* a missing pgstep.sum is an error */
    char **trusted_keys;   /* NULL-terminated public keys or key files; NULL: none */
    /* lock */
    char *lock_name;
    int lock_timeout; /* seconds */
    /* apply */
    int statement_timeout;  /* seconds, 0: none */
    int apply_lock_timeout; /* seconds, 0: none */
    int retries;
    /* log */
    log_format log_format;
    log_level log_level;
    char *termination_log; /* file for a one-line summary; NULL: none */
    /* variables for the steps, file values overridden by -v */
    vars *vars;
    /* where the configuration came from, for messages; NULL if no file was read */
    char *source_path;
    /* where conninfo came from ("FILE:LINE: key ...", "option --dsn", ...); NULL: default */
    char *conninfo_source;
} pgstep_config;

/* Builds the configuration from the file (opts->config_path, else $PGSTEP_CONFIG, else the
 * default path, which may be absent), the environment and the command line. Any problem sets
 * err with PGSTEP_EXIT_CONFIG and names the file, line and key. */
bool config_load(const cli_options *opts, pgstep_config **out, pgstep_error *err);

void config_free(pgstep_config *cfg);

/* Writes the table of keys (group.key, type, default, range) to stdout for --help. */
void config_print_keys(void);

#endif /* PGSTEP_CONFIG_H */
