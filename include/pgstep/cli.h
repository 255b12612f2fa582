/* The command line: pgstep [OPTIONS] COMMAND [COMMAND OPTIONS]. */
#ifndef PGSTEP_CLI_H
#define PGSTEP_CLI_H

#include <stdbool.h>

#include "pgstep/error.h"
#include "pgstep/vars.h"

typedef enum cli_command {
    CLI_NONE,
    CLI_APPLY,
    CLI_STATUS,
    CLI_WAIT,
    CLI_VERIFY,
    CLI_MANIFEST,
    CLI_KEYGEN,
    CLI_SIGN,
    CLI_HELP,
    CLI_VERSION,
} cli_command;

typedef enum cli_verbosity {
    CLI_VERBOSITY_DEFAULT,
    CLI_VERBOSITY_QUIET,
    CLI_VERBOSITY_VERBOSE,
} cli_verbosity;

/* What the command line said; NULL strings were not given. Points into argv. */
typedef struct cli_options {
    cli_command command;
    const char *config_path;
    const char *steps_dir;
    char *dsn; /* non-const: cli_scrub_argv overwrites it in argv */
    const char *log_format;
    cli_verbosity verbosity;
    vars *vars;       /* -v/--set name=value, owned */
    bool dry_run;     /* apply --dry-run */
    bool allow_drift; /* apply --allow-drift */
    bool json;        /* status --json */
    /* keygen and sign */
    const char *public_key;      /* keygen --public-key */
    const char *secret_key;      /* keygen, sign --secret-key */
    const char *password_file;   /* keygen, sign --password-file */
    bool unencrypted;            /* keygen --unencrypted */
    const char *trusted_comment; /* sign --trusted-comment */
} cli_options;

/* Parses argv into opts. Usage errors set err with PGSTEP_EXIT_USAGE. */
bool cli_parse(int argc, char **argv, cli_options *opts, pgstep_error *err);

/* Overwrites a --dsn argument that carries a password in argv itself, so that it no longer
 * shows in the process's command line (ps, /proc). Call once the configuration holds a copy. */
void cli_scrub_argv(cli_options *opts);

/* Frees what cli_parse allocated. */
void cli_options_free(cli_options *opts);

/* Writes the usage text to stdout. */
void cli_print_usage(void);

#endif /* PGSTEP_CLI_H */
