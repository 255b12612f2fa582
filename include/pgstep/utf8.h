/* UTF-8 as PostgreSQL accepts it, and text made safe to show: step file names and contents are
 * checked with it, JSON and text output escape with it. */
#ifndef PGSTEP_UTF8_H
#define PGSTEP_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the valid UTF-8 sequence at p (avail bytes there), or 0: overlong forms,
 * surrogates and code points past U+10FFFF are invalid, as in PostgreSQL's pg_utf8_islegal. */
size_t utf8_char_len(const unsigned char *p, size_t avail);

/* Offset of the first byte of text that is not valid UTF-8, or len if all of it is. */
size_t utf8_invalid_offset(const char *text, size_t len);

/* Whether s holds a control character (U+0000..U+001F or U+007F). */
bool utf8_has_control(const char *s);

/* Copies s into out (size bytes, always NUL-terminated, cut at a whole character) with every
 * control character and every byte that is not valid UTF-8 written as \xHH, so that it can
 * neither drive a terminal nor break a line. Returns out. */
char *utf8_escape(const char *s, char *out, size_t size);

#endif /* PGSTEP_UTF8_H */
