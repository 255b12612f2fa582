/* What the fuzz targets share: libFuzzer's entry points, a check that stops the run with the
 * input that broke a property, and a scratch directory for the targets that read files. */
#ifndef PGSTEP_FUZZ_H
#define PGSTEP_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Called once before the first input; every target defines it. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Runs one input; returns 0. A broken property aborts, so libFuzzer keeps the input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with the failed condition, file and line when cond is false. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, #cond);                                                  \
    } while (0)

__attribute__((noreturn)) void fuzz_fail(const char *file, int line, const char *what);

/* A directory of this process's own, removed at exit; created on the first call. */
const char *fuzz_scratch_dir(void);

/* Writes size bytes to dir/name, replacing the file; returns its path (static storage). */
const char *fuzz_write_file(const char *dir, const char *name, const void *data, size_t size);

/* The 1-based number of the line that offset falls on in text. */
int fuzz_line_of(const char *text, size_t offset);

#endif /* PGSTEP_FUZZ_H */
