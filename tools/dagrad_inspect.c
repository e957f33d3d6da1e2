/*
 * dagrad-inspect: lists what a safetensors file holds (any writer's, not only dagrad's):
 * metadata, then one line per tensor with dtype, shape, byte range, CRC-32 of the stored
 * bytes (zlib's crc32, as `python3 -c "import zlib; print(hex(zlib.crc32(b)))"` gives) and,
 * for float dtypes, min / max / mean. The file is validated first; a corrupt file prints the
 * reader's message and exits with status 1.
 *
 *   dagrad-inspect [--no-stats] FILE...
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"

static void print_shape(const dg_tensor_info *t)
{
    printf("[");
    for (int d = 0; d < t->ndim; d++)
        printf(d ? ",%lld" : "%lld", (long long)t->shape[d]);
    printf("]");
}

/* min / max / mean of a float tensor, or nothing for other dtypes. */
static void print_stats(dg_checkpoint *ck, int index, const dg_tensor_info *t)
{
    bool is_float = strcmp(t->dtype, "F32") == 0 || strcmp(t->dtype, "F16") == 0 ||
                    strcmp(t->dtype, "BF16") == 0 || strcmp(t->dtype, "F64") == 0;
    if (!is_float || t->numel == 0)
        return;
    float *values = malloc((size_t)t->numel * sizeof *values);
    if (values == NULL || dg_checkpoint_read_f32(ck, index, values, t->numel) != DG_OK) {
        free(values);
        return;
    }
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        lo = values[i] < lo ? values[i] : lo;
        hi = values[i] > hi ? values[i] : hi;
        sum += values[i];
    }
    printf("  min %.6g max %.6g mean %.6g", lo, hi, sum / (double)t->numel);
    free(values);
}

static int inspect(const char *path, bool stats)
{
    dg_checkpoint *ck = dg_checkpoint_open(path);
    if (dg_checkpoint_status(ck) != DG_OK) {
        fprintf(stderr, "dagrad-inspect: %s\n", dg_checkpoint_error(ck));
        dg_checkpoint_free(ck);
        return 1;
    }
    int n = dg_checkpoint_tensor_count(ck);
    uint64_t bytes = 0;
    int64_t values = 0;
    for (int i = 0; i < n; i++) {
        dg_tensor_info t;
        dg_checkpoint_tensor(ck, i, &t);
        bytes += t.nbytes;
        values += t.numel;
    }
    printf("%s: %d tensors, %lld values, %llu bytes of data\n", path, n, (long long)values,
           (unsigned long long)bytes);
    int n_meta = dg_checkpoint_metadata_count(ck);
    if (n_meta > 0)
        printf("metadata:\n");
    for (int i = 0; i < n_meta; i++)
        printf("  %s = %s\n", dg_checkpoint_metadata_key(ck, i),
               dg_checkpoint_metadata_value(ck, i));
    printf("tensors:\n");
    for (int i = 0; i < n; i++) {
        dg_tensor_info t;
        dg_checkpoint_tensor(ck, i, &t);
        printf("  %s  %s ", t.name, t.dtype);
        print_shape(&t);
        printf("  bytes %llu..%llu  crc32 %08x", (unsigned long long)t.offset,
               (unsigned long long)(t.offset + t.nbytes), (unsigned)dg_checkpoint_crc32(ck, i));
        if (stats)
            print_stats(ck, i, &t);
        printf("\n");
    }
    dg_checkpoint_free(ck);
    return 0;
}

int main(int argc, char **argv)
{
    bool stats = true;
    int first = 1, status = 0;
    if (argc > 1 && strcmp(argv[1], "--no-stats") == 0) {
        stats = false;
        first = 2;
    }
    if (first >= argc || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fprintf(first >= argc ? stderr : stdout,
                "usage: dagrad-inspect [--no-stats] FILE...\n"
                "Lists the tensors (dtype, shape, byte range, CRC-32, min/max/mean), and the\n"
                "metadata of safetensors files. Exit status 1 when a file is unreadable.\n");
        return first >= argc ? 2 : 0;
    }
    for (int i = first; i < argc; i++)
        status |= inspect(argv[i], stats);
    return status;
}
