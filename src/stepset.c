/* The step set: a directory of step files listed, named, read (stepfile.c), parsed for directives
 * (directives.c), substituted, split, checksummed and ordered before any connection is made.
 * Every problem is logged and loading goes on, so one run shows them all. */
#include "pgstep/stepset.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgstep/directives.h"
#include "pgstep/exitcode.h"
#include "pgstep/interrupt.h"
#include "pgstep/log.h"
#include "pgstep/stepfile.h"
#include "pgstep/utf8.h"

#define STEPSET_SUFFIX ".sql"

#define STEPSET_NAME_HINT                                                                          \
    "Step files are named V<version>__<description>.sql or R__<description>.sql."

struct stepset {
    char *dir;
    step *steps;
    size_t count;
};

/* What loading one directory needs and what it found wrong. */
typedef struct loader {
    const char *dir;
    char *real_dir; /* the directory with links resolved, to see where links point */
    const vars *vars;
    int problems;
    bool out_of_memory; /* one of the problems was: the load ends with PGSTEP_EXIT_NOMEM */
    char first_problem[ERROR_TEXT_MAX];
} loader;

/* A .sql file name and what it says. */
typedef struct step_name {
    char *file_name;
    bool valid;
    step_kind kind;
    long long version;
} step_name;

/* One file's problems as directives.c reports them: to its loader, under its name. */
typedef struct file_problems {
    loader *ld;
    const char *name;
} file_problems;

static void stepset_problem(loader *ld, const char *file_name, int line, const char *hint,
                            const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Logs one problem of a step file as "name:line: message" and counts it. */
static void stepset_problem(loader *ld, const char *file_name, int line, const char *hint,
                            const char *fmt, ...)
{
    char text[ERROR_TEXT_MAX];
    char message[ERROR_TEXT_MAX + 300];
    char path[PATH_MAX];
    log_field fields[3];
    int nfields = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(message, sizeof(message), "%s:%d: %s", file_name, line, text);
    else
        snprintf(message, sizeof(message), "%s: %s", file_name, text);
    snprintf(path, sizeof(path), "%s/%s", ld->dir, file_name);
    fields[nfields++] = LOG_STR("file", path);
    if (line > 0)
        fields[nfields++] = LOG_NUM("line", line);
    if (hint)
        fields[nfields++] = LOG_STR("hint", hint);
    log_event(LOG_ERROR, fields, nfields, "%s%s%s", message, hint ? ". Hint: " : "",
              hint ? hint : "");
    if (ld->problems++ == 0) {
        /* Cut to fit, deliberately: it only feeds the summary's detail. */
        size_t n = strlen(message);

        if (n >= sizeof(ld->first_problem))
            n = sizeof(ld->first_problem) - 1;
        memcpy(ld->first_problem, message, n);
        ld->first_problem[n] = '\0';
    }
}

/* Out of memory is a problem too, but not one of the step set. */
static void stepset_nomem(loader *ld, const char *file_name, int line)
{
    ld->out_of_memory = true;
    stepset_problem(ld, file_name, line, NULL, "out of memory");
}

/* A directives_problem_fn: ctx is a file_problems. */
static void stepset_file_problem(void *ctx, int line, const char *hint, const char *message)
{
    const file_problems *fp = ctx;

    stepset_problem(fp->ld, fp->name, line, hint, "%s", message);
}

/* ---- File names ---- */

static bool has_suffix(const char *name, const char *suffix, bool ignore_case)
{
    size_t n = strlen(name), s = strlen(suffix);

    if (n < s)
        return false;
    return ignore_case ? strcasecmp(name + n - s, suffix) == 0 : strcmp(name + n - s, suffix) == 0;
}

const char *stepset_parse_name(const char *name, step_kind *kind, long long *version,
                               size_t *desc_start)
{
    size_t base;
    size_t i = 1;
    long long v = 0;

    if (!has_suffix(name, STEPSET_SUFFIX, false))
        return "";
    base = strlen(name) - strlen(STEPSET_SUFFIX);
    if (strncmp(name, "R__", 3) == 0) {
        *kind = STEP_REPEATABLE;
        *version = 0;
        *desc_start = 3;
        return base > 3 ? NULL : "the description is empty";
    }
    if (name[0] != 'V' || !(name[1] >= '0' && name[1] <= '9'))
        return "";
    for (; name[i] >= '0' && name[i] <= '9'; i++) {
        int d = name[i] - '0';

        if (v > (LLONG_MAX - d) / 10)
            return "the version is out of range";
        v = v * 10 + d;
    }
    if (strncmp(name + i, "__", 2) != 0)
        return "";
    if (v == 0)
        return "the version must be greater than zero";
    if (base <= i + 2)
        return "the description is empty";
    *kind = STEP_VERSIONED;
    *version = v;
    *desc_start = i + 2;
    return NULL;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects the names of the .sql files in the directory, sorted so problems come in order. */
bool stepset_list_files(const char *dir, char ***out, size_t *count, pgstep_error *err)
{
    char errbuf[128];
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0, capacity = 0;
    struct dirent *de;

    if (!d)
        return error_set(err, PGSTEP_EXIT_STEPSET, "could not open step directory \"%s\": %s", dir,
                         error_errno_text(errno, errbuf, sizeof(errbuf)));
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (!de)
            break;
        if (!has_suffix(de->d_name, STEPSET_SUFFIX, false)) {
            char shown[256];

            if (has_suffix(de->d_name, STEPSET_SUFFIX, true))
                log_warn("%s: ignored: step files end in lowercase \".sql\"",
                         utf8_escape(de->d_name, shown, sizeof(shown)));
            continue;
        }
        if (n == capacity) {
            size_t newcap = capacity ? capacity * 2 : 32;
            char **grown = realloc(names, newcap * sizeof(char *));

            if (!grown)
                goto oom;
            names = grown;
            capacity = newcap;
        }
        if (!(names[n] = strdup(de->d_name)))
            goto oom;
        n++;
    }
    if (errno != 0) {
        int saved = errno;

        closedir(d);
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return error_set(err, PGSTEP_EXIT_STEPSET, "could not read step directory \"%s\": %s", dir,
                         error_errno_text(saved, errbuf, sizeof(errbuf)));
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(char *), compare_strings);
    *out = names;
    *count = n;
    return true;

oom:
    closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
}

static int compare_names_by_version(const void *a, const void *b)
{
    const step_name *x = *(const step_name *const *)a, *y = *(const step_name *const *)b;

    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    return strcmp(x->file_name, y->file_name);
}

/* Two versioned files with one version would make the order ambiguous: name both. */
static void check_duplicate_versions(loader *ld, step_name *names, size_t n)
{
    step_name **versioned = malloc((n ? n : 1) * sizeof(step_name *));
    size_t nv = 0;

    if (!versioned) {
        stepset_nomem(ld, ld->dir, 0);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (names[i].valid && names[i].kind == STEP_VERSIONED)
            versioned[nv++] = &names[i];
    }
    qsort(versioned, nv, sizeof(step_name *), compare_names_by_version);
    for (size_t i = 1; i < nv; i++) {
        if (versioned[i]->version == versioned[i - 1]->version)
            stepset_problem(ld, versioned[i]->file_name, 0, NULL,
                            "version %lld is used by both \"%s\" and \"%s\"", versioned[i]->version,
                            versioned[i - 1]->file_name, versioned[i]->file_name);
    }
    free(versioned);
}

/* ---- One step ---- */

/* Substitutes and checks the rerun-when query: exactly one statement, kept without its ';'. */
static void load_rerun_query(loader *ld, const char *name, const directives *d, step *s)
{
    lexer_error lerr;
    lexer_statement *stmts = NULL;
    size_t nstmts = 0, len = 0;
    char *query = NULL;

    if (!lexer_substitute(d->rerun_query, strlen(d->rerun_query), ld->vars, STEPFILE_MAX_SIZE,
                          &query, &len, &lerr) ||
        !lexer_split(query, len, &stmts, &nstmts, &lerr)) {
        ld->out_of_memory |= lerr.out_of_memory;
        stepset_problem(ld, name, d->rerun_line, NULL, "rerun-when query: %s", lerr.message);
    } else if (nstmts != 1) {
        stepset_problem(ld, name, d->rerun_line, NULL,
                        "rerun-when query must be exactly one statement, not %zu", nstmts);
    } else if (!(s->rerun_query = strndup(query + stmts[0].offset, stmts[0].length))) {
        stepset_nomem(ld, name, d->rerun_line);
    }
    free(stmts);
    free(query);
}

static void step_clear(step *s)
{
    free(s->description);
    free(s->file_name);
    free(s->sql);
    free(s->rerun_query);
    free(s->statements);
    memset(s, 0, sizeof(*s));
}

/* Substitutes variables, splits into statements and runs the checks that need them. */
static bool load_sql(loader *ld, const char *name, const char *text, size_t len, step *s)
{
    int before = ld->problems;
    file_problems fp = {.ld = ld, .name = name};
    lexer_error lerr;
    size_t bad;

    if (!lexer_substitute(text, len, ld->vars, STEPFILE_MAX_SIZE, &s->sql, &s->sql_len, &lerr)) {
        ld->out_of_memory |= lerr.out_of_memory;
        stepset_problem(ld, name, lerr.line, NULL, "%s", lerr.message);
        return false;
    }
    bad = utf8_invalid_offset(s->sql, s->sql_len);
    if (bad < s->sql_len) {
        stepset_problem(ld, name, stepfile_line_of(s->sql, bad), NULL,
                        "a substituted variable value is not valid UTF-8");
        return false;
    }
    if (!lexer_split(s->sql, s->sql_len, &s->statements, &s->nstatements, &lerr)) {
        ld->out_of_memory |= lerr.out_of_memory;
        stepset_problem(ld, name, lerr.line, NULL, "%s", lerr.message);
        return false;
    }
    if (s->nstatements == 0) {
        stepset_problem(ld, name, 0, NULL, "step file contains no SQL statements");
        return false;
    }
    if (!s->no_transaction)
        directives_check_transaction_control(s->sql, s->statements, s->nstatements,
                                             stepset_file_problem, &fp);
    directives_check_copy(s->sql, s->statements, s->nstatements, stepset_file_problem, &fp);
    return ld->problems == before;
}

/* Loads and validates one well-named step file into s; false after logging its problems. */
static bool load_step(loader *ld, const step_name *sn, size_t desc_start, step *s)
{
    const char *name = sn->file_name;
    size_t desc_len = strlen(name) - strlen(STEPSET_SUFFIX) - desc_start;
    directives d = {0};
    file_problems fp = {.ld = ld, .name = name};
    stepfile_error ferr;
    char *text = NULL;
    size_t len = 0;
    bool ok = false;
    int before = ld->problems;

    memset(s, 0, sizeof(*s));
    if (!stepfile_read(ld->dir, ld->real_dir, name, &text, &len, s->file_checksum, &ferr)) {
        ld->out_of_memory |= ferr.out_of_memory;
        stepset_problem(ld, name, ferr.line, ferr.hint, "%s", ferr.message);
        return false;
    }
    s->kind = sn->kind;
    s->version = sn->version;
    s->description = strndup(name + desc_start, desc_len);
    s->file_name = strdup(name);
    if (!s->description || !s->file_name) {
        stepset_nomem(ld, name, 0);
        goto done;
    }
    if (!directives_parse(text, len, sn->kind == STEP_REPEATABLE, &d, stepset_file_problem, &fp))
        goto done;
    s->no_transaction = d.no_transaction;
    if (!load_sql(ld, name, text, len, s))
        goto done;
    if (d.rerun_query)
        load_rerun_query(ld, name, &d, s);
    checksum_sql(s->sql, s->sql_len, s->checksum);
    ok = ld->problems == before;

done:
    if (!ok)
        step_clear(s);
    free(d.rerun_query);
    free(text);
    return ok;
}

/* ---- The set ---- */

int step_order(step_kind ka, long long va, const char *da, step_kind kb, long long vb,
               const char *db)
{
    if (ka != kb)
        return ka == STEP_VERSIONED ? -1 : 1;
    if (ka == STEP_VERSIONED)
        return va < vb ? -1 : va > vb;
    return strcmp(da, db);
}

static int compare_steps(const void *a, const void *b)
{
    const step *x = a, *y = b;

    return step_order(x->kind, x->version, x->description, y->kind, y->version, y->description);
}

/* Parses every name, then loads the well-named files; problems are counted in ld. */
static void load_all(loader *ld, char **files, size_t nfiles, stepset *set)
{
    step_name *names = calloc(nfiles ? nfiles : 1, sizeof(step_name));
    size_t *desc_starts = calloc(nfiles ? nfiles : 1, sizeof(size_t));

    if (!names || !desc_starts || !(set->steps = calloc(nfiles ? nfiles : 1, sizeof(step)))) {
        stepset_nomem(ld, ld->dir, 0);
        goto done;
    }
    for (size_t i = 0; i < nfiles; i++) {
        const char *why =
            stepset_parse_name(files[i], &names[i].kind, &names[i].version, &desc_starts[i]);
        char shown[256];

        names[i].file_name = files[i];
        /* The server and JSON want UTF-8, and a control character would reach terminals and
         * break lines: such a name is refused, and shown escaped. */
        if (utf8_invalid_offset(files[i], strlen(files[i])) < strlen(files[i]) ||
            utf8_has_control(files[i])) {
            utf8_escape(files[i], shown, sizeof(shown));
            stepset_problem(ld, shown, 0, STEPSET_NAME_HINT, "invalid step file name \"%s\": %s",
                            shown,
                            utf8_has_control(files[i]) ? "it holds a control character"
                                                       : "it is not valid UTF-8");
            continue;
        }
        names[i].valid = why == NULL;
        if (why && *why)
            stepset_problem(ld, files[i], 0, STEPSET_NAME_HINT, "invalid step file name \"%s\": %s",
                            files[i], why);
        else if (why)
            stepset_problem(ld, files[i], 0, STEPSET_NAME_HINT, "invalid step file name \"%s\"",
                            files[i]);
    }
    check_duplicate_versions(ld, names, nfiles);
    /* Reading and substituting many large files takes a while: a signal stops it. */
    for (size_t i = 0; i < nfiles && !interrupt_pending(); i++) {
        if (names[i].valid && load_step(ld, &names[i], desc_starts[i], &set->steps[set->count]))
            set->count++;
    }
done:
    free(names);
    free(desc_starts);
}

bool stepset_load(const char *dir, const vars *v, stepset **out, pgstep_error *err)
{
    char errbuf[128];
    loader ld = {.dir = dir, .vars = v};
    stepset *set = NULL;
    char **files = NULL;
    size_t nfiles = 0;
    bool ok = false;

    *out = NULL;
    if (!(ld.real_dir = realpath(dir, NULL)))
        return error_set(err, PGSTEP_EXIT_STEPSET, "could not open step directory \"%s\": %s", dir,
                         error_errno_text(errno, errbuf, sizeof(errbuf)));
    if (!stepset_list_files(dir, &files, &nfiles, err))
        goto done;
    if (!(set = calloc(1, sizeof(stepset))) || !(set->dir = strdup(dir))) {
        error_set(err, PGSTEP_EXIT_NOMEM, "out of memory");
        goto done;
    }
    load_all(&ld, files, nfiles, set);
    if (interrupt_check(err))
        goto done;
    if (ld.out_of_memory) {
        error_set(err, PGSTEP_EXIT_NOMEM, "out of memory while loading step set \"%s\"", dir);
        goto done;
    }
    if (ld.problems > 0) {
        error_set(err, PGSTEP_EXIT_STEPSET, "step set \"%s\" is invalid: %d %s", dir, ld.problems,
                  ld.problems == 1 ? "problem" : "problems");
        error_detail(err, "First problem: %s", ld.first_problem);
        goto done;
    }
    qsort(set->steps, set->count, sizeof(step), compare_steps);
    *out = set;
    set = NULL;
    ok = true;

done:
    stepset_free(set);
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    free(ld.real_dir);
    return ok;
}

void stepset_free(stepset *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->count; i++)
        step_clear(&set->steps[i]);
    free(set->steps);
    free(set->dir);
    free(set);
}

size_t stepset_count(const stepset *set)
{
    return set->count;
}

const step *stepset_get(const stepset *set, size_t i)
{
    return i < set->count ? &set->steps[i] : NULL;
}

const char *stepset_dir(const stepset *set)
{
    return set->dir;
}
