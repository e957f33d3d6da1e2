/* The IDX loader: plain and gzip files written here, every error path, and Debian's
 * Fashion-MNIST when it is installed. */
#include "dagrad.h"
#include "dg_config.h"
#include "test_util.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if DG_HAVE_ZLIB
#include <zlib.h>
#endif

/* ---- Scratch files ---------------------------------------------------------------------- */

/* A directory made by mkdtemp under $DG_TEST_BUILD_DIR (else /tmp), removed at the end.
 * Made once in the parent process (unchecked fixture), so forked tests share it. */
static char scratch_dir[1024];

static void scratch_setup(void)
{
    const char *base = getenv("DG_TEST_BUILD_DIR");
    snprintf(scratch_dir, sizeof scratch_dir, "%s/idx-test-XXXXXX", base ? base : "/tmp");
    if (mkdtemp(scratch_dir) == NULL) {
        perror("mkdtemp");
        exit(EXIT_FAILURE);
    }
}

/* Removes `dir` and what it holds (files, and directories one level down). */
static void remove_tree(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *entry;
    char path[2048];
    while ((entry = readdir(d)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        struct stat info;
        if (stat(path, &info) == 0 && S_ISDIR(info.st_mode) && depth > 0)
            remove_tree(path, depth - 1);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static void scratch_teardown(void) { remove_tree(scratch_dir, 2); }

static const char *scratch_path(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", scratch_dir, name);
    return buf;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

#if DG_HAVE_ZLIB
static void write_gzip(const char *path, const void *data, size_t n)
{
    gzFile gz = gzopen(path, "wb");
    ck_assert_msg(gz != NULL, "cannot create %s", path);
    ck_assert_int_eq(gzwrite(gz, data, (unsigned)n), (int)n);
    ck_assert_int_eq(gzclose(gz), Z_OK);
}
#endif

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* An IDX file image in a malloc'd buffer: magic, big-endian dims, then `payload` (n_payload
 * bytes). *size receives the total. */
static unsigned char *idx_bytes(uint32_t magic, int rank, const uint32_t *dims,
                                const unsigned char *payload, size_t n_payload, size_t *size)
{
    *size = 4 + 4 * (size_t)rank + n_payload;
    unsigned char *buf = malloc(*size);
    ck_assert_ptr_nonnull(buf);
    put_be32(buf, magic);
    for (int i = 0; i < rank; i++)
        put_be32(buf + 4 + 4 * i, dims[i]);
    if (n_payload > 0)
        memcpy(buf + 4 + 4 * rank, payload, n_payload);
    return buf;
}

/* Writes an IDX file (gzip when `gzip` and zlib is there), returns its path in buf. */
static const char *write_idx(const char *name, bool gzip, uint32_t magic, int rank,
                             const uint32_t *dims, const unsigned char *payload,
                             size_t n_payload, char *buf, size_t len)
{
    size_t size;
    unsigned char *bytes = idx_bytes(magic, rank, dims, payload, n_payload, &size);
    scratch_path(name, buf, len);
#if DG_HAVE_ZLIB
    if (gzip)
        write_gzip(buf, bytes, size);
    else
#endif
        write_bytes(buf, bytes, size);
    (void)gzip;
    free(bytes);
    return buf;
}

/* Example data: 5 images of 3 x 4 and 5 labels. */
enum { N_IMAGES = 5, ROWS = 3, COLS = 4, N_PIXELS = N_IMAGES * ROWS * COLS };
static unsigned char pixels[N_PIXELS];
static const unsigned char labels5[N_IMAGES] = {3, 0, 9, 1, 7};
static const uint32_t image_dims[3] = {N_IMAGES, ROWS, COLS};
static const uint32_t label_dims[1] = {N_IMAGES};

static void fill_pixels(void)
{
    for (int i = 0; i < N_PIXELS; i++)
        pixels[i] = (unsigned char)(i * 37 % 256); /* 0 and 255 both occur */
}

static void check_images(const dg_dataset *data, float scale)
{
    ck_assert_int_eq(data->count, N_IMAGES);
    ck_assert_int_eq(data->rows, ROWS);
    ck_assert_int_eq(data->cols, COLS);
    ck_assert_ptr_nonnull(data->images);
    for (int i = 0; i < N_PIXELS; i++)
        ck_assert_float_eq_tol(data->images[i], (float)pixels[i] * scale, 1e-6f);
}

static void check_labels(const dg_dataset *data)
{
    ck_assert_int_eq(data->count, N_IMAGES);
    ck_assert_ptr_nonnull(data->labels);
    for (int i = 0; i < N_IMAGES; i++)
        ck_assert_int_eq(data->labels[i], labels5[i]);
    ck_assert_int_eq(data->n_classes, 10);
}

/* Copies a dataset's message into err (512 bytes) and passes the status through. */
static dg_status loaded(dg_status status, const dg_dataset *data, char *err)
{
    snprintf(err, 512, "%s", dg_dataset_error(data));
    ck_assert_int_eq(dg_dataset_status(data), status);
    return status;
}

/* Asserts that `err` names `path` and contains `needle`, and that `data` was zeroed. */
static void expect_error(dg_status got, dg_status want, const char *err, const char *path,
                         const char *needle, const dg_dataset *data)
{
    ck_assert_msg(got == want, "status %s, expected %s (message '%s')", dg_status_str(got),
                  dg_status_str(want), err);
    ck_assert_msg(strstr(err, path) != NULL, "message '%s' does not name '%s'", err, path);
    ck_assert_msg(strstr(err, needle) != NULL, "message '%s' lacks '%s'", err, needle);
    ck_assert_msg(strncmp(err, "idx: ", 5) == 0, "message '%s' lacks the prefix", err);
    if (data != NULL) {
        ck_assert_ptr_null(data->images);
        ck_assert_ptr_null(data->labels);
        ck_assert_int_eq(data->count, 0);
    }
}

/* ---- Loading ---------------------------------------------------------------------------- */

static void load_both(bool gzip)
{
    fill_pixels();
    char images_path[1200], labels_path[1200], err[512];
    write_idx(gzip ? "img.gz" : "img", gzip, 0x803, 3, image_dims, pixels, N_PIXELS,
              images_path, sizeof images_path);
    write_idx(gzip ? "lab.gz" : "lab", gzip, 0x801, 1, label_dims, labels5, N_IMAGES,
              labels_path, sizeof labels_path);

    dg_dataset data;
    ck_assert_int_eq(loaded(dg_idx_load_images(images_path, 1.0f / 255.0f, &data), &data, err),
                     DG_OK);
    ck_assert_str_eq(err, "");
    check_images(&data, 1.0f / 255.0f);
    ck_assert_ptr_null(data.labels);
    ck_assert_int_eq(data.n_classes, 0);
    dg_dataset_free(&data);
    ck_assert_ptr_null(data.images);

    ck_assert_int_eq(loaded(dg_idx_load_labels(labels_path, &data), &data, err), DG_OK);
    check_labels(&data);
    ck_assert_ptr_null(data.images);
    ck_assert_int_eq(data.rows, 0);
    dg_dataset_free(&data);

    ck_assert_int_eq(dg_idx_load(images_path, labels_path, 2.0f, &data), DG_OK);
    check_images(&data, 2.0f);
    check_labels(&data);
    dg_dataset_free(&data);
    dg_dataset_free(&data); /* a zeroed struct is fine */
    dg_dataset_free(NULL);
}

START_TEST(test_load_plain) { load_both(false); }
END_TEST

#if DG_HAVE_ZLIB
START_TEST(test_load_gzip) { load_both(true); }
END_TEST
#endif

/* 2.5 MB of pixels: the read buffer grows past its first 1 MiB chunk twice. */
START_TEST(test_load_large)
{
    enum { COUNT = 1000, SIDE = 50, TOTAL = COUNT * SIDE * SIDE };
    unsigned char *big = malloc(TOTAL);
    ck_assert_ptr_nonnull(big);
    for (int i = 0; i < TOTAL; i++)
        big[i] = (unsigned char)((i * 7 + i / 251) % 256);
    char path[1200], err[512];
    const uint32_t dims[3] = {COUNT, SIDE, SIDE};
    dg_dataset data;
    for (int gzip = 0; gzip <= DG_HAVE_ZLIB; gzip++) {
        write_idx(gzip ? "big.gz" : "big", gzip, 0x803, 3, dims, big, TOTAL, path, sizeof path);
        dg_status status = loaded(dg_idx_load_images(path, 1.0f, &data), &data, err);
        ck_assert_msg(status == DG_OK, "%s", err);
        ck_assert_int_eq(data.count, COUNT);
        for (int i = 0; i < TOTAL; i += 4099)
            ck_assert_float_eq_tol(data.images[i], (float)big[i], 1e-6f);
        ck_assert_float_eq_tol(data.images[TOTAL - 1], (float)big[TOTAL - 1], 1e-6f);
        dg_dataset_free(&data);
    }
    free(big);
}
END_TEST

START_TEST(test_fashion_layout_dir)
{
    fill_pixels();
    char dir[1200], path[1400], err[512];
    scratch_path("fmnist", dir, sizeof dir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    /* train gzipped (when zlib is there), t10k plain: each name is looked up with and
     * without ".gz". The test split has 2 images of the same 3 x 4 size. */
    const bool gz = DG_HAVE_ZLIB;
    const uint32_t test_dims[3] = {2, ROWS, COLS}, test_label_dims[1] = {2};
    write_idx(gz ? "fmnist/train-images-idx3-ubyte.gz" : "fmnist/train-images-idx3-ubyte", gz,
              0x803, 3, image_dims, pixels, N_PIXELS, path, sizeof path);
    write_idx(gz ? "fmnist/train-labels-idx1-ubyte.gz" : "fmnist/train-labels-idx1-ubyte", gz,
              0x801, 1, label_dims, labels5, N_IMAGES, path, sizeof path);
    write_idx("fmnist/t10k-images-idx3-ubyte", false, 0x803, 3, test_dims, pixels,
              2 * ROWS * COLS, path, sizeof path);
    write_idx("fmnist/t10k-labels-idx1-ubyte", false, 0x801, 1, test_label_dims, labels5, 2,
              path, sizeof path);

    dg_dataset train, test;
    dg_status status = loaded(dg_fashion_mnist_load(dir, 1.0f / 255.0f, &train, &test), &train, err);
    ck_assert_msg(status == DG_OK, "%s", err);
    check_images(&train, 1.0f / 255.0f);
    check_labels(&train);
    ck_assert_int_eq(test.count, 2);
    ck_assert_int_eq(test.labels[1], labels5[1]);
    ck_assert_float_eq_tol(test.images[2 * ROWS * COLS - 1],
                           (float)pixels[2 * ROWS * COLS - 1] / 255.0f, 1e-6f);
    dg_dataset_free(&train);
    dg_dataset_free(&test);

    /* Only one split asked for. */
    ck_assert_int_eq(loaded(dg_fashion_mnist_load(dir, 1.0f, NULL, &test), &test, err), DG_OK);
    ck_assert_int_eq(test.count, 2);
    dg_dataset_free(&test);

    /* Test images of another size are refused. */
    const uint32_t odd_dims[3] = {2, ROWS, 2};
    write_idx("fmnist/t10k-images-idx3-ubyte", false, 0x803, 3, odd_dims, pixels, 2 * ROWS * 2,
              path, sizeof path);
    status = loaded(dg_fashion_mnist_load(dir, 1.0f, &train, &test), &train, err);
    expect_error(status, DG_ERR_FORMAT, err, dir, "3x2", &train);
    ck_assert_ptr_null(test.images);

    /* A missing file is named with its .gz spelling when neither exists. */
    unlink(path);
    status = loaded(dg_fashion_mnist_load(dir, 1.0f, &train, &test), &train, err);
    expect_error(status, DG_ERR_IO, err, "t10k-images-idx3-ubyte", "cannot open", &train);
}
END_TEST

/* ---- Errors ----------------------------------------------------------------------------- */

START_TEST(test_missing_file)
{
    char path[1200], err[512];
    scratch_path("does-not-exist-idx3-ubyte.gz", path, sizeof path);
    dg_dataset data;
    dg_status status = loaded(dg_idx_load_images(path, 1.0f, &data), &data, err);
    expect_error(status, DG_ERR_IO, err, path, "cannot open", &data);
    status = loaded(dg_idx_load_labels(path, &data), &data, err);
    expect_error(status, DG_ERR_IO, err, path, "No such file", &data);
    /* A directory opens but cannot be read. */
    status = loaded(dg_idx_load_labels(scratch_dir, &data), &data, err);
    expect_error(status, DG_ERR_IO, err, scratch_dir, "read error", &data);
}
END_TEST

START_TEST(test_wrong_magic)
{
    fill_pixels();
    char path[1200], err[512];
    dg_dataset data;
    /* Not IDX at all. */
    write_bytes(scratch_path("zip", path, sizeof path), "PK\3\4 not an idx file", 21);
    dg_status status = loaded(dg_idx_load_images(path, 1.0f, &data), &data, err);
    expect_error(status, DG_ERR_FORMAT, err, path, "not an IDX file", &data);
    /* A label file given as images, and the reverse. */
    write_idx("labels-as-images", false, 0x801, 1, label_dims, labels5, N_IMAGES, path,
              sizeof path);
    status = loaded(dg_idx_load_images(path, 1.0f, &data), &data, err);
    expect_error(status, DG_ERR_FORMAT, err, path, "IDX rank 1", &data);
    write_idx("images-as-labels", false, 0x803, 3, image_dims, pixels, N_PIXELS, path,
              sizeof path);
    status = loaded(dg_idx_load_labels(path, &data), &data, err);
    expect_error(status, DG_ERR_FORMAT, err, path, "0x00000801", &data);
    /* float32 elements (type 0x0d). */
    write_idx("float-idx", false, 0x0d03, 3, image_dims, pixels, N_PIXELS, path, sizeof path);
    status = loaded(dg_idx_load_images(path, 1.0f, &data), &data, err);
    expect_error(status, DG_ERR_FORMAT, err, path, "element type 0x0d", &data);
}
END_TEST

START_TEST(test_truncated_header)
{
    fill_pixels();
    char path[1200], err[512];
    dg_dataset data;
    write_bytes(scratch_path("empty", path, sizeof path), "", 0);
    dg_status status = loaded(dg_idx_load_images(path, 1.0f, &data), &data, err);
    expect_error(status, DG_ERR_FORMAT, err, path, "truncated header", &data);
    write_bytes(scratch_path("two-bytes", path, sizeof path), "\0\0", 2);
    status = loaded(dg_idx_load_labels(path, &data), &data, err);
    expect_error(status, DG_ERR_FORMAT, err, path, "expected 4 bytes of magic, got 2", &data);
    /* Magic and one and a half dimensions of three. */
    size_t size;
    unsigned char *bytes = idx_bytes(0x803, 3, image_dims, NULL, 0, &size);
    write_bytes(scratch_path("half-dims", path, sizeof path), bytes, 10);
    free(bytes);
    status = loaded(dg_idx_load_images(path, 1.0f, &data), &data, err);
    expect_error(status, DG_ERR_FORMAT, err, path, "expected 12 bytes of dimensions, got 6",
                 &data);
}
END_TEST

static void truncated_data(bool gzip)
{
    fill_pixels();
    char path[1200], err[512];
    dg_dataset data;
    write_idx(gzip ? "short.gz" : "short", gzip, 0x803, 3, image_dims, pixels, N_PIXELS - 7,
              path, sizeof path);
    dg_status status = loaded(dg_idx_load_images(path, 1.0f, &data), &data, err);
    expect_error(status, DG_ERR_FORMAT, err, path, "truncated: expected 60 bytes of pixels, got 53",
                 &data);
    write_idx(gzip ? "short-labels.gz" : "short-labels", gzip, 0x801, 1, label_dims, labels5,
              2, path, sizeof path);
    status = loaded(dg_idx_load_labels(path, &data), &data, err);
    expect_error(status, DG_ERR_FORMAT, err, path, "expected 5 bytes of labels, got 2", &data);

    /* Data after the announced values. */
    write_idx(gzip ? "long.gz" : "long", gzip, 0x801, 1, (const uint32_t[]){4}, labels5,
              N_IMAGES, path, sizeof path);
    status = loaded(dg_idx_load_labels(path, &data), &data, err);
    expect_error(status, DG_ERR_FORMAT, err, path, "unexpected data after", &data);
}

START_TEST(test_truncated_data_plain) { truncated_data(false); }
END_TEST

#if DG_HAVE_ZLIB
START_TEST(test_truncated_data_gzip) { truncated_data(true); }
END_TEST

/* gzip damage: the compressed stream cut short, and garbage after a valid gzip header. */
START_TEST(test_broken_gzip)
{
    fill_pixels();
    char path[1200], err[512];
    dg_dataset data;
    write_idx("whole.gz", true, 0x803, 3, image_dims, pixels, N_PIXELS, path, sizeof path);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char gz[512];
    size_t gz_size = fread(gz, 1, sizeof gz, f);
    fclose(f);
    ck_assert_uint_gt(gz_size, 30);

    write_bytes(scratch_path("cut.gz", path, sizeof path), gz, gz_size / 2);
    dg_status status = loaded(dg_idx_load_images(path, 1.0f, &data), &data, err);
    ck_assert_msg(status == DG_ERR_FORMAT, "%s", err);
    expect_error(status, DG_ERR_FORMAT, err, path, "truncated", &data);

    unsigned char garbage[64];
    memcpy(garbage, gz, 10); /* the 10-byte gzip header */
    for (int i = 10; i < 64; i++)
        garbage[i] = (unsigned char)(0xff - i);
    write_bytes(scratch_path("garbage.gz", path, sizeof path), garbage, sizeof garbage);
    status = loaded(dg_idx_load_images(path, 1.0f, &data), &data, err);
    expect_error(status, DG_ERR_FORMAT, err, path, "corrupt gzip data: ", &data);
    ck_assert_ptr_null(strstr(strstr(err, path) + strlen(path), path)); /* named once */
}
END_TEST
#else
/* Built without zlib: a gzip file is refused with a message that says why. */
START_TEST(test_gzip_without_zlib)
{
    static const unsigned char gzip_header[20] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    char path[1200], err[512];
    dg_dataset data;
    write_bytes(scratch_path("any.gz", path, sizeof path), gzip_header, sizeof gzip_header);
    dg_status status = loaded(dg_idx_load_images(path, 1.0f, &data), &data, err);
    expect_error(status, DG_ERR_FORMAT, err, path, "without zlib", &data);
}
END_TEST
#endif

START_TEST(test_mismatched_counts)
{
    fill_pixels();
    char images_path[1200], labels_path[1200], err[512];
    write_idx("five-images", false, 0x803, 3, image_dims, pixels, N_PIXELS, images_path,
              sizeof images_path);
    write_idx("four-labels", false, 0x801, 1, (const uint32_t[]){4}, labels5, 4, labels_path,
              sizeof labels_path);
    dg_dataset data;
    dg_status status = loaded(dg_idx_load(images_path, labels_path, 1.0f, &data), &data, err);
    expect_error(status, DG_ERR_FORMAT, err, labels_path, "4 labels", &data);
    expect_error(status, DG_ERR_FORMAT, err, images_path, "5 images", &data);
    /* A bad label file behind a good image file frees the images. */
    scratch_path("no-labels", labels_path, sizeof labels_path);
    status = loaded(dg_idx_load(images_path, labels_path, 1.0f, &data), &data, err);
    expect_error(status, DG_ERR_IO, err, labels_path, "cannot open", &data);
}
END_TEST

START_TEST(test_bad_dimensions)
{
    char path[1200], err[512];
    dg_dataset data;
    write_idx("zero-rows", false, 0x803, 3, (const uint32_t[]){5, 0, 4}, NULL, 0, path,
              sizeof path);
    dg_status status = loaded(dg_idx_load_images(path, 1.0f, &data), &data, err);
    expect_error(status, DG_ERR_FORMAT, err, path, "dimension 1 is 0", &data);
    /* 4e9^3 overflows int64; refused from the header alone. */
    write_idx("huge", false, 0x803, 3, (const uint32_t[]){4000000000u, 4000000000u, 4000000000u},
              NULL, 0, path, sizeof path);
    status = loaded(dg_idx_load_images(path, 1.0f, &data), &data, err);
    expect_error(status, DG_ERR_FORMAT, err, path, "too large", &data);
    /* 2e9 values, just under the limit, in a short file: reported as truncated after reading
     * what is there, without first allocating gigabytes. */
    write_idx("big-claim", false, 0x803, 3, (const uint32_t[]){2000, 1000, 1000}, labels5, 5,
              path, sizeof path);
    status = loaded(dg_idx_load_images(path, 1.0f, &data), &data, err);
    expect_error(status, DG_ERR_FORMAT, err, path, "expected 2000000000 bytes of pixels, got 5",
                 &data);
}
END_TEST

START_TEST(test_bad_arguments)
{
    fill_pixels();
    char path[1200];
    dg_dataset data;
    write_idx("args", false, 0x803, 3, image_dims, pixels, N_PIXELS, path, sizeof path);
    /* A NULL path zeroes the output as promised (it used to be left untouched, so that a
     * dg_dataset_free after the failure freed garbage). */
    memset(&data, 0x5a, sizeof data);
    ck_assert_int_eq(dg_idx_load_images(NULL, 1.0f, &data), DG_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(dg_dataset_error(&data), "NULL path"));
    ck_assert_int_eq(dg_dataset_status(&data), DG_ERR_INVALID_ARG);
    ck_assert_ptr_null(data.images);
    dg_dataset_free(&data);
    memset(&data, 0x5a, sizeof data);
    ck_assert_int_eq(dg_idx_load_labels(NULL, &data), DG_ERR_INVALID_ARG);
    ck_assert_ptr_null(data.labels);
    dg_dataset_free(&data);
    memset(&data, 0x5a, sizeof data);
    ck_assert_int_eq(dg_idx_load(NULL, path, 1.0f, &data), DG_ERR_INVALID_ARG);
    ck_assert_ptr_null(data.images);
    dg_dataset_free(&data);
    ck_assert_int_eq(dg_idx_load_images(path, 1.0f, NULL), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_idx_load_labels(path, NULL), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_idx_load(path, path, 1.0f, NULL), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_fashion_mnist_load(NULL, 1.0f, NULL, NULL), DG_ERR_INVALID_ARG);
    ck_assert_int_eq(dg_dataset_status(NULL), DG_ERR_INVALID_ARG);
    ck_assert_str_eq(dg_dataset_error(NULL), "dataset is NULL");
    dg_status status = dg_idx_load_images(path, NAN, &data);
    expect_error(status, DG_ERR_INVALID_ARG, dg_dataset_error(&data), path, "not finite", &data);
    /* A successful load clears the message of an earlier failure. */
    ck_assert_int_eq(dg_idx_load_images(path, 1.0f, &data), DG_OK);
    ck_assert_str_eq(dg_dataset_error(&data), "");
    ck_assert_int_eq(dg_dataset_status(&data), DG_OK);
    dg_dataset_free(&data);
}
END_TEST

/* ---- The real data set, when Debian's dataset-fashion-mnist is installed ----------------- */

START_TEST(test_debian_fashion_mnist)
{
    struct stat info;
    if (stat(dg_fashion_mnist_default_dir(), &info) != 0) {
        printf("note: %s is not installed; skipping the Fashion-MNIST check\n",
               dg_fashion_mnist_default_dir());
        return;
    }
#if !DG_HAVE_ZLIB
    printf("note: built without zlib; skipping the (gzipped) Fashion-MNIST check\n");
    return;
#endif
    char err[512];
    dg_dataset train, test;
    dg_status status =
        loaded(dg_fashion_mnist_load(dg_fashion_mnist_default_dir(), 1.0f / 255.0f, &train, &test), &train, err);
    ck_assert_msg(status == DG_OK, "%s", err);
    ck_assert_int_eq(train.count, 60000);
    ck_assert_int_eq(train.rows, 28);
    ck_assert_int_eq(train.cols, 28);
    ck_assert_int_eq(test.count, 10000);
    ck_assert_int_eq(test.rows, 28);
    ck_assert_int_eq(train.n_classes, 10);
    ck_assert_int_eq(test.n_classes, 10);
    /* Pixels in [0, 1], reaching both ends; the ten classes are balanced (6000 / 1000 each). */
    float lowest = 1.0f, highest = 0.0f;
    for (int64_t i = 0; i < train.count * 28 * 28; i++) {
        lowest = train.images[i] < lowest ? train.images[i] : lowest;
        highest = train.images[i] > highest ? train.images[i] : highest;
    }
    ck_assert_float_eq_tol(lowest, 0.0f, 1e-6f);
    ck_assert_float_eq_tol(highest, 1.0f, 1e-6f);
    int per_class[10] = {0};
    for (int64_t i = 0; i < test.count; i++) {
        ck_assert(test.labels[i] >= 0 && test.labels[i] < 10);
        per_class[test.labels[i]]++;
    }
    for (int c = 0; c < 10; c++)
        ck_assert_int_eq(per_class[c], 1000);
    dg_dataset_free(&train);
    dg_dataset_free(&test);
}
END_TEST

static Suite *idx_suite(void)
{
    Suite *suite = suite_create("idx");
    TCase *load = tcase_create("load");
    tcase_add_unchecked_fixture(load, scratch_setup, scratch_teardown);
    tcase_add_test(load, test_load_plain);
#if DG_HAVE_ZLIB
    tcase_add_test(load, test_load_gzip);
#endif
    tcase_add_test(load, test_load_large);
    tcase_add_test(load, test_fashion_layout_dir);
    suite_add_tcase(suite, load);

    TCase *errors = tcase_create("errors");
    tcase_add_unchecked_fixture(errors, scratch_setup, scratch_teardown);
    tcase_add_test(errors, test_missing_file);
    tcase_add_test(errors, test_wrong_magic);
    tcase_add_test(errors, test_truncated_header);
    tcase_add_test(errors, test_truncated_data_plain);
#if DG_HAVE_ZLIB
    tcase_add_test(errors, test_truncated_data_gzip);
    tcase_add_test(errors, test_broken_gzip);
#else
    tcase_add_test(errors, test_gzip_without_zlib);
#endif
    tcase_add_test(errors, test_mismatched_counts);
    tcase_add_test(errors, test_bad_dimensions);
    tcase_add_test(errors, test_bad_arguments);
    suite_add_tcase(suite, errors);

    TCase *real = tcase_create("fashion_mnist");
    tcase_add_test(real, test_debian_fashion_mnist);
    suite_add_tcase(suite, real);
    return suite;
}

int main(void) { return dg_test_run(idx_suite()); }
