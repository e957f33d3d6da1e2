/*
 * libFuzzer target for the safetensors reader (src/io/safetensors.c): any bytes go to
 * dg_checkpoint_open_memory; a file that passes validation has every tensor listed, converted
 * to float32 where its dtype allows, and checksummed, every metadata entry read. Sanitizers
 * catch any read or write out of bounds; the asserts check the reader's own promises.
 *
 * Build and run (docs/checkpoints.md; .ci/run runs it for 60 s):
 *   CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false -Dexamples=false -Dbench=false
 *   ninja -C build-fuzz tests/fuzz/fuzz_safetensors
 *   mkdir -p build-fuzz/corpus_safetensors
 *   build-fuzz/tests/fuzz/fuzz_safetensors -max_total_time=60 -timeout=10 \
 *       -dict=tests/fuzz/safetensors.dict build-fuzz/corpus_safetensors \
 *       tests/fuzz/corpus_safetensors
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dagrad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dg_checkpoint *ck = dg_checkpoint_open_memory(data, size, "fuzz");
    if (ck == NULL)
        return 0;
    if (dg_checkpoint_status(ck) != DG_OK) {
        assert(dg_checkpoint_error(ck)[0] != '\0');
        assert(dg_checkpoint_tensor_count(ck) == 0);
        dg_checkpoint_free(ck);
        return 0;
    }
    uint64_t covered = 0;
    for (int i = 0; i < dg_checkpoint_tensor_count(ck); i++) {
        dg_tensor_info info;
        if (dg_checkpoint_tensor(ck, i, &info) != DG_OK)
            abort();
        /* The reader's promise: data lies inside what was given, tensors tile the data. */
        assert(info.offset == covered);
        covered += info.nbytes;
        assert(covered <= size);
        assert(dg_checkpoint_find(ck, info.name) == i);
        (void)dg_checkpoint_crc32(ck, i);
        /* Converting allocates numel floats: at most 4x the bytes the tensor occupies (F16:
         * 2 bytes each), which the file justified. */
        if (info.numel > 0 && info.numel <= ((int64_t)1 << 22)) {
            float *out = malloc((size_t)info.numel * sizeof *out);
            if (out != NULL) {
                dg_status st = dg_checkpoint_read_f32(ck, i, out, info.numel);
                if (st == DG_OK) {
                    volatile float sink = 0;
                    for (int64_t k = 0; k < info.numel; k++)
                        sink += out[k];
                    (void)sink;
                }
                free(out);
            }
        }
    }
    for (int i = 0; i < dg_checkpoint_metadata_count(ck); i++) {
        const char *key = dg_checkpoint_metadata_key(ck, i);
        assert(key != NULL && dg_checkpoint_metadata_value(ck, i) != NULL);
        assert(dg_checkpoint_metadata(ck, key) != NULL);
    }
    dg_checkpoint_free(ck);
    return 0;
}
