/* Variables for the SQL steps: a small name -> value map kept in insertion order. A handful of
 * variables is the norm, so a linear array is both the simplest and the fastest choice. */
#include "pgstep/vars.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct var_entry {
    char *name;
    char *value;
} var_entry;

struct vars {
    var_entry *entries;
    size_t count;
    size_t capacity;
};

vars *vars_new(void)
{
    return calloc(1, sizeof(vars));
}

void vars_free(vars *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->count; i++) {
        free(v->entries[i].name);
        free(v->entries[i].value);
    }
    free(v->entries);
    free(v);
}

static var_entry *vars_find(const vars *v, const char *name, size_t namelen)
{
    for (size_t i = 0; i < v->count; i++) {
        var_entry *e = &v->entries[i];

        /* name need not be NUL-terminated: compare lengths first, then bytes. */
        if (strlen(e->name) == namelen && memcmp(e->name, name, namelen) == 0)
            return e;
    }
    return NULL;
}

static bool vars_grow(vars *v)
{
    size_t capacity = v->capacity ? v->capacity * 2 : 8;
    var_entry *entries;

    if (capacity > SIZE_MAX / sizeof(var_entry))
        return false;
    entries = realloc(v->entries, capacity * sizeof(var_entry));
    if (!entries)
        return false;
    v->entries = entries;
    v->capacity = capacity;
    return true;
}

bool vars_set(vars *v, const char *name, const char *value)
{
    /* psql's "\set name" without a value sets the empty string; treat NULL the same way. */
    char *copy = strdup(value ? value : "");
    var_entry *e;

    if (!copy)
        return false;
    e = vars_find(v, name, strlen(name));
    if (e) {
        free(e->value);
        e->value = copy;
        return true;
    }
    if (v->count == v->capacity && !vars_grow(v)) {
        free(copy);
        return false;
    }
    e = &v->entries[v->count];
    e->name = strdup(name);
    if (!e->name) {
        free(copy);
        return false;
    }
    e->value = copy;
    v->count++;
    return true;
}

const char *vars_get(const vars *v, const char *name, size_t namelen)
{
    const var_entry *e;

    if (!v)
        return NULL;
    e = vars_find(v, name, namelen);
    return e ? e->value : NULL;
}

bool vars_name_valid(const char *name, size_t namelen)
{
    if (namelen == 0)
        return false;
    for (size_t i = 0; i < namelen; i++) {
        unsigned char c = (unsigned char)name[i];

        if (!(c >= 0x80 || c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z')))
            return false;
    }
    return true;
}

size_t vars_count(const vars *v)
{
    return v ? v->count : 0;
}

const char *vars_name_at(const vars *v, size_t i)
{
    return v && i < v->count ? v->entries[i].name : NULL;
}
