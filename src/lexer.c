/* PostgreSQL-aware scanning of step files. One scanning core (scanner_next) knows every quoting
 * construct of psql's lexer (src/fe_utils/psqlscan.l); lexer_split and lexer_substitute differ
 * only in what they do with its tokens, so they can never disagree about what is quoted. */
#include "pgstep/lexer.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum token_kind {
    TOKEN_END,         /* no more tokens */
    TOKEN_WORD,        /* identifier or unquoted keyword */
    TOKEN_OPEN_PAREN,  /* ( */
    TOKEN_CLOSE_PAREN, /* ) */
    TOKEN_SEMICOLON,   /* ; */
    TOKEN_BACKSLASH,   /* \ outside quotes: psql would start a meta-command here */
    TOKEN_VAR_LITERAL, /* :'name' */
    TOKEN_VAR_IDENT,   /* :"name" */
    TOKEN_OTHER,       /* literals, quoted identifiers, numbers, operators, punctuation */
} token_kind;

typedef struct token {
    token_kind kind;
    size_t start; /* first byte */
    size_t end;   /* one past the last byte */
    int line;     /* line of the first byte */
} token;

typedef struct scanner {
    const char *text;
    size_t len;
    size_t pos;
    int line; /* line of text[pos] */
} scanner;

/* How the body of a quoted construct is read. */
typedef enum quote_style {
    QUOTE_STANDARD, /* '...' and "...": a doubled quote stays inside */
    QUOTE_ESCAPE,   /* E'...': also, a backslash escapes the next byte */
    QUOTE_BITS,     /* B'...' and X'...': the first quote ends it */
} quote_style;

static void lexer_set_error(lexer_error *err, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void lexer_set_error(lexer_error *err, int line, const char *fmt, ...)
{
    va_list ap;

    err->line = line;
    err->out_of_memory = false;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

/* Character classes, as psqlscan.l defines them. Bytes >= 0x80 count as letters so that any
 * UTF-8 text can be part of an identifier or dollar-quote tag. */

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

/* A dollar-quote tag continues like an identifier, but without '$'. */
static bool is_tag_cont(unsigned char c)
{
    return is_ident_start(c) || is_digit(c);
}

static bool is_ident_cont(unsigned char c)
{
    return is_tag_cont(c) || c == '$';
}

static bool is_op_char(unsigned char c)
{
    return c != '\0' && strchr("~!@#^&|`?+-*/%<>=", c) != NULL;
}

static unsigned char scanner_at(const scanner *s, size_t i)
{
    return i < s->len ? (unsigned char)s->text[i] : '\0';
}

static bool comment_starts_at(const scanner *s, size_t i)
{
    unsigned char c = scanner_at(s, i), next = scanner_at(s, i + 1);

    return (c == '-' && next == '-') || (c == '/' && next == '*');
}

/* Moves to to, counting the newlines passed. */
static void scanner_advance(scanner *s, size_t to)
{
    const char *p = s->text + s->pos;
    const char *stop = s->text + to;

    while ((p = memchr(p, '\n', (size_t)(stop - p))) != NULL) {
        s->line++;
        p++;
    }
    s->pos = to;
}

/* Skips a block comment starting at s->pos. Comments nest, as in PostgreSQL. */
static bool skip_block_comment(scanner *s, lexer_error *err)
{
    size_t i = s->pos + 2;
    int depth = 0;

    while (i < s->len) {
        if (s->text[i] == '/' && scanner_at(s, i + 1) == '*') {
            depth++;
            i += 2;
        } else if (s->text[i] == '*' && scanner_at(s, i + 1) == '/') {
            i += 2;
            if (depth-- == 0) {
                scanner_advance(s, i);
                return true;
            }
        } else {
            i++;
        }
    }
    lexer_set_error(err, s->line, "unterminated /* comment");
    return false;
}

/* Skips whitespace and comments. A -- comment ends at a newline or carriage return, as in
 * psql, which treats either as a line end. */
static bool skip_blank(scanner *s, lexer_error *err)
{
    while (s->pos < s->len) {
        size_t i = s->pos;

        if (is_space(scanner_at(s, i))) {
            while (i < s->len && is_space(scanner_at(s, i)))
                i++;
            scanner_advance(s, i);
        } else if (s->text[i] == '-' && scanner_at(s, i + 1) == '-') {
            while (i < s->len && s->text[i] != '\n' && s->text[i] != '\r')
                i++;
            scanner_advance(s, i);
        } else if (s->text[i] == '/' && scanner_at(s, i + 1) == '*') {
            if (!skip_block_comment(s, err))
                return false;
        } else {
            break;
        }
    }
    return true;
}

size_t lexer_skip_blank(const char *sql, size_t len, size_t pos)
{
    scanner s = {.text = sql, .len = len, .pos = pos, .line = 1};
    lexer_error err;

    return skip_blank(&s, &err) ? s.pos : len;
}

/* Finds the end of a quoted construct whose opening quote is at open. */
static bool scan_quoted(scanner *s, size_t open, quote_style style, const char *what, size_t *end,
                        lexer_error *err)
{
    char quote = s->text[open];
    size_t i = open + 1;

    while (i < s->len) {
        char c = s->text[i];

        if (style == QUOTE_ESCAPE && c == '\\') {
            i += 2;
        } else if (c == quote) {
            if (style != QUOTE_BITS && scanner_at(s, i + 1) == (unsigned char)quote) {
                i += 2;
            } else {
                *end = i + 1;
                return true;
            }
        } else {
            i++;
        }
    }
    lexer_set_error(err, s->line, "unterminated %s", what);
    return false;
}

/* Length of the dollar-quote delimiter ($$ or $tag$) at i, or 0 if there is none. */
static size_t dollar_delimiter_len(const scanner *s, size_t i)
{
    size_t j = i + 1;

    if (scanner_at(s, j) != '$') {
        if (!is_ident_start(scanner_at(s, j)))
            return 0;
        while (is_tag_cont(scanner_at(s, j)))
            j++;
        if (scanner_at(s, j) != '$')
            return 0;
    }
    return j + 1 - i;
}

/* Finds the end of a dollar-quoted string: the first later copy of its opening delimiter. The
 * body is opaque; psql's flex rules amount to exactly this search. */
static bool scan_dollar_quoted(scanner *s, size_t open, size_t delim_len, size_t *end,
                               lexer_error *err)
{
    const char *delim = s->text + open;
    size_t i = open + delim_len;

    while (i < s->len) {
        const char *dollar = memchr(s->text + i, '$', s->len - i);

        if (!dollar)
            break;
        i = (size_t)(dollar - s->text);
        if (s->len - i >= delim_len && memcmp(dollar, delim, delim_len) == 0) {
            *end = i + delim_len;
            return true;
        }
        i++;
    }
    lexer_set_error(err, s->line, "unterminated dollar-quoted string");
    return false;
}

static size_t skip_digits(const scanner *s, size_t i)
{
    /* Underscores between digits are accepted since PostgreSQL 16; for splitting, taking them
     * in older versions too changes nothing, as the server rejects such input anyway. */
    while (is_digit(scanner_at(s, i)) || scanner_at(s, i) == '_')
        i++;
    return i;
}

/* End of a numeric constant starting at i. Like psql (and the server, which reports "trailing
 * junk"), identifier characters right after a number belong to it, so they are never taken for
 * keywords; and "1e-" is one token, so "1e--" does not start a comment. */
static size_t scan_number(const scanner *s, size_t i)
{
    i = skip_digits(s, i);
    /* "1..10" is an integer and "..", not a decimal. */
    if (scanner_at(s, i) == '.' && scanner_at(s, i + 1) != '.')
        i = skip_digits(s, i + 1);
    if (scanner_at(s, i) == 'e' || scanner_at(s, i) == 'E') {
        size_t j = i + 1;

        if (scanner_at(s, j) == '+' || scanner_at(s, j) == '-')
            j++;
        if (is_digit(scanner_at(s, j)))
            i = skip_digits(s, j);
        else if (j > i + 1)
            return j;
    }
    if (is_ident_start(scanner_at(s, i))) {
        while (is_ident_cont(scanner_at(s, i)))
            i++;
    }
    return i;
}

static size_t skip_var_chars(const scanner *s, size_t i)
{
    while (i < s->len && vars_name_valid(s->text + i, 1))
        i++;
    return i;
}

/* End of the psql variable reference (:'name' or :"name") at i, or 0 if there is none. */
static size_t variable_end(const scanner *s, size_t i)
{
    unsigned char quote = scanner_at(s, i + 1);
    size_t j = i + 2;

    if (quote != '\'' && quote != '"')
        return 0;
    j = skip_var_chars(s, j);
    if (j == i + 2 || scanner_at(s, j) != quote)
        return 0;
    return j + 1;
}

/* End of an operator at i: op chars, but never the start of a comment. */
static size_t scan_operator(const scanner *s, size_t i)
{
    i++;
    while (is_op_char(scanner_at(s, i)) && !comment_starts_at(s, i))
        i++;
    return i;
}

/* Scans a token starting with a letter: a prefixed string (B'', X'', E'', N'', U&'', U&""),
 * or an identifier. */
static bool scan_letter(scanner *s, token *tok, lexer_error *err)
{
    size_t i = s->pos;
    unsigned char c = scanner_at(s, i), next = scanner_at(s, i + 1);

    tok->kind = TOKEN_OTHER;
    if (next == '\'') {
        switch (c) {
        case 'b':
        case 'B':
            return scan_quoted(s, i + 1, QUOTE_BITS, "bit string literal", &tok->end, err);
        case 'x':
        case 'X':
            return scan_quoted(s, i + 1, QUOTE_BITS, "hexadecimal string literal", &tok->end, err);
        case 'e':
        case 'E':
            return scan_quoted(s, i + 1, QUOTE_ESCAPE, "quoted string", &tok->end, err);
        case 'n':
        case 'N':
            /* National character: psql takes just the N, then an ordinary string follows. */
            tok->end = i + 1;
            return true;
        default:
            break;
        }
    }
    if ((c == 'u' || c == 'U') && next == '&') {
        unsigned char quote = scanner_at(s, i + 2);

        if (quote == '\'')
            return scan_quoted(s, i + 2, QUOTE_STANDARD, "quoted string", &tok->end, err);
        if (quote == '"')
            return scan_quoted(s, i + 2, QUOTE_STANDARD, "quoted identifier", &tok->end, err);
        /* psql takes just the U, which then is not an identifier. */
        tok->end = i + 1;
        return true;
    }
    while (is_ident_cont(scanner_at(s, i)))
        i++;
    tok->kind = TOKEN_WORD;
    tok->end = i;
    return true;
}

/* Scans a token starting with '$': a dollar-quoted string, a parameter ($1) or a lone '$'. */
static bool scan_dollar(scanner *s, token *tok, lexer_error *err)
{
    size_t i = s->pos;
    size_t delim_len = dollar_delimiter_len(s, i);

    tok->kind = TOKEN_OTHER;
    if (delim_len > 0)
        return scan_dollar_quoted(s, i, delim_len, &tok->end, err);
    if (is_digit(scanner_at(s, i + 1))) {
        /* A parameter, with any trailing junk, as for numbers. */
        i = skip_digits(s, i + 1);
        if (is_ident_start(scanner_at(s, i))) {
            while (is_ident_cont(scanner_at(s, i)))
                i++;
        }
        tok->end = i;
        return true;
    }
    /* "$foo" without a closing '$': psql takes the '$' alone, then "foo" is an identifier. */
    tok->end = i + 1;
    return true;
}

/* Scans a token starting with ':': "::", a variable reference, or a lone ':'. psql also reads
 * :name and :{?name} as one token each, so the name is not an identifier that could count for
 * the BEGIN ATOMIC heuristic; they are left as they are. */
static void scan_colon(scanner *s, token *tok)
{
    size_t i = s->pos;
    size_t end;

    tok->kind = TOKEN_OTHER;
    tok->end = i + 1;
    if (scanner_at(s, i + 1) == ':') {
        tok->end = i + 2;
    } else if ((end = variable_end(s, i)) > 0) {
        tok->kind = scanner_at(s, i + 1) == '\'' ? TOKEN_VAR_LITERAL : TOKEN_VAR_IDENT;
        tok->end = end;
    } else if ((end = skip_var_chars(s, i + 1)) > i + 1) {
        tok->end = end;
    } else if (scanner_at(s, i + 1) == '{' && scanner_at(s, i + 2) == '?') {
        end = skip_var_chars(s, i + 3);
        if (end > i + 3 && scanner_at(s, end) == '}')
            tok->end = end + 1;
    }
}

static bool scan_token(scanner *s, token *tok, lexer_error *err)
{
    size_t i = s->pos;
    unsigned char c = scanner_at(s, i);

    tok->kind = TOKEN_OTHER;
    tok->end = i + 1;
    if (c == '\'')
        return scan_quoted(s, i, QUOTE_STANDARD, "quoted string", &tok->end, err);
    if (c == '"')
        return scan_quoted(s, i, QUOTE_STANDARD, "quoted identifier", &tok->end, err);
    if (is_ident_start(c))
        return scan_letter(s, tok, err);
    if (c == '$')
        return scan_dollar(s, tok, err);
    if (is_digit(c) || (c == '.' && is_digit(scanner_at(s, i + 1))))
        tok->end = scan_number(s, i);
    else if (c == ':')
        scan_colon(s, tok);
    else if (c == '(')
        tok->kind = TOKEN_OPEN_PAREN;
    else if (c == ')')
        tok->kind = TOKEN_CLOSE_PAREN;
    else if (c == ';')
        tok->kind = TOKEN_SEMICOLON;
    else if (c == '\\')
        tok->kind = TOKEN_BACKSLASH;
    else if (is_op_char(c))
        tok->end = scan_operator(s, i);
    return true;
}

/* The scanning core: the next token after any whitespace and comments, or TOKEN_END. False
 * with err filled (the line where the construct starts) for an unterminated construct. */
static bool scanner_next(scanner *s, token *tok, lexer_error *err)
{
    if (!skip_blank(s, err))
        return false;
    tok->start = s->pos;
    tok->end = s->pos;
    tok->line = s->line;
    if (s->pos >= s->len) {
        tok->kind = TOKEN_END;
        return true;
    }
    if (!scan_token(s, tok, err))
        return false;
    scanner_advance(s, tok->end);
    return true;
}

/* ---- Splitting ---- */

/* psql's state for finding the semicolon that ends a statement. */
typedef struct split_state {
    int paren_depth;
    int begin_depth;
    /* psql 14+ heuristic for BEGIN ATOMIC bodies: the first letters of the first identifiers
     * of the statement, when they are CREATE, OR, REPLACE, FUNCTION or PROCEDURE. */
    unsigned identifier_count;
    char identifiers[4];
} split_state;

static bool word_is(const char *word, size_t len, const char *keyword)
{
    size_t i;

    for (i = 0; i < len && keyword[i] != '\0'; i++) {
        unsigned char c = (unsigned char)word[i];

        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c != (unsigned char)keyword[i])
            return false;
    }
    return i == len && keyword[i] == '\0';
}

/* True once the statement began CREATE [OR REPLACE] {FUNCTION | PROCEDURE}. */
static bool split_in_routine(const split_state *st)
{
    const char *id = st->identifiers;

    return id[0] == 'c' && (id[1] == 'f' || id[1] == 'p' ||
                            (id[1] == 'o' && id[2] == 'r' && (id[3] == 'f' || id[3] == 'p')));
}

/* Follows psqlscan.l's {identifier} rule, quirks included: BEGIN opens a body, CASE nests only
 * inside one (it also ends with END), END closes one. */
static void split_word(split_state *st, const char *word, size_t len)
{
    if (st->identifier_count == 0)
        memset(st->identifiers, 0, sizeof(st->identifiers));
    if (word_is(word, len, "create") || word_is(word, len, "function") ||
        word_is(word, len, "procedure") || word_is(word, len, "or") ||
        word_is(word, len, "replace")) {
        if (st->identifier_count < sizeof(st->identifiers)) {
            char c = word[0];

            st->identifiers[st->identifier_count] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
    }
    st->identifier_count++;
    if (!split_in_routine(st) || st->paren_depth != 0)
        return;
    if (word_is(word, len, "begin"))
        st->begin_depth++;
    else if (word_is(word, len, "case") && st->begin_depth >= 1)
        st->begin_depth++;
    else if (word_is(word, len, "end") && st->begin_depth > 0)
        st->begin_depth--;
}

/* A growing buffer cut down to what it holds once complete. A step keeps its statements and
 * its SQL for the whole run, and growth by doubling leaves up to half of each unused (16
 * statements' room for a one-statement step): over many steps that is most of the memory.
 * If the smaller allocation fails, the buffer stays as it was. */
static void *lexer_fit(void *buf, size_t size)
{
    void *fitted = buf && size > 0 ? realloc(buf, size) : NULL;

    return fitted ? fitted : buf;
}

typedef struct statement_list {
    lexer_statement *items;
    size_t count;
    size_t capacity;
} statement_list;

static bool statement_list_push(statement_list *list, size_t start, size_t end, int line)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 16;
        lexer_statement *items;

        if (capacity > SIZE_MAX / sizeof(lexer_statement))
            return false;
        items = realloc(list->items, capacity * sizeof(lexer_statement));
        if (!items)
            return false;
        list->items = items;
        list->capacity = capacity;
    }
    list->items[list->count++] =
        (lexer_statement){.offset = start, .length = end - start, .line = line};
    return true;
}

/* psql would run a meta-command (\set, \i, \;) here; pgstep sends SQL only, and the server
 * rejects a backslash outside quotes anyway, so say so before anything runs. */
static void split_backslash_error(const scanner *s, const token *tok, lexer_error *err)
{
    size_t end = tok->end;

    while (end < s->len && end - tok->end < 32 && !is_space(scanner_at(s, end)) &&
           scanner_at(s, end) != '\\')
        end++;
    lexer_set_error(err, tok->line, "psql meta-command \"%.*s\" is not supported",
                    (int)(end - tok->start), s->text + tok->start);
}

bool lexer_split(const char *sql, size_t len, lexer_statement **out, size_t *count,
                 lexer_error *err)
{
    scanner s = {.text = sql, .len = len, .pos = 0, .line = 1};
    split_state st = {0};
    statement_list list = {0};
    token tok, first = {0};
    size_t last_end = 0;
    bool open = false;

    *out = NULL;
    *count = 0;
    for (;;) {
        if (!scanner_next(&s, &tok, err))
            goto fail;
        if (tok.kind == TOKEN_END)
            break;
        if (tok.kind == TOKEN_BACKSLASH) {
            split_backslash_error(&s, &tok, err);
            goto fail;
        }
        if (tok.kind == TOKEN_SEMICOLON && st.paren_depth == 0 && st.begin_depth == 0) {
            if (open && !statement_list_push(&list, first.start, last_end, first.line))
                goto oom;
            open = false;
            st.identifier_count = 0;
            continue;
        }
        if (tok.kind == TOKEN_OPEN_PAREN)
            st.paren_depth++;
        else if (tok.kind == TOKEN_CLOSE_PAREN && st.paren_depth > 0)
            st.paren_depth--;
        else if (tok.kind == TOKEN_WORD)
            split_word(&st, sql + tok.start, tok.end - tok.start);
        if (!open) {
            first = tok;
            open = true;
        }
        last_end = tok.end;
    }
    /* Like psql at the end of a file, send what is left even without a semicolon. */
    if (open && !statement_list_push(&list, first.start, last_end, first.line))
        goto oom;
    *out = lexer_fit(list.items, list.count * sizeof(lexer_statement));
    *count = list.count;
    return true;

oom:
    lexer_set_error(err, s.line, "out of memory");
    err->out_of_memory = true;
fail:
    free(list.items);
    return false;
}

/* ---- Substitution ---- */

/* A growing output string; after a failed allocation it stays failed, so callers check once. */
typedef struct outbuf {
    char *data;
    size_t len;
    size_t capacity;
    bool failed;
} outbuf;

static void outbuf_append(outbuf *b, const char *p, size_t n)
{
    if (b->failed)
        return;
    if (n + 1 > b->capacity - b->len || !b->data) {
        size_t capacity = b->capacity ? b->capacity : 64;
        char *data;

        while (capacity - b->len < n + 1) {
            if (capacity > SIZE_MAX / 2) {
                b->failed = true;
                return;
            }
            capacity *= 2;
        }
        data = realloc(b->data, capacity);
        if (!data) {
            b->failed = true;
            return;
        }
        b->data = data;
        b->capacity = capacity;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void outbuf_puts(outbuf *b, const char *s)
{
    outbuf_append(b, s, strlen(s));
}

/* Quotes value as a literal like PQescapeLiteral (quotes doubled; E'' with doubled backslashes
 * when there is a backslash), but also writes newlines and carriage returns as \n and \r
 * escapes so that substitution never moves a line. */
static void quote_literal_into(outbuf *b, const char *value)
{
    bool escape = strpbrk(value, "\\\n\r") != NULL;

    outbuf_puts(b, escape ? "E'" : "'");
    for (const char *p = value; *p; p++) {
        if (*p == '\'')
            outbuf_puts(b, "''");
        else if (escape && *p == '\\')
            outbuf_puts(b, "\\\\");
        else if (*p == '\n')
            outbuf_puts(b, "\\n");
        else if (*p == '\r')
            outbuf_puts(b, "\\r");
        else
            outbuf_append(b, p, 1);
    }
    outbuf_puts(b, "'");
}

/* Quotes value as an identifier: "..." with quotes doubled. A quoted identifier cannot hold an
 * escaped newline, so a value with one uses the U&"..." form, where \000A is a newline. */
static void quote_identifier_into(outbuf *b, const char *value)
{
    bool escape = strpbrk(value, "\n\r") != NULL;

    outbuf_puts(b, escape ? "U&\"" : "\"");
    for (const char *p = value; *p; p++) {
        if (*p == '"')
            outbuf_puts(b, "\"\"");
        else if (escape && *p == '\\')
            outbuf_puts(b, "\\\\");
        else if (*p == '\n')
            outbuf_puts(b, "\\000A");
        else if (*p == '\r')
            outbuf_puts(b, "\\000D");
        else
            outbuf_append(b, p, 1);
    }
    outbuf_puts(b, "\"");
}

char *lexer_quote_literal(const char *value)
{
    outbuf b = {0};

    quote_literal_into(&b, value);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

char *lexer_quote_identifier(const char *value)
{
    outbuf b = {0};

    quote_identifier_into(&b, value);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

/* Writes the value of the variable referenced by tok, quoted as the reference asks. */
static bool substitute_variable(const scanner *s, const token *tok, const vars *v, outbuf *b,
                                lexer_error *err)
{
    const char *name = s->text + tok->start + 2;
    size_t namelen = tok->end - tok->start - 3;
    const char *value = vars_get(v, name, namelen);
    int shown = namelen > 128 ? 128 : (int)namelen;

    if (!value) {
        lexer_set_error(err, tok->line, "undefined variable \"%.*s\"", shown, name);
        return false;
    }
    if (tok->kind == TOKEN_VAR_LITERAL) {
        quote_literal_into(b, value);
    } else {
        if (*value == '\0') {
            lexer_set_error(err, tok->line,
                            "variable \"%.*s\" is empty and cannot be an identifier", shown, name);
            return false;
        }
        quote_identifier_into(b, value);
    }
    return true;
}

bool lexer_substitute(const char *sql, size_t len, const vars *v, size_t max, char **out,
                      size_t *outlen, lexer_error *err)
{
    scanner s = {.text = sql, .len = len, .pos = 0, .line = 1};
    outbuf b = {0};
    size_t copied = 0;
    token tok;

    *out = NULL;
    *outlen = 0;
    for (;;) {
        if (!scanner_next(&s, &tok, err))
            goto fail;
        if (tok.kind == TOKEN_END)
            break;
        if (tok.kind != TOKEN_VAR_LITERAL && tok.kind != TOKEN_VAR_IDENT)
            continue;
        /* Everything between references, comments and whitespace included, is copied as is. */
        outbuf_append(&b, sql + copied, tok.start - copied);
        if (!substitute_variable(&s, &tok, v, &b, err))
            goto fail;
        copied = tok.end;
        /* Checked as it grows: a few references to a large value could take gigabytes. */
        if (b.len + (len - copied) > max)
            goto too_large;
    }
    outbuf_append(&b, sql + copied, len - copied);
    if (b.failed) {
        lexer_set_error(err, s.line, "out of memory");
        err->out_of_memory = true;
        goto fail;
    }
    *out = lexer_fit(b.data, b.len + 1);
    *outlen = b.len;
    return true;

too_large:
    if (max % (1024 * 1024) == 0)
        lexer_set_error(err, tok.line,
                        "the step with its variables substituted is larger than the limit of "
                        "%zu MiB",
                        max / (1024 * 1024));
    else
        lexer_set_error(err, tok.line,
                        "the step with its variables substituted is larger than the limit of "
                        "%zu bytes",
                        max);
fail:
    free(b.data);
    return false;
}
