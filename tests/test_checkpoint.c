/* Checkpoints: the safetensors reader's validation (with the exact message of each refusal),
 * conversions, the writer, and saving and loading a graph's parameters, an optimizer's state,
 * the fit position and a generator by name. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dagrad.h"
#include "test_util.h"

/* A temporary path under $DG_TEST_BUILD_DIR (else /tmp), unique per process and name. */
static const char *tmp_path(const char *name, char *buf, size_t len)
{
    const char *dir = getenv("DG_TEST_BUILD_DIR");
    snprintf(buf, len, "%s/ckpt_%d_%s", dir ? dir : "/tmp", (int)getpid(), name);
    return buf;
}

/* The bytes of a safetensors file: 8-byte length, `header`, then `data`. Caller frees. */
static unsigned char *make_file(const char *header, const void *data, size_t data_len,
                                size_t *size)
{
    size_t h = strlen(header);
    *size = 8 + h + data_len;
    unsigned char *bytes = malloc(*size + 1);
    for (int i = 0; i < 8; i++)
        bytes[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(bytes + 8, header, h);
    if (data_len)
        memcpy(bytes + 8 + h, data, data_len);
    return bytes;
}

/* Opens the file made of header + data from memory, labelled "mem". */
static dg_checkpoint *open_made(const char *header, const void *data, size_t data_len)
{
    size_t size;
    unsigned char *bytes = make_file(header, data, data_len, &size);
    dg_checkpoint *ck = dg_checkpoint_open_memory(bytes, size, "mem");
    free(bytes);
    return ck;
}

static void expect_error(const char *header, const void *data, size_t data_len,
                         dg_status status, const char *message)
{
    dg_checkpoint *ck = open_made(header, data, data_len);
    ck_assert_int_eq(dg_checkpoint_status(ck), status);
    ck_assert_str_eq(dg_checkpoint_error(ck), message);
    ck_assert_int_eq(dg_checkpoint_tensor_count(ck), 0);
    dg_checkpoint_free(ck);
}

static const float six[6] = {1, 2, 3, 4, 5, 6};

START_TEST(reads_a_valid_file)
{
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}  ";
    float data[6] = {1, 2, 3, 4, 5, 6};
    dg_checkpoint *ck = open_made(h, data, sizeof data);
    ck_assert_int_eq(dg_checkpoint_status(ck), DG_OK);
    ck_assert_str_eq(dg_checkpoint_error(ck), "");
    ck_assert_int_eq(dg_checkpoint_tensor_count(ck), 2);
    dg_tensor_info info;
    ck_assert_int_eq(dg_checkpoint_tensor(ck, 0, &info), DG_OK); /* data order */
    ck_assert_str_eq(info.name, "a");
    ck_assert_str_eq(info.dtype, "F32");
    ck_assert_int_eq(info.ndim, 2);
    ck_assert_int_eq(info.numel, 4);
    ck_assert_int_eq(info.nbytes, 16);
    ck_assert_int_eq(dg_checkpoint_find(ck, "b"), 1);
    ck_assert_int_eq(dg_checkpoint_find(ck, "c"), -1);
    float b[2];
    ck_assert_int_eq(dg_checkpoint_read_f32(ck, 1, b, 2), DG_OK);
    ck_assert_float_eq(b[0], 5.0f);
    ck_assert_float_eq(b[1], 6.0f);
    ck_assert_str_eq(dg_checkpoint_metadata(ck, "format"), "pt");
    ck_assert_ptr_null(dg_checkpoint_metadata(ck, "other"));
    ck_assert_int_eq(dg_checkpoint_metadata_count(ck), 1);
    ck_assert_uint_eq(dg_checkpoint_crc32(ck, 0), dg_crc32(data, 16));
    ck_assert_uint_eq(dg_crc32("123456789", 9), 0xCBF43926u);
    ck_assert_int_eq(dg_checkpoint_read_f32(ck, 1, b, 3), DG_ERR_SHAPE);
    ck_assert_str_eq(dg_checkpoint_error(ck),
                     "checkpoint: mem: tensor 'b': holds 2 values, the caller asked for 3");
    dg_checkpoint_free(ck);
}
END_TEST

START_TEST(converts_f16_bf16_f64)
{
    /* F16: 1, -2, 0.5, 65504, 2^-24 (smallest subnormal), inf; BF16: 1, -3; F64: 0.1, 1e-300 */
    unsigned char data[12 + 4 + 16];
    const uint16_t half[6] = {0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x7c00};
    for (int i = 0; i < 6; i++) {
        data[2 * i] = (unsigned char)half[i];
        data[2 * i + 1] = (unsigned char)(half[i] >> 8);
    }
    const uint16_t bf[2] = {0x3f80, 0xc040};
    for (int i = 0; i < 2; i++) {
        data[12 + 2 * i] = (unsigned char)bf[i];
        data[12 + 2 * i + 1] = (unsigned char)(bf[i] >> 8);
    }
    const double d[2] = {0.1, 1e-300};
    memcpy(data + 16, d, sizeof d);
    const char *h = "{\"h\":{\"dtype\":\"F16\",\"shape\":[6],\"data_offsets\":[0,12]},"
                    "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[12,16]},"
                    "\"d\":{\"dtype\":\"F64\",\"shape\":[1,2],\"data_offsets\":[16,32]}}";
    dg_checkpoint *ck = open_made(h, data, sizeof data);
    ck_assert_int_eq(dg_checkpoint_status(ck), DG_OK);
    float out[6];
    ck_assert_int_eq(dg_checkpoint_read_f32(ck, 0, out, 6), DG_OK);
    ck_assert_float_eq(out[0], 1.0f);
    ck_assert_float_eq(out[1], -2.0f);
    ck_assert_float_eq(out[2], 0.5f);
    ck_assert_float_eq(out[3], 65504.0f);
    ck_assert_float_eq(out[4], ldexpf(1.0f, -24));
    ck_assert(isinf(out[5]) && out[5] > 0);
    ck_assert_int_eq(dg_checkpoint_read_f32(ck, 1, out, 2), DG_OK);
    ck_assert_float_eq(out[0], 1.0f);
    ck_assert_float_eq(out[1], -3.0f);
    ck_assert_int_eq(dg_checkpoint_read_f32(ck, 2, out, 2), DG_OK);
    ck_assert_float_eq(out[0], 0.1f);
    ck_assert_float_eq(out[1], 0.0f);
    dg_checkpoint_free(ck);
}
END_TEST

START_TEST(refuses_empty_and_truncated_files)
{
    dg_checkpoint *ck = dg_checkpoint_open_memory("", 0, "mem");
    ck_assert_int_eq(dg_checkpoint_status(ck), DG_ERR_FORMAT);
    ck_assert_str_eq(dg_checkpoint_error(ck), "checkpoint: mem: empty file: the file is 0 "
                                              "bytes, shorter than the 8-byte header length");
    dg_checkpoint_free(ck);
    ck = dg_checkpoint_open_memory("\x10\0\0", 3, "mem");
    ck_assert_str_eq(dg_checkpoint_error(ck), "checkpoint: mem: truncated: the file is 3 "
                                              "bytes, shorter than the 8-byte header length");
    dg_checkpoint_free(ck);

    /* A valid file cut inside the header, then inside the data. */
    const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}";
    size_t size;
    unsigned char *bytes = make_file(h, six, sizeof six, &size);
    ck = dg_checkpoint_open_memory(bytes, 20, "mem");
    ck_assert_int_eq(dg_checkpoint_status(ck), DG_ERR_FORMAT);
    ck_assert_str_eq(dg_checkpoint_error(ck), "checkpoint: mem: truncated: the header length "
                                              "is 57 bytes but only 12 follow");
    dg_checkpoint_free(ck);
    ck = dg_checkpoint_open_memory(bytes, size - 5, "mem");
    ck_assert_int_eq(dg_checkpoint_status(ck), DG_ERR_FORMAT);
    ck_assert_str_eq(dg_checkpoint_error(ck),
                     "checkpoint: mem: tensor 'a': data_offsets [0, 24] reach past the end of "
                     "the data (19 bytes): truncated file?");
    dg_checkpoint_free(ck);
    free(bytes);

    /* A file that does not exist. */
    ck = dg_checkpoint_open("/nonexistent/dir/x.safetensors");
    ck_assert_int_eq(dg_checkpoint_status(ck), DG_ERR_IO);
    ck_assert_str_eq(dg_checkpoint_error(ck), "checkpoint: /nonexistent/dir/x.safetensors: "
                                              "cannot open: No such file or directory");
    dg_checkpoint_free(ck);
    ck_assert_int_eq(dg_checkpoint_status(NULL), DG_ERR_NOMEM);
}
END_TEST

START_TEST(refuses_oversized_header)
{
    unsigned char bytes[16] = {0};
    uint64_t len = 100000001;
    for (int i = 0; i < 8; i++)
        bytes[i] = (unsigned char)(len >> (8 * i));
    dg_checkpoint *ck = dg_checkpoint_open_memory(bytes, sizeof bytes, "mem");
    ck_assert_int_eq(dg_checkpoint_status(ck), DG_ERR_FORMAT);
    ck_assert_str_eq(dg_checkpoint_error(ck), "checkpoint: mem: header length 100000001 "
                                              "exceeds the limit of 100000000 bytes");
    dg_checkpoint_free(ck);
    /* 2^64 - 1: no overflow in "8 + length". */
    memset(bytes, 0xff, 8);
    ck = dg_checkpoint_open_memory(bytes, sizeof bytes, "mem");
    ck_assert_str_eq(dg_checkpoint_error(ck), "checkpoint: mem: header length "
                                              "18446744073709551615 exceeds the limit of "
                                              "100000000 bytes");
    dg_checkpoint_free(ck);
}
END_TEST

START_TEST(refuses_bit_flips)
{
    const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}";
    size_t size;
    unsigned char *bytes = make_file(h, six, sizeof six, &size);
    /* The '}' closing the entry becomes '|': JSON error. */
    unsigned char *flipped = malloc(size);
    memcpy(flipped, bytes, size);
    flipped[8 + 55] ^= 0x01;
    dg_checkpoint *ck = dg_checkpoint_open_memory(flipped, size, "mem");
    ck_assert_int_eq(dg_checkpoint_status(ck), DG_ERR_FORMAT);
    ck_assert_str_eq(dg_checkpoint_error(ck), "checkpoint: mem: the header is not well-formed "
                                              "JSON (error near byte 55 of 57)");
    dg_checkpoint_free(ck);
    /* The shape's '3' becomes '2': the byte range no longer fits the shape. */
    memcpy(flipped, bytes, size);
    flipped[8 + 31] ^= 0x01;
    ck = dg_checkpoint_open_memory(flipped, size, "mem");
    ck_assert_str_eq(dg_checkpoint_error(ck), "checkpoint: mem: tensor 'a': data_offsets "
                                              "[0, 24] hold 24 bytes, but F32 [2,2] needs 16");
    dg_checkpoint_free(ck);
    /* A high bit in the length: oversized. */
    memcpy(flipped, bytes, size);
    flipped[3] ^= 0x80;
    ck = dg_checkpoint_open_memory(flipped, size, "mem");
    ck_assert_str_eq(dg_checkpoint_error(ck), "checkpoint: mem: header length 2147483705 "
                                              "exceeds the limit of 100000000 bytes");
    dg_checkpoint_free(ck);
    /* Every single-bit flip anywhere in the header: refused or still valid, never a crash,
     * and the data of a file that is still valid reads within bounds. */
    for (size_t byte = 0; byte < 8 + strlen(h); byte++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(flipped, bytes, size);
            flipped[byte] ^= (unsigned char)(1u << bit);
            ck = dg_checkpoint_open_memory(flipped, size, "mem");
            if (dg_checkpoint_status(ck) == DG_OK) {
                for (int i = 0; i < dg_checkpoint_tensor_count(ck); i++) {
                    dg_tensor_info info;
                    dg_checkpoint_tensor(ck, i, &info);
                    ck_assert_uint_le(info.offset + info.nbytes, sizeof six);
                }
            } else {
                ck_assert_int_ne(dg_checkpoint_error(ck)[0], '\0');
            }
            dg_checkpoint_free(ck);
        }
    }
    free(flipped);
    free(bytes);
}
END_TEST

START_TEST(refuses_bad_layouts)
{
    float data[6] = {0};
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                 data, 12, DG_ERR_FORMAT,
                 "checkpoint: mem: tensor 'b': data_offsets [4, 12] overlap the tensor 'a' "
                 "before it");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                 data, 12, DG_ERR_FORMAT,
                 "checkpoint: mem: tensor 'b': data_offsets [8, 12] leave a gap after byte 4");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", data, 8,
                 DG_ERR_FORMAT, "checkpoint: mem: 4 bytes of data after the last tensor 'a'");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                 data, 8, DG_ERR_FORMAT, "checkpoint: mem: tensor 'a' appears twice");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", data, 4,
                 DG_ERR_FORMAT,
                 "checkpoint: mem: tensor 'a': data_offsets [4, 0] end before they begin");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                 "\"data_offsets\":[0,4]}}",
                 data, 4, DG_ERR_FORMAT,
                 "checkpoint: mem: tensor 'a': the shape's element count overflows");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],"
                 "\"data_offsets\":[0,4]}}",
                 data, 4, DG_ERR_FORMAT,
                 "checkpoint: mem: tensor 'a': shape[0] is not an integer in [0, 2^53]");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", data, 4,
                 DG_ERR_FORMAT,
                 "checkpoint: mem: tensor 'a': shape[0] is not an integer in [0, 2^53]");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", data, 4,
                 DG_ERR_FORMAT,
                 "checkpoint: mem: tensor 'a': data_offsets is not two integers in [0, 2^53]");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                 "\"data_offsets\":[0,4]}}",
                 data, 4, DG_ERR_FORMAT, "checkpoint: mem: tensor 'a': 9 dimensions, more "
                                         "than 8");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", data, 0, DG_ERR_FORMAT,
                 "checkpoint: mem: tensor 'a': missing field 'data_offsets'");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}",
                 data, 4, DG_ERR_FORMAT, "checkpoint: mem: tensor 'a': unexpected field 'x'");
    expect_error("[1,2]", NULL, 0, DG_ERR_FORMAT,
                 "checkpoint: mem: the header does not start with '{'");
    expect_error("{\"a\":1} x", NULL, 0, DG_ERR_FORMAT,
                 "checkpoint: mem: the header has bytes after its JSON object (at byte 8)");
    expect_error("{\"__metadata__\":{\"k\":1}}", NULL, 0, DG_ERR_FORMAT,
                 "checkpoint: mem: __metadata__ value of 'k' is not a string");
    expect_error("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", NULL, 0, DG_ERR_FORMAT,
                 "checkpoint: mem: __metadata__ key 'k' appears twice");
    /* Nothing at all: a valid empty file. */
    dg_checkpoint *ck = open_made("{}", NULL, 0);
    ck_assert_int_eq(dg_checkpoint_status(ck), DG_OK);
    ck_assert_int_eq(dg_checkpoint_tensor_count(ck), 0);
    dg_checkpoint_free(ck);
}
END_TEST

START_TEST(refuses_wrong_dtypes)
{
    int64_t data[2] = {1, 2};
    expect_error("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,16]}}", data, 16,
                 DG_ERR_FORMAT, "checkpoint: mem: tensor 'a': unknown dtype 'Q4'");
    expect_error("{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,16]}}", data, 16,
                 DG_ERR_FORMAT, "checkpoint: mem: tensor 'a': dtype is not a string");
    /* A known dtype that is not a float: listed, but not read as float32. */
    dg_checkpoint *ck =
        open_made("{\"a\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", data, 16);
    ck_assert_int_eq(dg_checkpoint_status(ck), DG_OK);
    float out[2];
    ck_assert_int_eq(dg_checkpoint_read_f32(ck, 0, out, 2), DG_ERR_DTYPE);
    ck_assert_str_eq(dg_checkpoint_error(ck), "checkpoint: mem: tensor 'a': dtype I64 does "
                                              "not convert to float32 (F32, F16, BF16 and F64 "
                                              "do)");
    dg_checkpoint_free(ck);
}
END_TEST

/* ---- Graphs ------------------------------------------------------------------------------- */

struct net {
    dg_graph *g;
    dg_node *x, *out, *w1, *b1, *w2, *b2;
};

static void build_net(struct net *n, uint64_t seed)
{
    dg_rng rng;
    dg_rng_seed(&rng, seed);
    n->g = dg_graph_new();
    n->x = dg_input(n->g, "x", 2, (int64_t[]){2, 3});
    dg_node *h = dg_dense(n->g, n->x, 4, DG_ACT_RELU, "fc1", &rng);
    n->out = dg_dense(n->g, h, 2, DG_ACT_NONE, "fc2", &rng);
    n->w1 = dg_graph_find(n->g, "fc1.weight");
    n->b1 = dg_graph_find(n->g, "fc1.bias");
    n->w2 = dg_graph_find(n->g, "fc2.weight");
    n->b2 = dg_graph_find(n->g, "fc2.bias");
    dg_init_uniform(n->b1, &rng, -1, 1);
    dg_init_uniform(n->b2, &rng, -1, 1);
    ck_assert_int_eq(dg_graph_status(n->g), DG_OK);
}

static bool same_param(dg_node *a, dg_node *b)
{
    return dg_node_numel(a) == dg_node_numel(b) &&
           memcmp(dg_param_data(a), dg_param_data(b),
                  (size_t)dg_node_numel(a) * sizeof(float)) == 0;
}

START_TEST(params_round_trip)
{
    struct net a, b;
    build_net(&a, 1);
    build_net(&b, 2);
    ck_assert(!same_param(a.w1, b.w1));
    char path[512];
    tmp_path("round.safetensors", path, sizeof path);
    ck_assert_int_eq(dg_save_checkpoint(a.g, path, NULL), DG_OK);
    int loaded = -1;
    dg_load_options lo = DG_LOAD_DEFAULTS;
    lo.n_loaded = &loaded;
    ck_assert_int_eq(dg_load_checkpoint(b.g, path, &lo), DG_OK);
    ck_assert_int_eq(loaded, 4);
    ck_assert(same_param(a.w1, b.w1) && same_param(a.b1, b.b1));
    ck_assert(same_param(a.w2, b.w2) && same_param(a.b2, b.b2));

    /* What a numpy user sees: the file's names, dtypes, shapes, in dagrad's [in, out]. */
    dg_checkpoint *ck = dg_checkpoint_open(path);
    ck_assert_int_eq(dg_checkpoint_status(ck), DG_OK);
    ck_assert_int_eq(dg_checkpoint_tensor_count(ck), 4);
    dg_tensor_info info;
    dg_checkpoint_tensor(ck, 0, &info);
    ck_assert_str_eq(info.name, "fc1.weight");
    ck_assert_int_eq(info.shape[0], 3);
    ck_assert_int_eq(info.shape[1], 4);
    ck_assert_int_eq(info.offset, 0);
    ck_assert_str_eq(dg_checkpoint_metadata(ck, "format"), "dagrad");
    dg_checkpoint_free(ck);

    /* Torch layout: written transposed, read back transposed. */
    dg_save_options so = DG_SAVE_DEFAULTS;
    so.transpose_2d = true;
    ck_assert_int_eq(dg_save_checkpoint(a.g, path, &so), DG_OK);
    ck = dg_checkpoint_open(path);
    dg_checkpoint_tensor(ck, 0, &info);
    ck_assert_int_eq(info.shape[0], 4);
    ck_assert_int_eq(info.shape[1], 3);
    float w[12];
    dg_checkpoint_read_f32(ck, 0, w, 12);
    ck_assert_float_eq(w[1 * 3 + 2], dg_param_data(a.w1)[2 * 4 + 1]);
    dg_checkpoint_free(ck);
    dg_init_constant(b.w1, 0);
    ck_assert_int_eq(dg_load_checkpoint(b.g, path, NULL), DG_ERR_SHAPE);
    char msg[1024];
    snprintf(msg, sizeof msg, "load: %s: tensor 'fc1.weight': shape [4,3] in the file, "
             "parameter 'fc1.weight' [3,4]", path);
    ck_assert_str_eq(dg_graph_error(b.g), msg);
    dg_graph_clear_error(b.g);
    dg_load_options lt = DG_LOAD_DEFAULTS;
    lt.transpose_2d = true;
    ck_assert_int_eq(dg_load_checkpoint(b.g, path, &lt), DG_OK);
    ck_assert(same_param(a.w1, b.w1) && same_param(a.w2, b.w2));
    unlink(path);
    dg_graph_free(a.g);
    dg_graph_free(b.g);
}
END_TEST

START_TEST(load_errors_name_file_and_tensor)
{
    struct net a, b;
    build_net(&a, 1);
    build_net(&b, 2);
    char path[512], msg[1024];
    tmp_path("errors.safetensors", path, sizeof path);

    /* Missing: a file with fc1 only. */
    dg_checkpoint *ck = dg_checkpoint_new();
    dg_checkpoint_add_f32(ck, "fc1.weight", 2, (int64_t[]){3, 4}, dg_param_data(a.w1), false);
    dg_checkpoint_add_f32(ck, "fc1.bias", 1, (int64_t[]){4}, dg_param_data(a.b1), false);
    ck_assert_int_eq(dg_checkpoint_save(ck, path), DG_OK);
    dg_checkpoint_free(ck);
    float before[8];
    memcpy(before, dg_param_data(b.w2), sizeof before);
    ck_assert_int_eq(dg_load_checkpoint(b.g, path, NULL), DG_ERR_NOT_FOUND);
    snprintf(msg, sizeof msg, "load: %s: parameter 'fc2.weight' is not in the file (partial "
             "loads allow this)", path);
    ck_assert_str_eq(dg_graph_error(b.g), msg);
    ck_assert(!same_param(a.w1, b.w1)); /* nothing was written */
    dg_graph_clear_error(b.g);
    /* Partial: fc1 loaded, fc2 kept. */
    int loaded = 0;
    dg_load_options lo = DG_LOAD_DEFAULTS;
    lo.partial = true;
    lo.n_loaded = &loaded;
    ck_assert_int_eq(dg_load_checkpoint(b.g, path, &lo), DG_OK);
    ck_assert_int_eq(loaded, 2);
    ck_assert(same_param(a.w1, b.w1));
    ck_assert(memcmp(before, dg_param_data(b.w2), sizeof before) == 0);

    /* Unexpected, then mapped with prefixes. */
    dg_save_options so = DG_SAVE_DEFAULTS;
    so.prefix = "model.";
    ck_assert_int_eq(dg_save_checkpoint(a.g, path, &so), DG_OK);
    ck_assert_int_eq(dg_load_checkpoint(b.g, path, NULL), DG_ERR_NOT_FOUND);
    snprintf(msg, sizeof msg, "load: %s: tensor 'model.fc1.weight' (as 'model.fc1.weight') "
             "matches no parameter of the graph (partial loads allow this)", path);
    ck_assert_str_eq(dg_graph_error(b.g), msg);
    dg_graph_clear_error(b.g);
    dg_load_options strip = DG_LOAD_DEFAULTS;
    strip.strip_prefix = "model.fc";
    strip.add_prefix = "fc";
    ck_assert_int_eq(dg_load_checkpoint(b.g, path, &strip), DG_OK);
    ck_assert(same_param(a.w2, b.w2));

    /* Shape and dtype mismatches. */
    ck = dg_checkpoint_new();
    float zeros[16] = {0};
    dg_checkpoint_add_f32(ck, "fc1.weight", 2, (int64_t[]){4, 3}, zeros, false);
    dg_checkpoint_save(ck, path);
    dg_checkpoint_free(ck);
    lo.n_loaded = NULL;
    ck_assert_int_eq(dg_load_checkpoint(b.g, path, &lo), DG_ERR_SHAPE);
    snprintf(msg, sizeof msg, "load: %s: tensor 'fc1.weight': shape [4,3] in the file, "
             "parameter 'fc1.weight' [3,4]", path);
    ck_assert_str_eq(dg_graph_error(b.g), msg);
    dg_graph_clear_error(b.g);

    int64_t ints[4] = {0};
    size_t size;
    unsigned char *bytes = make_file(
        "{\"fc2.bias\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", ints, 16,
        &size);
    FILE *f = fopen(path, "wb");
    fwrite(bytes, 1, size, f);
    fclose(f);
    free(bytes);
    ck_assert_int_eq(dg_load_checkpoint(b.g, path, &lo), DG_ERR_DTYPE);
    snprintf(msg, sizeof msg, "load: %s: tensor 'fc2.bias': dtype I64 cannot be loaded into "
             "float32 parameter 'fc2.bias' (F32, F16, BF16 and F64 can)", path);
    ck_assert_str_eq(dg_graph_error(b.g), msg);
    dg_graph_clear_error(b.g);

    /* A corrupt file: the reader's message on the graph. */
    f = fopen(path, "wb");
    fwrite("\1\0\0\0\0\0\0\0{", 1, 9, f);
    fclose(f);
    ck_assert_int_eq(dg_load_checkpoint(b.g, path, NULL), DG_ERR_FORMAT);
    snprintf(msg, sizeof msg, "checkpoint: %s: the header does not start with '{'", path);
    ck_assert_str_eq(dg_graph_error(b.g), msg);
    unlink(path);
    dg_graph_free(a.g);
    dg_graph_free(b.g);
}
END_TEST

START_TEST(writer_refuses_bad_input)
{
    dg_checkpoint *ck = dg_checkpoint_new();
    ck_assert_int_eq(dg_checkpoint_add_f32(ck, "a", 1, (int64_t[]){2}, six, false), DG_OK);
    ck_assert_int_eq(dg_checkpoint_add_f32(ck, "b", 2, (int64_t[]){2, 2}, six, false), DG_OK);
    dg_tensor_info info;
    ck_assert_int_eq(dg_checkpoint_tensor(ck, 1, &info), DG_OK);
    ck_assert_int_eq(info.offset, 8);
    ck_assert_int_eq(info.nbytes, 16);
    ck_assert_uint_eq(dg_checkpoint_crc32(ck, 1), dg_crc32(six, 16));
    ck_assert_int_eq(dg_checkpoint_add_f32(ck, "a", 1, (int64_t[]){2}, six, false),
                     DG_ERR_INVALID_ARG);
    ck_assert_str_eq(dg_checkpoint_error(ck), "checkpoint: (memory): add: tensor 'a' is "
                                              "already present");
    /* Sticky: the save refuses too. */
    ck_assert_int_eq(dg_checkpoint_save(ck, "/tmp/never-written"), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(access("/tmp/never-written", F_OK), -1);
    dg_checkpoint_free(ck);
    ck = dg_checkpoint_new();
    ck_assert_int_eq(dg_checkpoint_add_f32(ck, "__metadata__", 0, NULL, six, false),
                     DG_ERR_INVALID_ARG);
    dg_checkpoint_free(ck);
    ck = dg_checkpoint_new();
    dg_checkpoint_add_f32(ck, "a", 1, (int64_t[]){2}, six, false);
    ck_assert_int_eq(dg_checkpoint_save(ck, "/nonexistent/dir/x.safetensors"), DG_ERR_IO);
    ck_assert_str_eq(dg_checkpoint_error(ck), "checkpoint: (memory): save to "
                                              "'/nonexistent/dir/x.safetensors' failed while "
                                              "creating a temporary file: No such file or "
                                              "directory");
    dg_checkpoint_free(ck);
}
END_TEST

START_TEST(names_and_metadata_are_escaped)
{
    char path[512];
    tmp_path("escape.safetensors", path, sizeof path);
    dg_checkpoint *ck = dg_checkpoint_new();
    const char *odd = "a \"quoted\\ name\"\n\x01 é";
    dg_checkpoint_add_f32(ck, odd, 0, NULL, six, false);
    dg_checkpoint_add_f32(ck, "empty", 2, (int64_t[]){0, 5}, NULL, false);
    dg_checkpoint_set_metadata(ck, "k\"", "v\\\t");
    dg_checkpoint_set_metadata(ck, "k\"", "replaced\t");
    ck_assert_int_eq(dg_checkpoint_save(ck, path), DG_OK);
    dg_checkpoint_free(ck);
    ck = dg_checkpoint_open(path);
    ck_assert_int_eq(dg_checkpoint_status(ck), DG_OK);
    ck_assert_int_eq(dg_checkpoint_tensor_count(ck), 2);
    int i = dg_checkpoint_find(ck, odd);
    ck_assert_int_ge(i, 0);
    float v;
    ck_assert_int_eq(dg_checkpoint_read_f32(ck, i, &v, 1), DG_OK);
    ck_assert_float_eq(v, 1.0f);
    ck_assert_str_eq(dg_checkpoint_metadata(ck, "k\""), "replaced\t");
    /* The data section starts 8-byte aligned. */
    dg_tensor_info info;
    dg_checkpoint_tensor(ck, 0, &info);
    FILE *f = fopen(path, "rb");
    unsigned char len[8];
    ck_assert_int_eq(fread(len, 1, 8, f), 8);
    fclose(f);
    ck_assert_int_eq(len[0] % 8, 0);
    dg_checkpoint_free(ck);
    struct stat mode;
    ck_assert_int_eq(stat(path, &mode), 0);
    ck_assert_int_eq(mode.st_mode & 0777, 0644); /* not mkstemp's 0600 */
    unlink(path);
}
END_TEST

/* ---- Optimizer state, fit state, generator ------------------------------------------------ */

START_TEST(optimizer_state_round_trip)
{
    enum { N = 10 };
    float pa[N], pb[N], grad[N];
    for (int i = 0; i < N; i++) {
        pa[i] = pb[i] = (float)i / 3.0f;
        grad[i] = (float)(i - 4) / 7.0f;
    }
    float *params_a[1] = {pa}, *params_b[1] = {pb};
    const float *grads[1] = {grad};
    dg_adam_config cfg = DG_ADAMW_DEFAULTS;
    cfg.amsgrad = true;
    dg_optim *a = dg_optim_new_adamw_raw(1, params_a, (int64_t[]){N}, &cfg);
    dg_optim *b = dg_optim_new_adamw_raw(1, params_b, (int64_t[]){N}, &cfg);
    for (int s = 0; s < 3; s++)
        dg_optim_step_raw(a, grads);
    dg_graph *g = dg_graph_new();
    char path[512];
    tmp_path("optim.safetensors", path, sizeof path);
    dg_fit_state fit = {.epoch = 3, .step = 42, .seed = 18446744073709551615ull,
                        .best_loss = 0.1, .best_epoch = 2, .epochs_without_improvement = 1};
    dg_rng rng;
    dg_rng_seed(&rng, 5);
    dg_rng_u64(&rng);
    dg_save_options so = {.params = false, .optimizer = a, .fit = &fit, .rng = &rng};
    ck_assert_int_eq(dg_save_checkpoint(g, path, &so), DG_OK);

    dg_checkpoint *ck = dg_checkpoint_open(path);
    ck_assert_int_ge(dg_checkpoint_find(ck, "optimizer.state.0.exp_avg"), 0);
    ck_assert_int_ge(dg_checkpoint_find(ck, "optimizer.state.0.exp_avg_sq"), 0);
    ck_assert_int_ge(dg_checkpoint_find(ck, "optimizer.state.0.max_exp_avg_sq"), 0);
    ck_assert_str_eq(dg_checkpoint_metadata(ck, "optimizer"), "adamw");
    ck_assert_str_eq(dg_checkpoint_metadata(ck, "optimizer.step"), "3");
    dg_checkpoint_free(ck);

    dg_fit_state fit_b = {0};
    dg_rng rng_b = {{0}};
    dg_load_options lo = {.params = false, .optimizer = b, .fit = &fit_b, .rng = &rng_b};
    ck_assert_int_eq(dg_load_checkpoint(g, path, &lo), DG_OK);
    ck_assert_int_eq(dg_optim_step_count(b), 3);
    ck_assert_int_eq(fit_b.epoch, 3);
    ck_assert_int_eq(fit_b.step, 42);
    ck_assert(fit_b.seed == fit.seed);
    ck_assert(fit_b.best_loss == 0.1); /* exact: printed with 17 digits */
    ck_assert_int_eq(fit_b.best_epoch, 2);
    ck_assert_int_eq(fit_b.epochs_without_improvement, 1);
    ck_assert(memcmp(&rng, &rng_b, sizeof rng) == 0);
    for (int s = 0; s < dg_optim_state_count(a); s++) {
        const char *slot = dg_optim_state_name(a, s);
        ck_assert(memcmp(dg_optim_state(a, 0, slot, NULL), dg_optim_state(b, 0, slot, NULL),
                         N * sizeof(float)) == 0);
    }
    /* Restored state steps alike: same parameters after one more step each. */
    memcpy(pb, pa, sizeof pa);
    dg_optim_step_raw(a, grads);
    dg_optim_step_raw(b, grads);
    ck_assert(memcmp(pa, pb, sizeof pa) == 0);

    /* Another kind of optimizer: refused, nothing changed. */
    dg_sgd_config sc = DG_SGD_DEFAULTS;
    sc.momentum = 0.9;
    dg_optim *sgd = dg_optim_new_sgd_raw(1, params_b, (int64_t[]){N}, &sc);
    dg_load_options ls = {.optimizer = sgd};
    ck_assert_int_eq(dg_load_checkpoint(g, path, &ls), DG_ERR_INVALID_ARG);
    char msg[1024];
    snprintf(msg, sizeof msg, "load: %s: the file holds optimizer state of adamw, loading "
             "into sgd", path);
    ck_assert_str_eq(dg_graph_error(g), msg);
    ck_assert_int_eq(dg_optim_step_count(sgd), 0);
    dg_optim_free(sgd);
    unlink(path);
    dg_graph_free(g);
    dg_optim_free(a);
    dg_optim_free(b);
}
END_TEST

/* An Adam optimizer over the net's parameters, in the given order of (weight, bias) layers. */
static dg_optim *net_optimizer(struct net *n, bool fc2_first)
{
    dg_node *loss = dg_sum(n->g, n->out, 0, NULL, false);
    dg_node *params[4], *grads[4];
    int count = 0;
    ck_assert_int_eq(dg_grad_params(n->g, loss, 4, params, grads, &count), DG_OK);
    ck_assert_int_eq(count, 4);
    if (fc2_first) {
        dg_node *p[4] = {params[2], params[3], params[0], params[1]};
        dg_node *q[4] = {grads[2], grads[3], grads[0], grads[1]};
        memcpy(params, p, sizeof p);
        memcpy(grads, q, sizeof q);
    }
    dg_adam_config cfg = DG_ADAM_DEFAULTS;
    return dg_optim_new_adam(4, params, grads, &cfg);
}

START_TEST(optimizer_state_follows_parameter_names)
{
    struct net a, b;
    build_net(&a, 1);
    build_net(&b, 2);
    dg_optim *opt_a = net_optimizer(&a, false);
    dg_optim *swapped = net_optimizer(&b, true);
    dg_optim *same = net_optimizer(&b, false);
    char path[512], msg[1024];
    tmp_path("names.safetensors", path, sizeof path);
    dg_save_options so = DG_SAVE_DEFAULTS;
    so.optimizer = opt_a;
    so.prefix = "model.";
    ck_assert_int_eq(dg_save_checkpoint(a.g, path, &so), DG_OK);
    dg_load_options lo = DG_LOAD_DEFAULTS;
    lo.strip_prefix = "model.";
    lo.optimizer = swapped;
    ck_assert_int_eq(dg_load_checkpoint(b.g, path, &lo), DG_ERR_INVALID_ARG);
    snprintf(msg, sizeof msg, "load: %s: optimizer parameter 0 is 'fc1.weight' in the file but "
             "'fc2.weight' in the optimizer", path);
    ck_assert_str_eq(dg_graph_error(b.g), msg);
    ck_assert(!same_param(a.w1, b.w1)); /* nothing loaded */
    dg_graph_clear_error(b.g);
    lo.optimizer = same;
    ck_assert_int_eq(dg_load_checkpoint(b.g, path, &lo), DG_OK);
    ck_assert(same_param(a.w1, b.w1));
    unlink(path);
    dg_optim_free(opt_a);
    dg_optim_free(swapped);
    dg_optim_free(same);
    dg_graph_free(a.g);
    dg_graph_free(b.g);
}
END_TEST

static Suite *checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *format = tcase_create("format");
    tcase_add_test(format, reads_a_valid_file);
    tcase_add_test(format, converts_f16_bf16_f64);
    tcase_add_test(format, refuses_empty_and_truncated_files);
    tcase_add_test(format, refuses_oversized_header);
    tcase_add_test(format, refuses_bit_flips);
    tcase_add_test(format, refuses_bad_layouts);
    tcase_add_test(format, refuses_wrong_dtypes);
    tcase_add_test(format, writer_refuses_bad_input);
    tcase_add_test(format, names_and_metadata_are_escaped);
    suite_add_tcase(s, format);
    TCase *graph = tcase_create("graph");
    tcase_add_test(graph, params_round_trip);
    tcase_add_test(graph, load_errors_name_file_and_tensor);
    tcase_add_test(graph, optimizer_state_round_trip);
    tcase_add_test(graph, optimizer_state_follows_parameter_names);
    suite_add_tcase(s, graph);
    return s;
}

int main(void) { return dg_test_run(checkpoint_suite()); }
