/* Files for the unit tests that read step directories: writing one, removing a tree. Include
 * after <cmocka.h>. */
#ifndef PGSTEP_UNIT_FILES_H
#define PGSTEP_UNIT_FILES_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes len bytes of data to dir/name; the test fails if it cannot. */
static inline void unit_write_bytes(const char *dir, const char *name, const char *data, size_t len)
{
    char path[256];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* Removes path and, if it is a directory, everything under it; links are removed, not
 * followed. */
static inline void unit_remove_tree(const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *de;

    if (lstat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    if ((d = opendir(path)) != NULL) {
        while ((de = readdir(d)) != NULL) {
            char child[512];

            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            if (snprintf(child, sizeof(child), "%s/%s", path, de->d_name) < (int)sizeof(child))
                unit_remove_tree(child);
        }
        closedir(d);
    }
    rmdir(path);
}

#endif /* PGSTEP_UNIT_FILES_H */
