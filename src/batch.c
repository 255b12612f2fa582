/* A batch of statements sent as one simple Query message, with the character offset of each so
 * that server error positions (counted in characters of the whole message) map back. */
#include "pgstep/batch.h"

#include <stdlib.h>
#include <string.h>

typedef struct batch_mark {
    size_t chars; /* characters before the statement */
    size_t owner;
    size_t stmt;
} batch_mark;

struct batch {
    char *text;
    size_t bytes;
    size_t capacity;
    size_t chars;
    batch_mark *marks;
    size_t nmarks;
    size_t marks_capacity;
};

static const char batch_terminator[] = ";\n";

batch *batch_new(void)
{
    return calloc(1, sizeof(batch));
}

void batch_free(batch *b)
{
    if (!b)
        return;
    free(b->text);
    free(b->marks);
    free(b);
}

void batch_reset(batch *b)
{
    b->bytes = 0;
    b->chars = 0;
    b->nmarks = 0;
    if (b->text)
        b->text[0] = '\0';
}

static bool batch_reserve(batch *b, size_t more)
{
    size_t need = b->bytes + more + 1;
    char *grown;

    if (need <= b->capacity)
        return true;
    if (need < b->capacity * 2)
        need = b->capacity * 2;
    if (!(grown = realloc(b->text, need)))
        return false;
    b->text = grown;
    b->capacity = need;
    return true;
}

static bool batch_mark_add(batch *b, size_t owner, size_t stmt)
{
    if (b->nmarks == b->marks_capacity) {
        size_t n = b->marks_capacity ? b->marks_capacity * 2 : 64;
        batch_mark *grown = realloc(b->marks, n * sizeof(*grown));

        if (!grown)
            return false;
        b->marks = grown;
        b->marks_capacity = n;
    }
    b->marks[b->nmarks++] = (batch_mark){.chars = b->chars, .owner = owner, .stmt = stmt};
    return true;
}

/* Characters of UTF-8 text: every byte that does not continue a sequence. */
static size_t batch_count_chars(const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

bool batch_append(batch *b, const char *sql, size_t len, size_t owner, size_t stmt)
{
    size_t tlen = sizeof(batch_terminator) - 1;

    if (!batch_reserve(b, len + tlen) || !batch_mark_add(b, owner, stmt))
        return false;
    memcpy(b->text + b->bytes, sql, len);
    memcpy(b->text + b->bytes + len, batch_terminator, tlen);
    b->bytes += len + tlen;
    b->text[b->bytes] = '\0';
    b->chars += batch_count_chars(sql, len) + tlen;
    return true;
}

const char *batch_text(const batch *b)
{
    return b->text ? b->text : "";
}

size_t batch_bytes(const batch *b)
{
    return b->bytes;
}

bool batch_locate(const batch *b, int position, size_t *owner, size_t *stmt, int *relative)
{
    size_t lo = 0;
    size_t hi;

    /* A statement that starts after c characters holds positions c + 1 onwards. */
    if (position < 1 || b->nmarks == 0 || (size_t)position > b->chars ||
        b->marks[0].chars >= (size_t)position)
        return false;
    hi = b->nmarks;
    while (hi - lo > 1) { /* the last mark starting before the position */
        size_t mid = lo + (hi - lo) / 2;

        if (b->marks[mid].chars < (size_t)position)
            lo = mid;
        else
            hi = mid;
    }
    *owner = b->marks[lo].owner;
    *stmt = b->marks[lo].stmt;
    *relative = position - (int)b->marks[lo].chars;
    return true;
}
