/* Reports of a plan, for people and for scripts. Program output goes to stdout. */
#include "pgstep/status.h"

#include "pgstep/json.h"
#include "pgstep/utf8.h"

static const char *status_file(const plan_item *item)
{
    return item->step ? item->step->file_name : item->recorded->file_name;
}

/* The file name for a text line: a name recorded in the history may hold anything, and a
 * control character would drive the terminal or break the table. */
static const char *status_file_shown(const plan_item *item, char *buf, size_t size)
{
    return utf8_escape(status_file(item), buf, size);
}

void status_print_text(const char *database, const plan *p, FILE *f)
{
    if (database)
        fprintf(f, "database \"%s\":\n", database);
    fprintf(f, "%-8s %-40s %-20s %s\n", "STATE", "STEP", "APPLIED AT", "CHECKSUM");
    for (size_t i = 0; i < plan_count(p); i++) {
        const plan_item *item = plan_get(p, i);

        char shown[1024];

        fprintf(f, "%-8s %-40s %-20s %.12s\n", plan_state_name(item->state),
                status_file_shown(item, shown, sizeof(shown)),
                item->recorded ? item->recorded->applied_at : "-", item->checksum);
    }
    fprintf(f, "%zu applied, %zu pending, %zu to re-run, %zu changed, %zu missing\n",
            plan_count_state(p, PLAN_APPLIED), plan_count_state(p, PLAN_PENDING),
            plan_count_state(p, PLAN_RERUN), plan_count_state(p, PLAN_CHANGED),
            plan_count_state(p, PLAN_MISSING));
}

static void status_json_item(const plan_item *item, FILE *f)
{
    const step *s = item->step;
    const history_entry *rec = item->recorded;
    step_kind kind = s ? s->kind : rec->kind;
    long long version = s ? s->version : rec->version;

    fputs("{\"file\":", f);
    json_write_string(f, status_file(item));
    fprintf(f, ",\"kind\":\"%s\",\"version\":", kind == STEP_VERSIONED ? "V" : "R");
    if (kind == STEP_VERSIONED)
        fprintf(f, "%lld", version);
    else
        fputs("null", f);
    fputs(",\"description\":", f);
    json_write_string(f, s ? s->description : rec->description);
    fprintf(f, ",\"state\":\"%s\",\"checksum\":", plan_state_name(item->state));
    if (s)
        json_write_string(f, item->checksum);
    else
        fputs("null", f);
    fputs(",\"recorded_checksum\":", f);
    if (rec)
        json_write_string(f, rec->checksum);
    else
        fputs("null", f);
    fputs(",\"applied_at\":", f);
    if (rec)
        json_write_string(f, rec->applied_at);
    else
        fputs("null", f);
    fprintf(f, ",\"no_transaction\":%s,\"rerun_when\":%s}",
            s && s->no_transaction ? "true" : "false", s && s->rerun_query ? "true" : "false");
}

static void status_json_steps(const plan *p, FILE *f)
{
    fputs("\"steps\":[", f);
    for (size_t i = 0; i < plan_count(p); i++) {
        if (i > 0)
            fputc(',', f);
        status_json_item(plan_get(p, i), f);
    }
    fputc(']', f);
}

/* "summary":{...} over the plans. */
static void status_json_summary(const plan *const *plans, size_t n, FILE *f)
{
    static const plan_state states[] = {PLAN_APPLIED, PLAN_PENDING, PLAN_RERUN, PLAN_CHANGED,
                                        PLAN_MISSING};

    fputs("\"summary\":{", f);
    for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++) {
        size_t count = 0;

        for (size_t i = 0; i < n; i++)
            count += plan_count_state(plans[i], states[s]);
        fprintf(f, "%s\"%s\":%zu", s ? "," : "", plan_state_name(states[s]), count);
    }
    fputc('}', f);
}

void status_print_json(const plan *p, const integrity_result *integrity, FILE *f)
{
    fputc('{', f);
    status_json_steps(p, f);
    fputc(',', f);
    status_json_summary(&p, 1, f);
    fputs(",\"integrity\":", f);
    integrity_print_json(integrity, f);
    fputs("}\n", f);
}

void status_print_json_databases(char *const *names, const plan *const *plans, size_t n,
                                 const integrity_result *integrity, FILE *f)
{
    fputs("{\"databases\":[", f);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ",{\"name\":" : "{\"name\":", f);
        json_write_string(f, names[i]);
        fputc(',', f);
        status_json_steps(plans[i], f);
        fputc(',', f);
        status_json_summary(&plans[i], 1, f);
        fputc('}', f);
    }
    fputs("],", f);
    status_json_summary(plans, n, f);
    fputs(",\"integrity\":", f);
    integrity_print_json(integrity, f);
    fputs("}\n", f);
}

static const char *status_action(plan_state state)
{
    switch (state) {
    case PLAN_APPLIED:
        return "skip";
    case PLAN_PENDING:
        return "apply";
    case PLAN_RERUN:
        return "re-apply";
    case PLAN_CHANGED:
        return "changed";
    case PLAN_MISSING:
        return "missing";
    }
    return "?";
}

void status_print_plan(const char *database, const plan *p, FILE *f)
{
    if (database)
        fprintf(f, "database \"%s\":\n", database);
    for (size_t i = 0; i < plan_count(p); i++) {
        const plan_item *item = plan_get(p, i);

        char shown[1024];

        fprintf(f, "%-9s %-40s %s", status_action(item->state),
                status_file_shown(item, shown, sizeof(shown)), item->checksum);
        if (item->recorded && item->state != PLAN_APPLIED)
            fprintf(f, " (recorded %s)", item->recorded->checksum);
        fputc('\n', f);
    }
}
