/* Step statements as sent, and server error positions traced back to the step file. */
#include "pgstep/steptext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The comment before every statement; file names hold no '/', so it cannot end early. */
#define STEPTEXT_PREFIX "/* pgstep %s:%d */ "

static int steptext_prefix(const step *s, size_t stmt, char *out, size_t size)
{
    return snprintf(out, size, STEPTEXT_PREFIX, s->file_name, s->statements[stmt].line);
}

char *steptext_statement(const step *s, size_t stmt)
{
    const lexer_statement *st = &s->statements[stmt];
    int prefix = steptext_prefix(s, stmt, NULL, 0);
    char *out = prefix < 0 ? NULL : malloc((size_t)prefix + st->length + 1);

    if (!out)
        return NULL;
    steptext_prefix(s, stmt, out, (size_t)prefix + 1);
    memcpy(out + prefix, s->sql + st->offset, st->length);
    out[(size_t)prefix + st->length] = '\0';
    return out;
}

/* Characters of UTF-8 text: every byte that does not continue a sequence. */
static int steptext_chars(const char *text, size_t len)
{
    int n = 0;

    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)text[i] & 0xC0) != 0x80;
    return n;
}

/* The line of the file where a server error points: the statement's first line plus the
 * newlines before the error position (a 1-based character index into the text sent). */
static int steptext_error_line(const step *s, size_t stmt, int position)
{
    const lexer_statement *st = &s->statements[stmt];
    const char *p = s->sql + st->offset;
    const char *end = p + st->length;
    char prefix[512];
    int line = st->line;
    int at = position;

    steptext_prefix(s, stmt, prefix, sizeof(prefix));
    at -= steptext_chars(prefix, strlen(prefix));
    for (int chars = 1; p < end && chars < at; p++) {
        if ((*p & 0xC0) != 0x80)
            chars++;
        if (*p == '\n')
            line++;
    }
    return line;
}

void steptext_locate(const step *s, size_t stmt, pgstep_error *err)
{
    error_location(err, s->file_name,
                   stmt < s->nstatements ? steptext_error_line(s, stmt, err->position) : 0);
}
