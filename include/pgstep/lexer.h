/* PostgreSQL-aware scanning of step files: statement splitting exactly where psql splits, and
 * psql-style variable substitution, both blind to string literals, quoted identifiers, dollar
 * quotes and comments. Pure functions: no I/O, no server. */
#ifndef PGSTEP_LEXER_H
#define PGSTEP_LEXER_H

#include <stdbool.h>
#include <stddef.h>

#include "pgstep/vars.h"

/* One statement: its bytes in the scanned text (from its first token to the end of its last
 * token, the terminating semicolon excluded) and the 1-based line it starts on. */
typedef struct lexer_statement {
    size_t offset;
    size_t length;
    int line;
} lexer_statement;

typedef struct lexer_error {
    int line; /* 1-based line where the problem starts */
    bool out_of_memory;
    char message[256];
} lexer_error;

/* Splits sql into statements at top-level semicolons, like psql: not inside quotes, dollar
 * quotes, comments, parentheses or a BEGIN ATOMIC ... END body. Statements holding only
 * whitespace and comments are skipped. On success *out is a malloc'ed array (NULL if there are
 * none) of *count statements. An unterminated construct fills err and returns false. */
bool lexer_split(const char *sql, size_t len, lexer_statement **out, size_t *count,
                 lexer_error *err);

/* The offset of the first byte at or after pos that is neither whitespace nor inside a comment
 * (-- to the end of the line, or a nested block comment); len if there is none, also when a
 * block comment is left open. */
size_t lexer_skip_blank(const char *sql, size_t len, size_t pos);

/* Copies sql to a malloc'ed, NUL-terminated *out (length *outlen), replacing :'name' with the
 * value quoted as a literal and :"name" with the value quoted as an identifier. Nothing is
 * replaced inside literals, quoted identifiers, dollar quotes or comments; "::" and a bare
 * :name are left as they are. A newline in a literal value is written as an E'' escape so that
 * line numbers do not move. A reference to an undefined variable, or a result larger than max
 * bytes, fills err and returns false. */
bool lexer_substitute(const char *sql, size_t len, const vars *v, size_t max, char **out,
                      size_t *outlen, lexer_error *err);

/* Returns value quoted as an SQL literal ('...' or E'...'), the way PQescapeLiteral does, with
 * newlines escaped; malloc'ed. */
char *lexer_quote_literal(const char *value);

/* Returns value quoted as an SQL identifier ("..." with doubled quotes), malloc'ed. */
char *lexer_quote_identifier(const char *value);

#endif /* PGSTEP_LEXER_H */
