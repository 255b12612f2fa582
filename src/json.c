/* JSON string escaping, shared by JSON log lines and the status report. The output is always
 * valid JSON: control characters are escaped, and a byte that is not valid UTF-8 (a file name
 * can hold any) becomes U+FFFD. */
#include "pgstep/json.h"

#include <string.h>

#include "pgstep/utf8.h"

void json_write_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s);

    fputc('"', f);
    for (size_t i = 0; i < len;) {
        size_t n;

        switch (p[i]) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (p[i] < 0x20 || p[i] == 0x7f) {
                fprintf(f, "\\u%04x", p[i]);
            } else if (p[i] < 0x80) {
                fputc(p[i], f);
            } else if ((n = utf8_char_len(p + i, len - i)) == 0) {
                fputs("\\ufffd", f);
            } else {
                fwrite(p + i, 1, n, f);
                i += n;
                continue;
            }
        }
        i++;
    }
    fputc('"', f);
}
