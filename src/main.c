/* pgstep: parse the command line, load the configuration, run one command, and map its outcome
 * to an exit code and one final log event. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "pgstep/cli.h"
#include "pgstep/config.h"
#include "pgstep/exitcode.h"
#include "pgstep/interrupt.h"
#include "pgstep/log.h"
#include "pgstep/primary.h"
#include "pgstep/report.h"
#include "pgstep/runner.h"
#include "pgstep/signing.h"

static int run_wait(const pgstep_config *cfg, report *rep, pgstep_error *err)
{
    conn *c;

    if (!primary_wait(cfg, &c, err))
        return err->exit_code;
    conn_close(c);
    log_info("primary is writable");
    report_summary(rep, "primary is writable");
    return PGSTEP_EXIT_OK;
}

static int run_command(const cli_options *opts, const pgstep_config *cfg, report *rep,
                       pgstep_error *err)
{
    switch (opts->command) {
    case CLI_WAIT:
        return run_wait(cfg, rep, err);
    case CLI_VERIFY:
        return runner_verify(cfg, rep, err);
    case CLI_APPLY:
        return runner_apply(cfg, opts->dry_run, opts->allow_drift, rep, err);
    case CLI_STATUS:
        return runner_status(cfg, opts->json, rep, err);
    case CLI_MANIFEST:
        return signing_manifest(cfg, rep, err);
    case CLI_KEYGEN:
        return signing_keygen(opts, rep, err);
    case CLI_SIGN:
        return signing_sign(cfg, opts, rep, err);
    default:
        return PGSTEP_EXIT_USAGE;
    }
}

/* Output that never reached stdout (a full disk, a closed pipe) fails the run, even when the
 * command itself succeeded: a script reading it would get nothing, or half of it. */
static bool stdout_written(pgstep_error *err)
{
    char errbuf[128];

    if (fflush(stdout) != 0)
        return error_set(err, PGSTEP_EXIT_IO, "could not write to standard output: %s",
                         error_errno_text(errno, errbuf, sizeof(errbuf)));
    if (ferror(stdout))
        return error_set(err, PGSTEP_EXIT_IO, "could not write to standard output");
    return true;
}

int main(int argc, char **argv)
{
    cli_options opts;
    pgstep_config *cfg = NULL;
    pgstep_error err;
    report rep;
    int code;

    error_clear(&err);
    report_init(&rep);
    interrupt_install();
    if (sodium_init() < 0) {
        fprintf(stderr, "pgstep: could not initialise libsodium\n");
        return PGSTEP_EXIT_CONFIG;
    }
    if (!cli_parse(argc, argv, &opts, &err)) {
        log_error_event(&err);
        cli_options_free(&opts);
        return err.exit_code;
    }
    if (opts.command == CLI_HELP || opts.command == CLI_VERSION) {
        if (opts.command == CLI_HELP)
            cli_print_usage();
        else
            printf("pgstep %s\n", PGSTEP_VERSION);
        cli_options_free(&opts);
        if (!stdout_written(&err)) {
            log_error_event(&err);
            return err.exit_code;
        }
        return PGSTEP_EXIT_OK;
    }
    if (!config_load(&opts, &cfg, &err)) {
        log_error_event(&err);
        cli_options_free(&opts);
        return err.exit_code;
    }
    cli_scrub_argv(&opts);
    log_configure(cfg->log_format, cfg->log_level);
    code = run_command(&opts, cfg, &rep, &err);
    if (code == PGSTEP_EXIT_OK && !stdout_written(&err))
        code = err.exit_code;
    if (code != PGSTEP_EXIT_OK) {
        log_error_event(&err);
        report_failure(&rep, &err);
    }
    report_write_termination_log(&rep, cfg->termination_log);
    config_free(cfg);
    cli_options_free(&opts);
    return code;
}
