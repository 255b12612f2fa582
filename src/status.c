/* Reports of a plan, for people and for scripts. Program output goes to stdout. */
#include "pgstep/status.h"

#include "pgstep/json.h"

static const char *status_file(const plan_item *item)
{
    return item->step ? item->step->file_name : item->recorded->file_name;
}

void status_print_text(const plan *p, const integrity_result *integrity, FILE *f)
{
    integrity_print_text(integrity, f);
    fprintf(f, "%-8s %-40s %-20s %s\n", "STATE", "STEP", "APPLIED AT", "CHECKSUM");
    for (size_t i = 0; i < plan_count(p); i++) {
        const plan_item *item = plan_get(p, i);

        fprintf(f, "%-8s %-40s %-20s %.12s\n", plan_state_name(item->state), status_file(item),
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

void status_print_json(const plan *p, const integrity_result *integrity, FILE *f)
{
    fputs("{\"steps\":[", f);
    for (size_t i = 0; i < plan_count(p); i++) {
        if (i > 0)
            fputc(',', f);
        status_json_item(plan_get(p, i), f);
    }
    fprintf(f,
            "],\"summary\":{\"applied\":%zu,\"pending\":%zu,\"rerun\":%zu,\"changed\":%zu,"
            "\"missing\":%zu},\"integrity\":",
            plan_count_state(p, PLAN_APPLIED), plan_count_state(p, PLAN_PENDING),
            plan_count_state(p, PLAN_RERUN), plan_count_state(p, PLAN_CHANGED),
            plan_count_state(p, PLAN_MISSING));
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

void status_print_plan(const plan *p, FILE *f)
{
    for (size_t i = 0; i < plan_count(p); i++) {
        const plan_item *item = plan_get(p, i);

        fprintf(f, "%-9s %-40s %s", status_action(item->state), status_file(item), item->checksum);
        if (item->recorded && item->state != PLAN_APPLIED)
            fprintf(f, " (recorded %s)", item->recorded->checksum);
        fputc('\n', f);
    }
}
