/* Variables for the SQL steps (name = value), from the configuration file and -v/--set. */
#ifndef PGSTEP_VARS_H
#define PGSTEP_VARS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct vars vars;

vars *vars_new(void);
void vars_free(vars *v);

/* Sets name to value, replacing an earlier value; false if out of memory. */
bool vars_set(vars *v, const char *name, const char *value);

/* The value of name, or NULL when it is not defined. name need not be NUL-terminated. */
const char *vars_get(const vars *v, const char *name, size_t namelen);

/* True if name is a valid variable name: ASCII letters, digits and underscores, or any
 * non-ASCII byte, as psql accepts. */
bool vars_name_valid(const char *name, size_t namelen);

size_t vars_count(const vars *v);

/* The name of the i-th variable, in the order they were first set (i < vars_count). */
const char *vars_name_at(const vars *v, size_t i);

#endif /* PGSTEP_VARS_H */
