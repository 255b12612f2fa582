/* Fuzzes the configuration loader, config_load, on the input as the configuration file (written
 * to a scratch file; an @include is followed relative to the working directory, as pgstep does).
 * Checks: a configuration that loads holds every key within its range and the strings pgstep
 * cannot do without; one that does not load fails with a configuration error and a message. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pgstep/cli.h"
#include "pgstep/config.h"
#include "pgstep/exitcode.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Only the file may speak. */
    unsetenv("PGSTEP_CONFIG");
    unsetenv("PGSTEP_DSN");
    unsetenv("PGSTEP_DIR");
    return 0;
}

static void check_config(const pgstep_config *cfg)
{
    FUZZ_CHECK(cfg->conninfo && cfg->application_name);
    FUZZ_CHECK(cfg->steps_dir && cfg->steps_dir[0]);
    FUZZ_CHECK(cfg->history_schema && cfg->history_schema[0]);
    FUZZ_CHECK(cfg->lock_name && cfg->lock_name[0]);
    FUZZ_CHECK(cfg->connect_timeout >= 1 && cfg->connect_timeout <= 3600);
    FUZZ_CHECK(cfg->wait_timeout >= 0 && cfg->wait_timeout <= 86400);
    FUZZ_CHECK(cfg->wait_max_interval_ms >= 10 && cfg->wait_max_interval_ms <= 60000);
    FUZZ_CHECK(cfg->wait_auth_grace >= 0 && cfg->wait_auth_grace <= 3600);
    FUZZ_CHECK(cfg->lock_timeout >= 0 && cfg->lock_timeout <= 86400);
    FUZZ_CHECK(cfg->statement_timeout >= 0 && cfg->statement_timeout <= 86400);
    FUZZ_CHECK(cfg->apply_lock_timeout >= 0 && cfg->apply_lock_timeout <= 86400);
    FUZZ_CHECK(cfg->retries >= 0 && cfg->retries <= 100);
    FUZZ_CHECK(cfg->log_format == LOG_FORMAT_TEXT || cfg->log_format == LOG_FORMAT_JSON);
    FUZZ_CHECK(cfg->log_level >= LOG_DEBUG && cfg->log_level <= LOG_ERROR);
    FUZZ_CHECK(cfg->vars != NULL && cfg->source_path != NULL);
    for (size_t i = 0; cfg->databases && cfg->databases[i]; i++)
        FUZZ_CHECK(cfg->databases[i][0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cli_options opts = {0};
    pgstep_config *cfg = NULL;
    pgstep_error err;

    opts.command = CLI_VERIFY;
    opts.config_path = fuzz_write_file(fuzz_scratch_dir(), "pgstep.conf", data, size);
    error_clear(&err);
    if (config_load(&opts, &cfg, &err)) {
        check_config(cfg);
        config_free(cfg);
    } else {
        FUZZ_CHECK(cfg == NULL);
        FUZZ_CHECK(err.exit_code == PGSTEP_EXIT_CONFIG && err.message[0] != '\0');
    }
    return 0;
}
