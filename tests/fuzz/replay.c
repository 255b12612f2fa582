/* Runs a fuzz target over files and directories of inputs without libFuzzer, so that every build
 * (gcc too) replays the seed corpus and the inputs of past findings through the same properties. */
#include "fuzz.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs the target on one file's bytes, in an allocation of exactly that size so that the
 * sanitizers see a read past its end. */
static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t size = 0;
    long n;

    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        perror(path);
        if (f)
            fclose(f);
        return 1;
    }
    size = (size_t)n;
    data = malloc(size ? size : 1);
    if (!data || fread(data, 1, size, f) != size) {
        perror(path);
        free(data);
        fclose(f);
        return 1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput((const uint8_t *)data, size);
    free(data);
    return 0;
}

/* Every regular file of dir, in name order. */
static int replay_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;
    int failed = 0;

    if (!d) {
        perror(dir);
        return 1;
    }
    while ((de = readdir(d)) != NULL) {
        char **grown;

        if (de->d_name[0] == '.')
            continue;
        grown = realloc(names, (n + 1) * sizeof(char *));
        if (!grown || !(grown[n] = strdup(de->d_name))) {
            perror("replay");
            abort();
        }
        names = grown;
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(char *), compare_names);
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        failed |= replay_file(path);
        (*count)++;
        free(names[i]);
    }
    free(names);
    return failed;
}

int main(int argc, char **argv)
{
    size_t count = 0;
    int failed = 0;

    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat st;

        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            failed |= replay_dir(argv[i], &count);
        } else {
            failed |= replay_file(argv[i]);
            count++;
        }
    }
    printf("replayed %zu inputs\n", count);
    return failed;
}
