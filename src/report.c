/* The run's one-line outcome, for the Kubernetes termination message. */
#include "pgstep/report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pgstep/log.h"

void report_init(report *rep)
{
    rep->summary[0] = '\0';
    rep->context[0] = '\0';
}

void report_context(report *rep, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(rep->context, sizeof(rep->context), fmt, ap);
    va_end(ap);
}

void report_summary(report *rep, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(rep->summary, sizeof(rep->summary), fmt, ap);
    va_end(ap);
}

void report_failure(report *rep, const pgstep_error *err)
{
    report_summary(rep, "failed (exit %d): %s%s%s%s%s%s", err->exit_code, err->file,
                   err->file[0] ? ": " : "", err->message, rep->context[0] ? " (" : "",
                   rep->context, rep->context[0] ? ")" : "");
}

void report_write_termination_log(const report *rep, const char *path)
{
    char line[sizeof(rep->summary) + 1];
    struct stat st;
    size_t len;
    int fd;

    if (!path || !path[0] || !rep->summary[0])
        return;
    len = (size_t)snprintf(line, sizeof(line), "%s\n", rep->summary);
    if (len >= sizeof(line))
        len = sizeof(line) - 1;
    /* O_NONBLOCK: a FIFO without a reader must not hold the exit back (it is refused). */
    fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);
    if ((fd < 0 && errno == ENXIO) || (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))))
        log_warn("could not write termination log \"%s\": not a regular file", path);
    else if (fd < 0 || ftruncate(fd, 0) != 0 || write(fd, line, len) != (ssize_t)len)
        log_warn("could not write termination log \"%s\": %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
}
