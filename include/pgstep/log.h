/* Log events, one per line on stderr, as text for people or JSON lines for collectors. */
#ifndef PGSTEP_LOG_H
#define PGSTEP_LOG_H

#include <stdbool.h>

#include "pgstep/error.h"

typedef enum log_level {
    LOG_DEBUG,
    LOG_INFO,
    LOG_WARN,
    LOG_ERROR,
} log_level;

typedef enum log_format {
    LOG_FORMAT_TEXT,
    LOG_FORMAT_JSON,
} log_format;

/* A named field added to an event; exactly one of str (when non-NULL) or num is used. */
typedef struct log_field {
    const char *key;
    const char *str;
    long long num;
} log_field;

#define LOG_STR(k, v) ((log_field){.key = (k), .str = (v)})
#define LOG_NUM(k, v) ((log_field){.key = (k), .str = NULL, .num = (long long)(v)})

/* Sets the output format and the lowest level written. Defaults: text, info. */
void log_configure(log_format format, log_level min_level);

/* Parses "debug"/"info"/"warn"/"error" and "text"/"json"; false if unknown. */
bool log_level_parse(const char *name, log_level *out);
bool log_format_parse(const char *name, log_format *out);

/* True if an event at this level would be written. */
bool log_enabled(log_level level);

/* Writes one event with optional fields. */
void log_event(log_level level, const log_field *fields, int nfields, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_debug(...) log_event(LOG_DEBUG, NULL, 0, __VA_ARGS__)
#define log_info(...)  log_event(LOG_INFO, NULL, 0, __VA_ARGS__)
#define log_warn(...)  log_event(LOG_WARN, NULL, 0, __VA_ARGS__)

/* Writes err as one event at error level, with its detail, hint, sqlstate, file and line. */
void log_error_event(const pgstep_error *err);

#endif /* PGSTEP_LOG_H */
