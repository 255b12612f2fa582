/* UTF-8 validation and escaping for output. */
#include "pgstep/utf8.h"

#include <stdio.h>
#include <string.h>

size_t utf8_char_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (avail < n)
        return 0;
    /* The second byte carries the range limits. */
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    }
    return n;
}

size_t utf8_invalid_offset(const char *text, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t n = utf8_char_len((const unsigned char *)text + i, len - i);

        if (n == 0)
            return i;
        i += n;
    }
    return len;
}

bool utf8_has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return true;
    }
    return false;
}

char *utf8_escape(const char *s, char *out, size_t size)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s), n = 0;

    for (size_t i = 0; i < len && size > 0;) {
        size_t clen = utf8_char_len(p + i, len - i);

        if (clen == 0 || p[i] < 0x20 || p[i] == 0x7f) {
            if (n + 4 >= size)
                break;
            snprintf(out + n, size - n, "\\x%02x", p[i]);
            n += 4;
            i++;
        } else {
            if (n + clen >= size)
                break;
            memcpy(out + n, p + i, clen);
            n += clen;
            i += clen;
        }
    }
    if (size > 0)
        out[n] = '\0';
    return out;
}
