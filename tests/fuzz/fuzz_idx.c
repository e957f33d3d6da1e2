/*
 * libFuzzer target for the IDX loader (src/io/idx.c): the input is written to an in-memory
 * file and read with dg_idx_load_images and dg_idx_load_labels (plain or, when the input
 * starts with gzip's magic, through zlib). Any crash, sanitizer report, leak, or a result
 * that breaks the loader's contract (success with inconsistent fields, failure without a
 * message or with data left behind) is a finding.
 *
 *   CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
 *       -Db_lundef=false -Dtests=false -Dexamples=false -Dbench=false
 *   ninja -C build-fuzz tests/fuzz/fuzz_idx
 *   cp -r tests/fuzz/corpus_idx /tmp/idx-corpus
 *   ./build-fuzz/tests/fuzz/fuzz_idx -max_total_time=30 /tmp/idx-corpus
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dagrad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd = -1;
static char path[64];

static void check(const dg_dataset *d, dg_status st, int images)
{
    if (st != DG_OK) {
        if (d->images != NULL || d->labels != NULL || d->count != 0 ||
            dg_dataset_error(d)[0] == '\0' || dg_dataset_status(d) != st)
            abort(); /* a failure must leave nothing behind and say why */
        return;
    }
    if (d->count <= 0 || dg_dataset_error(d)[0] != '\0')
        abort();
    if (images) {
        if (d->images == NULL || d->rows <= 0 || d->cols <= 0)
            abort();
        float sum = 0.0f; /* touch every value: ASan checks the size */
        for (int64_t i = 0; i < d->count * d->rows * d->cols; i++)
            sum += d->images[i];
        if (!(sum >= 0.0f))
            abort();
    } else {
        if (d->labels == NULL || d->n_classes < 1 || d->n_classes > 256)
            abort();
        for (int64_t i = 0; i < d->count; i++)
            if (d->labels[i] < 0 || d->labels[i] >= d->n_classes)
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fd < 0) {
        fd = memfd_create("idx", 0);
        if (fd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    dg_dataset d;
    check(&d, dg_idx_load_images(path, 1.0f, &d), 1);
    dg_dataset_free(&d);
    check(&d, dg_idx_load_labels(path, &d), 0);
    dg_dataset_free(&d);
    return 0;
}
