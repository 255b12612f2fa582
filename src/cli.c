/* The command line: one option table, options allowed before or after the command. */
#include "pgstep/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "pgstep/config.h"
#include "pgstep/exitcode.h"
#include "pgstep/secret.h"
#include "pgstep/utf8.h"

enum cli_long_only {
    OPT_DSN = 256,
    OPT_LOG_FORMAT,
    OPT_QUIET,
    OPT_VERBOSE,
    OPT_DRY_RUN,
    OPT_ALLOW_DRIFT,
    OPT_JSON,
    OPT_PUBLIC_KEY,
    OPT_SECRET_KEY,
    OPT_PASSWORD_FILE,
    OPT_UNENCRYPTED,
    OPT_TRUSTED_COMMENT,
};

static const struct option cli_long_options[] = {
    {"config", required_argument, NULL, 'c'},
    {"dir", required_argument, NULL, 'd'},
    {"dsn", required_argument, NULL, OPT_DSN},
    {"set", required_argument, NULL, 'v'},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"allow-drift", no_argument, NULL, OPT_ALLOW_DRIFT},
    {"json", no_argument, NULL, OPT_JSON},
    {"public-key", required_argument, NULL, OPT_PUBLIC_KEY},
    {"secret-key", required_argument, NULL, OPT_SECRET_KEY},
    {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
    {"unencrypted", no_argument, NULL, OPT_UNENCRYPTED},
    {"trusted-comment", required_argument, NULL, OPT_TRUSTED_COMMENT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static const struct {
    const char *name;
    cli_command command;
} cli_commands[] = {
    {"apply", CLI_APPLY},       {"status", CLI_STATUS}, {"wait", CLI_WAIT}, {"verify", CLI_VERIFY},
    {"manifest", CLI_MANIFEST}, {"keygen", CLI_KEYGEN}, {"sign", CLI_SIGN},
};

void cli_print_usage(void)
{
    printf("pgstep applies a versioned, checksummed set of SQL steps to a PostgreSQL primary,\n"
           "once it is writable.\n"
           "\n"
           "Usage:\n"
           "  pgstep [OPTION]... COMMAND\n"
           "\n"
           "Commands:\n"
           "  apply     wait for the primary, then apply pending steps\n"
           "  status    show every step and whether it is applied, pending or changed\n"
           "  wait      wait until the primary accepts writes, then exit\n"
           "  verify    check the step set without connecting\n"
           "  manifest  write pgstep.sum, the list of step files and their checksums\n"
           "  keygen    write a minisign key pair for signing step sets\n"
           "  sign      sign pgstep.sum, writing pgstep.sum.minisig\n"
           "\n"
           "Options:\n"
           "  -c, --config=FILE        configuration file (default %s, $PGSTEP_CONFIG)\n"
           "  -d, --dir=DIR            steps directory ($PGSTEP_DIR)\n"
           "      --dsn=CONNINFO       libpq connection string or URI ($PGSTEP_DSN)\n"
           "  -v, --set=NAME=VALUE     set a variable for the SQL steps\n"
           "      --log-format=FORMAT  text or json\n"
           "      --quiet              log warnings and errors only\n"
           "      --verbose            log debug events too\n"
           "      --dry-run            apply: print the plan, change nothing\n"
           "      --allow-drift        apply: warn about changed or missing applied steps\n"
           "                           instead of failing\n"
           "      --json               status: print one JSON document\n"
           "      --public-key=FILE    keygen: public key file (default pgstep.pub)\n"
           "      --secret-key=FILE    keygen, sign: secret key file (default pgstep.key)\n"
           "      --password-file=FILE keygen, sign: read the key's password from FILE\n"
           "                           instead of the terminal\n"
           "      --unencrypted        keygen: do not encrypt the secret key (for CI)\n"
           "      --trusted-comment=TEXT\n"
           "                           sign: the signed comment (default: a timestamp)\n"
           "  -h, --help               show this help, then exit\n"
           "  -V, --version            show the version, then exit\n"
           "\n"
           "The libpq environment (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSFILE, ...) applies.\n"
           "\n"
           "Exit codes: 0 success, 1 a step failed, 64 usage error, 65 invalid step set,\n"
           "69 primary not ready, 71 out of memory, 73 could not write a file,\n"
           "74 output not written, 75 temporary failure, 78 configuration error,\n"
           "130/143 interrupted.\n"
           "\n"
           "Configuration keys:\n",
           CONFIG_DEFAULT_PATH);
    config_print_keys();
}

/* Usage errors about an option's argument name the option only: the argument may be a
 * connection string with a password in it. */
static bool cli_parse_set(const char *arg, cli_options *opts, pgstep_error *err)
{
    const char *eq = strchr(arg, '=');
    char name[256];
    size_t namelen;

    if (!eq || eq == arg)
        return error_set(err, PGSTEP_EXIT_USAGE,
                         "invalid argument for option -v/--set: expected NAME=VALUE");
    namelen = (size_t)(eq - arg);
    if (namelen >= sizeof(name) || !vars_name_valid(arg, namelen))
        return error_set(err, PGSTEP_EXIT_USAGE,
                         "invalid variable name in option -v/--set: a name is letters, digits "
                         "and underscores");
    if (utf8_invalid_offset(eq + 1, strlen(eq + 1)) != strlen(eq + 1))
        return error_set(err, PGSTEP_EXIT_USAGE,
                         "invalid value in option -v/--set: it is not valid UTF-8");
    memcpy(name, arg, namelen);
    name[namelen] = '\0';
    if (!vars_set(opts->vars, name, eq + 1))
        return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
    return true;
}

/* A word fit for a message, in buf: one that could be a connection string (and so hold a
 * password) is not repeated, and control characters are escaped. */
static const char *cli_shown(const char *arg, char *buf, size_t size)
{
    if (strchr(arg, '=') || strstr(arg, "://"))
        return "(a connection string?)";
    return utf8_escape(arg, buf, size);
}

static bool cli_set_command(const char *word, cli_options *opts, pgstep_error *err)
{
    char shown[128];

    if (opts->command != CLI_NONE)
        return error_set(err, PGSTEP_EXIT_USAGE, "unexpected argument \"%s\"",
                         cli_shown(word, shown, sizeof(shown)));
    for (size_t i = 0; i < sizeof(cli_commands) / sizeof(cli_commands[0]); i++) {
        if (strcmp(word, cli_commands[i].name) == 0) {
            opts->command = cli_commands[i].command;
            return true;
        }
    }
    error_set(err, PGSTEP_EXIT_USAGE, "unknown command \"%s\"",
              cli_shown(word, shown, sizeof(shown)));
    error_hint(err, "Commands are apply, status, wait, verify, manifest, keygen and sign.");
    return false;
}

/* Command-specific flags given to another command are mistakes worth reporting. */
static bool cli_check_flags(const cli_options *opts, pgstep_error *err)
{
    if (opts->dry_run && opts->command != CLI_APPLY)
        return error_set(err, PGSTEP_EXIT_USAGE, "option --dry-run is only valid with apply");
    if (opts->allow_drift && opts->command != CLI_APPLY)
        return error_set(err, PGSTEP_EXIT_USAGE, "option --allow-drift is only valid with apply");
    if (opts->json && opts->command != CLI_STATUS)
        return error_set(err, PGSTEP_EXIT_USAGE, "option --json is only valid with status");
    if (opts->public_key && opts->command != CLI_KEYGEN)
        return error_set(err, PGSTEP_EXIT_USAGE, "option --public-key is only valid with keygen");
    if (opts->unencrypted && opts->command != CLI_KEYGEN)
        return error_set(err, PGSTEP_EXIT_USAGE, "option --unencrypted is only valid with keygen");
    if ((opts->secret_key || opts->password_file) && opts->command != CLI_KEYGEN &&
        opts->command != CLI_SIGN)
        return error_set(err, PGSTEP_EXIT_USAGE,
                         "options --secret-key and --password-file are only valid with keygen "
                         "and sign");
    if (opts->trusted_comment && opts->command != CLI_SIGN)
        return error_set(err, PGSTEP_EXIT_USAGE,
                         "option --trusted-comment is only valid with sign");
    if (opts->unencrypted && opts->password_file)
        return error_set(err, PGSTEP_EXIT_USAGE,
                         "options --unencrypted and --password-file cannot be used together");
    if (opts->log_format && strcmp(opts->log_format, "text") != 0 &&
        strcmp(opts->log_format, "json") != 0)
        return error_set(err, PGSTEP_EXIT_USAGE,
                         "invalid value for option --log-format: expected text or json");
    return true;
}

/* The long option that name (n bytes, no leading "--") is or abbreviates unambiguously, as
 * getopt_long matches it; NULL if none. */
static const struct option *cli_long_option(const char *name, size_t n)
{
    const struct option *found = NULL;

    for (const struct option *o = cli_long_options; o->name; o++) {
        if (strncmp(o->name, name, n) != 0)
            continue;
        if (o->name[n] == '\0')
            return o;
        if (found)
            return NULL;
        found = o;
    }
    return found;
}

/* Reports the option getopt_long refused (c is '?' or ':'), by name only: argv[elem] is the
 * element it was in, and nothing else of the command line is repeated, as any other word may
 * hold a password. */
static bool cli_option_error(int c, char **argv, int elem, pgstep_error *err)
{
    const char *arg = argv[elem];
    char shown[80];

    if (strncmp(arg, "--", 2) == 0) {
        size_t n = strcspn(arg + 2, "=");
        const struct option *o = cli_long_option(arg + 2, n);

        snprintf(shown, sizeof(shown), "--%.*s", (int)(n > 64 ? 64 : n), arg + 2);
        for (char *p = shown; *p; p++) {
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                *p = '?';
        }
        if (o && c == ':')
            snprintf(shown, sizeof(shown), "--%s", o->name);
        if (o && o->has_arg == no_argument && arg[2 + n] == '=')
            return error_set(err, PGSTEP_EXIT_USAGE, "option \"--%s\" does not take an argument",
                             o->name);
    } else if (optopt > 0x20 && optopt < 0x7f) {
        snprintf(shown, sizeof(shown), "-%c", optopt);
    } else {
        snprintf(shown, sizeof(shown), "-\\x%02x", (unsigned)optopt & 0xff);
    }
    if (c == ':')
        return error_set(err, PGSTEP_EXIT_USAGE, "option \"%s\" requires an argument", shown);
    error_set(err, PGSTEP_EXIT_USAGE, "unknown option \"%s\"", shown);
    error_hint(err, "Try \"pgstep --help\" for more information.");
    return false;
}

bool cli_parse(int argc, char **argv, cli_options *opts, pgstep_error *err)
{
    int c, elem;

    memset(opts, 0, sizeof(*opts));
    opts->vars = vars_new();
    if (!opts->vars)
        return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
    opterr = 0;
    optind = 1;
    /* The leading '-' hands non-option words to us in order, as code 1, so that optind before
     * a call is the element the next option comes from. */
    while ((elem = optind, c = getopt_long(argc, argv, "-:c:d:v:hVq", cli_long_options, NULL)) !=
           -1) {
        switch (c) {
        case 1:
            if (!cli_set_command(optarg, opts, err))
                return false;
            break;
        case 'c':
            opts->config_path = optarg;
            break;
        case 'd':
            opts->steps_dir = optarg;
            break;
        case 'v':
            if (!cli_parse_set(optarg, opts, err))
                return false;
            break;
        case OPT_DSN:
            /* Only the last --dsn counts: an earlier one is never used, so it is overwritten
             * at once (cli_scrub_argv does the last one once the configuration has it). */
            if (opts->dsn)
                cli_scrub_argv(opts);
            opts->dsn = optarg;
            break;
        case OPT_LOG_FORMAT:
            opts->log_format = optarg;
            break;
        case 'q':
        case OPT_QUIET:
        case OPT_VERBOSE:
            /* Which of the two was meant cannot be told: the last one given is no answer. */
            if (opts->verbosity != CLI_VERBOSITY_DEFAULT &&
                opts->verbosity != (c == OPT_VERBOSE ? CLI_VERBOSITY_VERBOSE : CLI_VERBOSITY_QUIET))
                return error_set(err, PGSTEP_EXIT_USAGE,
                                 "options --quiet and --verbose cannot be used together");
            opts->verbosity = c == OPT_VERBOSE ? CLI_VERBOSITY_VERBOSE : CLI_VERBOSITY_QUIET;
            break;
        case OPT_DRY_RUN:
            opts->dry_run = true;
            break;
        case OPT_ALLOW_DRIFT:
            opts->allow_drift = true;
            break;
        case OPT_JSON:
            opts->json = true;
            break;
        case OPT_PUBLIC_KEY:
            opts->public_key = optarg;
            break;
        case OPT_SECRET_KEY:
            opts->secret_key = optarg;
            break;
        case OPT_PASSWORD_FILE:
            opts->password_file = optarg;
            break;
        case OPT_UNENCRYPTED:
            opts->unencrypted = true;
            break;
        case OPT_TRUSTED_COMMENT:
            opts->trusted_comment = optarg;
            break;
        case 'h':
            opts->command = CLI_HELP;
            return true;
        case 'V':
            opts->command = CLI_VERSION;
            return true;
        case ':':
        default:
            return cli_option_error(c, argv, elem < argc ? elem : argc - 1, err);
        }
    }
    /* Words after "--" are not options, but the command may be one of them. */
    for (; optind < argc; optind++) {
        if (!cli_set_command(argv[optind], opts, err))
            return false;
    }
    if (opts->command == CLI_NONE) {
        error_set(err, PGSTEP_EXIT_USAGE, "no command given");
        error_hint(err, "Try \"pgstep --help\" for more information.");
        return false;
    }
    return cli_check_flags(opts, err);
}

void cli_scrub_argv(cli_options *opts)
{
    /* opts->dsn points into argv; the configuration has its own copy by now. */
    if (opts->dsn && secret_in_conninfo(opts->dsn))
        memset(opts->dsn, '*', strlen(opts->dsn));
}

void cli_options_free(cli_options *opts)
{
    vars_free(opts->vars);
    opts->vars = NULL;
}
