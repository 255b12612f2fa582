/* Passwords for signing keys: a file (a CI secret) or the terminal. Reading the terminal turns
 * echo off and always turns it back on, interrupted or not. */
#include "pgstep/passphrase.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "pgstep/exitcode.h"
#include "pgstep/interrupt.h"
#include "pgstep/secret.h"

/* minisign's limit. */
#define PASSPHRASE_MAX 1024

static void passphrase_say(int tty, const char *text)
{
    ssize_t n = write(tty, text, strlen(text));

    (void)n; /* a prompt that cannot be shown leaves nothing to do */
}

/* Reads one line from tty into buf (PASSPHRASE_MAX + 1 bytes); false on error or EOF. */
static bool passphrase_read_line(int tty, char *buf, pgstep_error *err)
{
    size_t len = 0;

    for (;;) {
        char c;
        ssize_t n = read(tty, &c, 1);

        if (n < 0 && errno == EINTR) {
            if (interrupt_check(err))
                return false;
            continue;
        }
        if (n <= 0)
            return error_set(err, PGSTEP_EXIT_USAGE, "could not read a password from the terminal");
        if (c == '\n' || c == '\r')
            break;
        if (len == PASSPHRASE_MAX) {
            sodium_memzero(&c, 1);
            return error_set(err, PGSTEP_EXIT_USAGE, "password is longer than %d bytes",
                             PASSPHRASE_MAX);
        }
        buf[len++] = c;
        sodium_memzero(&c, 1);
    }
    buf[len] = '\0';
    if (len == 0)
        return error_set(err, PGSTEP_EXIT_USAGE, "empty password");
    return true;
}

static bool passphrase_prompt(int tty, const char *prompt, char *buf, pgstep_error *err)
{
    struct termios saved, quiet;
    bool restore = tcgetattr(tty, &saved) == 0;
    bool ok;

    if (restore) {
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        restore = tcsetattr(tty, TCSAFLUSH, &quiet) == 0;
    }
    passphrase_say(tty, prompt);
    ok = passphrase_read_line(tty, buf, err);
    if (restore)
        tcsetattr(tty, TCSAFLUSH, &saved);
    passphrase_say(tty, "\n");
    return ok;
}

bool passphrase_get(const char *file, const char *prompt, bool confirm, char **out,
                    pgstep_error *err)
{
    char *first = NULL, *second = NULL;
    bool ok = false;
    int tty;

    *out = NULL;
    if (file)
        return secret_read_file(file, out, err);
    tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (tty < 0) {
        error_set(err, PGSTEP_EXIT_USAGE, "no terminal to read the password from");
        error_hint(err, "Give the password in a file with --password-file.");
        return false;
    }
    first = sodium_malloc(PASSPHRASE_MAX + 1);
    second = confirm ? sodium_malloc(PASSPHRASE_MAX + 1) : NULL;
    if (!first || (confirm && !second)) {
        error_set(err, PGSTEP_EXIT_USAGE, "out of memory");
        goto done;
    }
    if (!passphrase_prompt(tty, prompt, first, err))
        goto done;
    if (confirm) {
        if (!passphrase_prompt(tty, "Password (again): ", second, err))
            goto done;
        if (strlen(first) != strlen(second) || sodium_memcmp(first, second, strlen(first)) != 0) {
            error_set(err, PGSTEP_EXIT_USAGE, "the passwords do not match");
            goto done;
        }
    }
    sodium_mprotect_readonly(first);
    *out = first;
    first = NULL;
    ok = true;

done:
    close(tty);
    if (first)
        sodium_free(first);
    if (second)
        sodium_free(second);
    return ok;
}
