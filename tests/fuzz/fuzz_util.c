/* Helpers of the fuzz targets: failing a property, and the scratch directory where the targets
 * that read files write each input. */
#include "fuzz.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char scratch[PATH_MAX];

void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: property violated: %s\n", file, line, what);
    fflush(stderr);
    abort();
}

/* Removes what the targets wrote (plain files only) and the directory itself. */
static void fuzz_remove_scratch(void)
{
    DIR *d = opendir(scratch);
    struct dirent *de;
    char path[PATH_MAX + 256];

    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", scratch, de->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(scratch);
}

const char *fuzz_scratch_dir(void)
{
    const char *tmp = getenv("TMPDIR");

    if (scratch[0])
        return scratch;
    if (!tmp || !tmp[0])
        tmp = "/tmp";
    if (snprintf(scratch, sizeof(scratch), "%s/pgstep-fuzz.XXXXXX", tmp) >= (int)sizeof(scratch) ||
        !mkdtemp(scratch)) {
        perror("pgstep fuzz: could not create a scratch directory");
        abort();
    }
    atexit(fuzz_remove_scratch);
    return scratch;
}

const char *fuzz_write_file(const char *dir, const char *name, const void *data, size_t size)
{
    static char path[PATH_MAX + 256];
    const char *p = data;
    int fd;

    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        fuzz_fail(__FILE__, __LINE__, "path fits");
    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        perror(path);
        abort();
    }
    while (size > 0) {
        ssize_t n = write(fd, p, size);

        if (n <= 0) {
            perror(path);
            abort();
        }
        p += n;
        size -= (size_t)n;
    }
    close(fd);
    return path;
}

int fuzz_line_of(const char *text, size_t offset)
{
    int line = 1;

    for (size_t i = 0; i < offset; i++)
        line += text[i] == '\n';
    return line;
}
