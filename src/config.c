/* Configuration: one table lists every key; the loader walks it to apply defaults, check types
 * and ranges, and reject unknown keys, so --help, README and validation cannot drift apart. */
#include "pgstep/config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libconfig.h>

#include "pgstep/config_scan.h"
#include "pgstep/exitcode.h"
#include "pgstep/interrupt.h"
#include "pgstep/utf8.h"

typedef enum config_type {
    CONFIG_STRING,
    CONFIG_INT,
    CONFIG_LOG_FORMAT,
    CONFIG_LOG_LEVEL,
    CONFIG_BOOL,
    CONFIG_STRING_LIST, /* a list or array of strings, or one string */
} config_type;

typedef struct config_key {
    const char *group;
    const char *name;
    config_type type;
    const char *default_value; /* NULL: unset */
    int min;
    int max;
    size_t offset;
    const char *description;
} config_key;

#define KEY_STR(g, n, def, field, desc)                                                            \
    {                                                                                              \
        g, n, CONFIG_STRING, def, 0, 0, offsetof(pgstep_config, field), desc                       \
    }
#define KEY_INT(g, n, def, lo, hi, field, desc)                                                    \
    {                                                                                              \
        g, n, CONFIG_INT, def, lo, hi, offsetof(pgstep_config, field), desc                        \
    }

static const config_key config_keys[] = {
    KEY_STR("connection", "conninfo", "", conninfo,
            "libpq connection string or URI; empty: libpq environment"),
    KEY_STR("connection", "password_file", NULL, password_file,
            "file holding the password (a mounted secret key)"),
    KEY_STR("connection", "dbname", NULL, dbname, "database name; overrides one in conninfo"),
    KEY_INT("connection", "connect_timeout", "5", 1, 3600, connect_timeout,
            "seconds allowed for one connection attempt"),
    KEY_STR("connection", "application_name", "pgstep", application_name,
            "application_name reported to the server"),
    KEY_INT("wait", "timeout", "300", 0, 86400, wait_timeout,
            "seconds to wait for a writable primary"),
    KEY_INT("wait", "max_interval_ms", "500", 10, 60000, wait_max_interval_ms,
            "longest pause between attempts; longest one connection is re-asked"),
    KEY_INT("wait", "auth_grace", "30", 0, 3600, wait_auth_grace,
            "seconds an authentication failure is retried after the server first answers"),
    KEY_STR("steps", "directory", "/usr/share/pgstep/steps", steps_dir, "steps directory"),
    KEY_STR("steps", "schema", "pgstep", history_schema, "schema of the history table"),
    {"steps", "databases", CONFIG_STRING_LIST, NULL, 0, 0, offsetof(pgstep_config, databases),
     "databases to apply, in order, each from its subdirectory of steps.directory"},
    {"steps", "require_manifest", CONFIG_BOOL, "false", 0, 0,
     offsetof(pgstep_config, require_manifest), "a step set without pgstep.sum is an error"},
    {"steps", "trusted_keys", CONFIG_STRING_LIST, NULL, 0, 0, offsetof(pgstep_config, trusted_keys),
     "minisign public keys, base64 or files (/path, ./path); pgstep.sum must be signed by one"},
    KEY_STR("lock", "name", "pgstep", lock_name, "name the advisory lock key is derived from"),
    KEY_INT("lock", "timeout", "60", 0, 86400, lock_timeout,
            "seconds to wait for the advisory lock"),
    KEY_INT("apply", "statement_timeout", "0", 0, 86400, statement_timeout,
            "statement_timeout in seconds for step transactions; 0: none"),
    KEY_INT("apply", "lock_timeout", "10", 0, 86400, apply_lock_timeout,
            "lock_timeout in seconds for step transactions; 0: none"),
    KEY_INT("apply", "retries", "3", 0, 100, retries, "retries of a step after a transient error"),
    {"log", "format", CONFIG_LOG_FORMAT, "text", 0, 0, offsetof(pgstep_config, log_format),
     "text or json"},
    {"log", "level", CONFIG_LOG_LEVEL, "info", 0, 0, offsetof(pgstep_config, log_level),
     "debug, info, warn or error"},
    KEY_STR("log", "termination_log", NULL, termination_log,
            "file that receives a one-line summary, e.g. /dev/termination-log"),
};

#define CONFIG_NKEYS           (sizeof(config_keys) / sizeof(config_keys[0]))
#define CONFIG_VARIABLES_GROUP "variables"

void config_print_keys(void)
{
    const char *group = "";

    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const config_key *k = &config_keys[i];
        char range[48] = "";

        if (strcmp(group, k->group) != 0) {
            group = k->group;
            printf("  %s:\n", group);
        }
        if (k->type == CONFIG_INT)
            snprintf(range, sizeof(range), " (%d..%d)", k->min, k->max);
        else if (k->type == CONFIG_STRING_LIST)
            snprintf(range, sizeof(range), " (a list of strings)");
        printf("    %-18s %s [default: %s]%s\n", k->name, k->description,
               k->default_value ? (*k->default_value ? k->default_value : "\"\"") : "none", range);
    }
    printf("  %s:\n    NAME = \"VALUE\"    a variable for the SQL steps\n", CONFIG_VARIABLES_GROUP);
}

static char **config_str_field(pgstep_config *cfg, const config_key *k)
{
    return (char **)((char *)cfg + k->offset);
}

static int *config_int_field(pgstep_config *cfg, const config_key *k)
{
    return (int *)((char *)cfg + k->offset);
}

static bool config_set_string(char **field, const char *value, pgstep_error *err)
{
    char *copy = NULL;

    if (value) {
        copy = strdup(value);
        if (!copy)
            return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
    }
    free(*field);
    *field = copy;
    return true;
}

/* Applies one textual value (a default or an enum from the file) to a field. */
static bool config_store_text(pgstep_config *cfg, const config_key *k, const char *value,
                              pgstep_error *err)
{
    switch (k->type) {
    case CONFIG_STRING:
        return config_set_string(config_str_field(cfg, k), value, err);
    case CONFIG_INT:
        *config_int_field(cfg, k) = atoi(value);
        return true;
    case CONFIG_LOG_FORMAT:
        if (!log_format_parse(value, (log_format *)((char *)cfg + k->offset)))
            return error_set(err, PGSTEP_EXIT_CONFIG, "expected text or json, got \"%s\"", value);
        return true;
    case CONFIG_LOG_LEVEL:
        if (!log_level_parse(value, (log_level *)((char *)cfg + k->offset)))
            return error_set(err, PGSTEP_EXIT_CONFIG,
                             "expected debug, info, warn or error, got \"%s\"", value);
        return true;
    case CONFIG_BOOL:
        *(bool *)((char *)cfg + k->offset) = strcmp(value, "true") == 0;
        return true;
    case CONFIG_STRING_LIST:
        return true; /* no default but none */
    }
    return true;
}

static void config_free_list(char **list)
{
    for (char **p = list; p && *p; p++)
        free(*p);
    free(list);
}

/* A list or array of non-empty strings, or a single string, into a NULL-terminated copy. */
static bool config_read_string_list(pgstep_config *cfg, const config_key *k, config_setting_t *s,
                                    pgstep_error *err)
{
    char ***field = (char ***)((char *)cfg + k->offset);
    bool single = config_setting_type(s) == CONFIG_TYPE_STRING;
    int n = single ? 1 : config_setting_length(s);
    char **list;

    if (!single && config_setting_type(s) != CONFIG_TYPE_ARRAY &&
        config_setting_type(s) != CONFIG_TYPE_LIST)
        return error_set(err, PGSTEP_EXIT_CONFIG, "expected a string or a list of strings");
    if (!(list = calloc((size_t)n + 1, sizeof(char *))))
        return error_set(err, PGSTEP_EXIT_CONFIG, "out of memory");
    for (int i = 0; i < n; i++) {
        config_setting_t *e = single ? s : config_setting_get_elem(s, (unsigned)i);
        const char *v =
            config_setting_type(e) == CONFIG_TYPE_STRING ? config_setting_get_string(e) : NULL;

        if (!v || !*v) {
            config_free_list(list);
            return error_set(err, PGSTEP_EXIT_CONFIG, "element %d: expected a non-empty string",
                             i + 1);
        }
        if (!(list[i] = strdup(v))) {
            config_free_list(list);
            return error_set(err, PGSTEP_EXIT_CONFIG, "out of memory");
        }
    }
    config_free_list(*field);
    *field = list;
    return true;
}

static const config_key *config_find_key(const char *group, const char *name)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        if (strcmp(config_keys[i].group, group) == 0 && strcmp(config_keys[i].name, name) == 0)
            return &config_keys[i];
    }
    return NULL;
}

static bool config_group_known(const char *group)
{
    if (strcmp(group, CONFIG_VARIABLES_GROUP) == 0)
        return true;
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        if (strcmp(config_keys[i].group, group) == 0)
            return true;
    }
    return false;
}

/* Prefixes the message already in err with "key "group.name": " and locates it at the file and
 * line (the included file the setting is in, if it is in one), which every log line shows. */
static bool config_key_error(pgstep_error *err, const char *path, const config_setting_t *s,
                             const char *group, const char *name)
{
    char message[ERROR_TEXT_MAX];
    int line = (int)config_setting_source_line(s);

    if (config_setting_source_file(s))
        path = config_setting_source_file(s);
    snprintf(message, sizeof(message), "%s", err->message);
    if (name)
        error_set(err, PGSTEP_EXIT_CONFIG, "key \"%s.%s\": %s", group, name, message);
    else
        error_set(err, PGSTEP_EXIT_CONFIG, "\"%s\": %s", group, message);
    error_location(err, path, line);
    return false;
}

/* A database name that is also a subdirectory name: PostgreSQL's length limit, no path
 * separator, not a special directory entry. */
static bool config_database_name_ok(const char *name)
{
    size_t len = strlen(name);

    return len > 0 && len < 64 && !strchr(name, '/') && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

/* steps.databases: names that are also subdirectory names, each once. */
static bool config_check_databases(char *const *names, pgstep_error *err)
{
    if (names && !names[0])
        return error_set(err, PGSTEP_EXIT_CONFIG,
                         "expected at least one database; leave the key out to apply the "
                         "database the connection names");
    for (size_t i = 0; names && names[i]; i++) {
        if (!config_database_name_ok(names[i]))
            return error_set(err, PGSTEP_EXIT_CONFIG,
                             "element %zu: expected a database name of 1 to 63 bytes without \"/\"",
                             i + 1);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(names[j], names[i]) == 0)
                return error_set(err, PGSTEP_EXIT_CONFIG, "database \"%s\" is listed twice",
                                 names[i]);
        }
    }
    return true;
}

static bool config_read_setting(pgstep_config *cfg, const config_scan *scan, const config_key *k,
                                config_setting_t *s, pgstep_error *err)
{
    int type = config_setting_type(s);

    if (k->type == CONFIG_INT) {
        const char *wide;
        long long value;

        if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
            return error_set(err, PGSTEP_EXIT_CONFIG, "expected an integer");
        /* libconfig keeps a wrapped value of a literal too wide for it: report it as written. */
        wide = config_scan_wide_integer(scan, config_setting_source_file(s),
                                        (int)config_setting_source_line(s), k->group, k->name);
        if (wide)
            return error_set(err, PGSTEP_EXIT_CONFIG, "value %s is out of range %d..%d", wide,
                             k->min, k->max);
        value = config_setting_get_int64(s);
        if (value < k->min || value > k->max)
            return error_set(err, PGSTEP_EXIT_CONFIG, "value %lld is out of range %d..%d", value,
                             k->min, k->max);
        *config_int_field(cfg, k) = (int)value;
        return true;
    }
    if (k->type == CONFIG_BOOL) {
        if (type != CONFIG_TYPE_BOOL)
            return error_set(err, PGSTEP_EXIT_CONFIG, "expected true or false");
        *(bool *)((char *)cfg + k->offset) = config_setting_get_bool(s) != 0;
        return true;
    }
    if (k->type == CONFIG_STRING_LIST)
        return config_read_string_list(cfg, k, s, err) &&
               (k->offset != offsetof(pgstep_config, databases) ||
                config_check_databases(cfg->databases, err));
    if (type != CONFIG_TYPE_STRING)
        return error_set(err, PGSTEP_EXIT_CONFIG, "expected a string");
    return config_store_text(cfg, k, config_setting_get_string(s), err);
}

static bool config_read_variables(pgstep_config *cfg, const char *path, config_setting_t *group,
                                  pgstep_error *err)
{
    int n = config_setting_length(group);

    for (int i = 0; i < n; i++) {
        config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        const char *name = config_setting_name(s);
        const char *value = config_setting_get_string(s); /* NULL unless a string */
        const char *problem = NULL;

        /* The same rules as -v: a name no step can reference, or a value the server would
         * refuse in the middle of an apply, is reported now. */
        if (!value)
            problem = "expected a string";
        else if (!vars_name_valid(name, strlen(name)))
            problem = "invalid variable name: a name is letters, digits and underscores";
        else if (utf8_invalid_offset(value, strlen(value)) != strlen(value))
            problem = "the value is not valid UTF-8";
        if (problem) {
            error_set(err, PGSTEP_EXIT_CONFIG, "%s", problem);
            return config_key_error(err, path, s, CONFIG_VARIABLES_GROUP, name);
        }
        if (!vars_set(cfg->vars, name, value))
            return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
    }
    return true;
}

static bool config_read_group(pgstep_config *cfg, const char *path, const config_scan *scan,
                              config_setting_t *group, pgstep_error *err)
{
    const char *gname = config_setting_name(group);
    int n;

    if (!config_group_known(gname)) {
        error_set(err, PGSTEP_EXIT_CONFIG, "unknown group");
        return config_key_error(err, path, group, gname, NULL);
    }
    if (config_setting_type(group) != CONFIG_TYPE_GROUP) {
        error_set(err, PGSTEP_EXIT_CONFIG, "expected a group { ... }");
        return config_key_error(err, path, group, gname, NULL);
    }
    if (strcmp(gname, CONFIG_VARIABLES_GROUP) == 0)
        return config_read_variables(cfg, path, group, err);
    n = config_setting_length(group);
    for (int i = 0; i < n; i++) {
        config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        const char *name = config_setting_name(s);
        const config_key *k = config_find_key(gname, name);

        if (!k)
            error_set(err, PGSTEP_EXIT_CONFIG, "unknown key");
        if (!k || !config_read_setting(cfg, scan, k, s, err))
            return config_key_error(err, path, s, gname, name);
    }
    return true;
}

/* Remembers where connection.conninfo was set, so that libpq's complaint about it can say. */
static bool config_note_conninfo_source(pgstep_config *cfg, const char *path,
                                        const config_setting_t *s, pgstep_error *err)
{
    char source[ERROR_TEXT_MAX];

    if (!s)
        return true;
    snprintf(source, sizeof(source), "%s:%d: key \"connection.conninfo\"",
             config_setting_source_file(s) ? config_setting_source_file(s) : path,
             (int)config_setting_source_line(s));
    return config_set_string(&cfg->conninfo_source, source, err);
}

static bool config_load_file(pgstep_config *cfg, const char *path, pgstep_error *err)
{
    config_scan *scan;
    config_t lc;
    config_setting_t *root;
    bool ok = true;

    /* pgstep reads the files, so that libconfig never opens what is not a regular file. */
    if (!config_scan_read(path, &scan, err))
        return false;
    config_init(&lc);
    if (!config_read_string(&lc, config_scan_text(scan))) {
        /* An error in an included file is reported there. */
        const char *file = config_error_file(&lc) ? config_error_file(&lc) : path;

        error_set(err, PGSTEP_EXIT_CONFIG, "syntax error: %s", config_error_text(&lc));
        error_location(err, file, config_error_line(&lc));
        config_destroy(&lc);
        config_scan_free(scan);
        return false;
    }
    root = config_root_setting(&lc);
    for (int i = 0; ok && i < config_setting_length(root); i++)
        ok = config_read_group(cfg, path, scan, config_setting_get_elem(root, (unsigned)i), err);
    if (ok)
        ok = config_note_conninfo_source(cfg, path, config_lookup(&lc, "connection.conninfo"), err);
    config_destroy(&lc);
    config_scan_free(scan);
    if (ok)
        ok = config_set_string(&cfg->source_path, path, err);
    /* A signal while parsing ends the run here rather than after connecting. */
    return ok && !interrupt_check(err);
}

static bool config_apply_defaults(pgstep_config *cfg, pgstep_error *err)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const config_key *k = &config_keys[i];

        if (k->default_value && !config_store_text(cfg, k, k->default_value, err))
            return false;
    }
    return true;
}

/* Command line over environment over file: later assignments win. */
static bool config_apply_overrides(pgstep_config *cfg, const cli_options *opts, pgstep_error *err)
{
    const char *env_dsn = getenv("PGSTEP_DSN");
    const char *env_dir = getenv("PGSTEP_DIR");
    const char *dsn = opts->dsn ? opts->dsn : env_dsn;
    const char *dir = opts->steps_dir ? opts->steps_dir : env_dir;

    if (dsn &&
        (!config_set_string(&cfg->conninfo, dsn, err) ||
         !config_set_string(&cfg->conninfo_source,
                            opts->dsn ? "option --dsn" : "environment variable PGSTEP_DSN", err)))
        return false;
    if (opts->steps_dir && !opts->steps_dir[0])
        return error_set(err, PGSTEP_EXIT_USAGE, "option -d/--dir: directory must not be empty");
    if (!opts->steps_dir && dir && !dir[0])
        return error_set(err, PGSTEP_EXIT_CONFIG,
                         "environment variable PGSTEP_DIR: directory must not be empty");
    if (dir && !config_set_string(&cfg->steps_dir, dir, err))
        return false;
    if (opts->log_format && !log_format_parse(opts->log_format, &cfg->log_format))
        return error_set(err, PGSTEP_EXIT_USAGE, "invalid value for option --log-format");
    if (opts->verbosity == CLI_VERBOSITY_QUIET)
        cfg->log_level = LOG_WARN;
    else if (opts->verbosity == CLI_VERBOSITY_VERBOSE)
        cfg->log_level = LOG_DEBUG;
    return true;
}

/* Values that are well-typed but still unusable. */
static bool config_validate(const pgstep_config *cfg, pgstep_error *err)
{
    const char *where = cfg->source_path ? cfg->source_path : "configuration";
    struct stat st;

    if (cfg->history_schema[0] == '\0')
        return error_set(err, PGSTEP_EXIT_CONFIG, "%s: key \"steps.schema\": must not be empty",
                         where);
    if (cfg->lock_name[0] == '\0')
        return error_set(err, PGSTEP_EXIT_CONFIG, "%s: key \"lock.name\": must not be empty",
                         where);
    if (cfg->steps_dir[0] == '\0')
        return error_set(err, PGSTEP_EXIT_CONFIG, "%s: key \"steps.directory\": must not be empty",
                         where);
    /* Written at the very end of the run: a FIFO there would block the exit. */
    if (cfg->termination_log && stat(cfg->termination_log, &st) == 0 && !S_ISREG(st.st_mode))
        return error_set(err, PGSTEP_EXIT_CONFIG,
                         "%s: key \"log.termination_log\": \"%s\" is not a regular file", where,
                         cfg->termination_log);
    return true;
}

static bool config_copy_cli_vars(pgstep_config *cfg, const cli_options *opts, pgstep_error *err)
{
    if (!opts->vars)
        return true;
    for (size_t i = 0; i < vars_count(opts->vars); i++) {
        const char *name = vars_name_at(opts->vars, i);

        if (!vars_set(cfg->vars, name, vars_get(opts->vars, name, strlen(name))))
            return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
    }
    return true;
}

bool config_load(const cli_options *opts, pgstep_config **out, pgstep_error *err)
{
    pgstep_config *cfg = calloc(1, sizeof(*cfg));
    const char *path = opts->config_path ? opts->config_path : getenv("PGSTEP_CONFIG");
    bool ok;

    *out = NULL;
    if (!cfg || !(cfg->vars = vars_new())) {
        free(cfg);
        return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
    }
    ok = config_apply_defaults(cfg, err);
    /* Only the default path may be absent: a file someone named must exist. */
    if (ok && path)
        ok = config_load_file(cfg, path, err);
    else if (ok && access(CONFIG_DEFAULT_PATH, F_OK) == 0)
        ok = config_load_file(cfg, CONFIG_DEFAULT_PATH, err);
    ok = ok && config_copy_cli_vars(cfg, opts, err) && config_apply_overrides(cfg, opts, err) &&
         config_validate(cfg, err);
    if (!ok) {
        config_free(cfg);
        return false;
    }
    *out = cfg;
    return true;
}

void config_free(pgstep_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        if (config_keys[i].type == CONFIG_STRING)
            free(*config_str_field(cfg, &config_keys[i]));
    }
    config_free_list(cfg->databases);
    config_free_list(cfg->trusted_keys);
    free(cfg->source_path);
    free(cfg->conninfo_source);
    vars_free(cfg->vars);
    free(cfg);
}
