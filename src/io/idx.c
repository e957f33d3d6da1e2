/*
 * IDX reader (the MNIST file format of LeCun et al.): a 4-byte magic 00 00 <type> <rank>,
 * <rank> big-endian uint32 dimensions, then the values in row-major order. Only type 0x08
 * (unsigned byte) is read, which is what MNIST and Fashion-MNIST use.
 *
 * Files may be gzip-compressed (Debian ships them so); the magic bytes decide, and zlib's
 * gzread decompresses. Nothing is allocated from the header's word alone: the payload buffer
 * grows as bytes actually arrive, so a corrupt header claiming gigabytes in a short file costs
 * nothing. Every error message starts "idx: <path>: ".
 */
#include "dagrad.h"
#include "alloc.h"

#include "dg_config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if DG_HAVE_ZLIB
#include <zlib.h>
#endif

/* Files larger than this many values are refused as corrupt (DG_ERR_FORMAT) before anything
 * is allocated: 2^31 bytes of pixels, 8 GiB as float. MNIST's training images are 4.7e7. */
#define DG_IDX_MAX_VALUES ((int64_t)1 << 31)

#define IDX_TYPE_U8 0x08
#define IDX_RANK_LABELS 1
#define IDX_RANK_IMAGES 3
/* Bytes per read call: bounded so that it fits zlib's `unsigned` length. */
#define READ_CHUNK ((size_t)1 << 20)

/* An open IDX file, plain or gzip. */
struct idx_reader {
    const char *path;
    FILE *file; /* plain files */
#if DG_HAVE_ZLIB
    gzFile gz;  /* gzip files */
#endif
    char *err;
    size_t err_len;
};

/* Writes "idx: <path>: <message>" into the caller's buffer and returns status. */
__attribute__((format(printf, 5, 6))) static dg_status
report(char *err, size_t err_len, dg_status status, const char *path, const char *fmt, ...)
{
    if (err == NULL || err_len == 0)
        return status;
    int used = snprintf(err, err_len, "idx: %s: ", path ? path : "(null)");
    if (used < 0 || (size_t)used >= err_len)
        return status;
    va_list args;
    va_start(args, fmt);
    vsnprintf(err + used, err_len - (size_t)used, fmt, args);
    va_end(args);
    return status;
}

static void reader_close(struct idx_reader *r)
{
    if (r->file != NULL)
        fclose(r->file);
    r->file = NULL;
#if DG_HAVE_ZLIB
    if (r->gz != NULL)
        gzclose(r->gz);
    r->gz = NULL;
#endif
}

/* Opens r->path, switching to zlib when the file starts with the gzip magic 1f 8b. */
static dg_status reader_open(struct idx_reader *r)
{
    r->file = fopen(r->path, "rb");
    if (r->file == NULL)
        return report(r->err, r->err_len, DG_ERR_IO, r->path, "cannot open: %s", strerror(errno));
    unsigned char magic[2];
    size_t got = fread(magic, 1, 2, r->file);
    if (ferror(r->file)) {
        int saved = errno;
        reader_close(r);
        return report(r->err, r->err_len, DG_ERR_IO, r->path, "read error: %s", strerror(saved));
    }
    if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        reader_close(r);
#if DG_HAVE_ZLIB
        errno = 0;
        r->gz = gzopen(r->path, "rb");
        if (r->gz == NULL)
            return report(r->err, r->err_len, errno ? DG_ERR_IO : DG_ERR_NOMEM, r->path,
                          "cannot open as gzip: %s", errno ? strerror(errno) : "out of memory");
        gzbuffer(r->gz, 1u << 17);
        return DG_OK;
#else
        return report(r->err, r->err_len, DG_ERR_FORMAT, r->path,
                      "gzip-compressed, but dagrad was built without zlib (reconfigure with "
                      "zlib1g-dev installed, or gunzip the file)");
#endif
    }
    if (fseek(r->file, 0, SEEK_SET) != 0) {
        int saved = errno;
        reader_close(r);
        return report(r->err, r->err_len, DG_ERR_IO, r->path, "cannot seek: %s", strerror(saved));
    }
    return DG_OK;
}

/* Reads up to n bytes (n <= READ_CHUNK) into buf; *got receives how many arrived, fewer than
 * n only at the end of the data. A read error or corrupt gzip stream is reported. A gzip
 * stream that simply stops early counts as the end of the data (the caller then reports the
 * truncation with byte counts). */
static dg_status reader_read(struct idx_reader *r, void *buf, size_t n, size_t *got)
{
    *got = 0;
#if DG_HAVE_ZLIB
    if (r->gz != NULL) {
        while (*got < n) {
            int k = gzread(r->gz, (char *)buf + *got, (unsigned)(n - *got));
            if (k > 0) {
                *got += (size_t)k;
                continue;
            }
            int code = Z_OK;
            const char *message = gzerror(r->gz, &code);
            if (k == 0 || code == Z_BUF_ERROR || code == Z_OK)
                return DG_OK; /* end of data, possibly early: the caller counts */
            if (code == Z_ERRNO)
                return report(r->err, r->err_len, DG_ERR_IO, r->path, "read error: %s",
                              strerror(errno));
            if (code == Z_MEM_ERROR)
                return report(r->err, r->err_len, DG_ERR_NOMEM, r->path,
                              "out of memory in zlib");
            /* zlib prefixes its messages with the path, which ours already names. */
            size_t path_len = strlen(r->path);
            if (strncmp(message, r->path, path_len) == 0 &&
                strncmp(message + path_len, ": ", 2) == 0)
                message += path_len + 2;
            return report(r->err, r->err_len, DG_ERR_FORMAT, r->path, "corrupt gzip data: %s",
                          message);
        }
        return DG_OK;
    }
#endif
    *got = fread(buf, 1, n, r->file);
    if (*got < n && ferror(r->file))
        return report(r->err, r->err_len, DG_ERR_IO, r->path, "read error: %s",
                      strerror(errno));
    return DG_OK;
}

/* An IDX file's header and payload bytes. */
struct idx_raw {
    int64_t dim[IDX_RANK_IMAGES];
    int64_t n_values;
    unsigned char *bytes; /* n_values bytes, malloc'd */
};

static uint32_t load_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Checks the magic and dimensions of an open file of rank `rank`. `what` names the values in
 * messages ("pixels", "labels"). */
static dg_status read_header(struct idx_reader *r, int rank, const char *what,
                             struct idx_raw *raw)
{
    unsigned char header[4 + 4 * IDX_RANK_IMAGES];
    size_t want = 4, got = 0;
    dg_status status = reader_read(r, header, want, &got);
    if (status != DG_OK)
        return status;
    if (got < want)
        return report(r->err, r->err_len, DG_ERR_FORMAT, r->path,
                      "truncated header: expected 4 bytes of magic, got %zu", got);
    uint32_t magic = load_be32(header);
    uint32_t expected_magic = (uint32_t)(IDX_TYPE_U8 << 8 | rank);
    if (header[0] != 0 || header[1] != 0)
        return report(r->err, r->err_len, DG_ERR_FORMAT, r->path,
                      "not an IDX file: magic 0x%08x, expected 0x%08x", (unsigned)magic,
                      (unsigned)expected_magic);
    if (header[2] != IDX_TYPE_U8)
        return report(r->err, r->err_len, DG_ERR_FORMAT, r->path,
                      "IDX element type 0x%02x is not supported (only unsigned byte, 0x08)",
                      header[2]);
    if (header[3] != rank)
        return report(r->err, r->err_len, DG_ERR_FORMAT, r->path,
                      "IDX rank %d (magic 0x%08x), but %s need rank %d (magic 0x%08x)",
                      header[3], (unsigned)magic, what, rank, (unsigned)expected_magic);

    want = 4 * (size_t)rank;
    status = reader_read(r, header + 4, want, &got);
    if (status != DG_OK)
        return status;
    if (got < want)
        return report(r->err, r->err_len, DG_ERR_FORMAT, r->path,
                      "truncated header: expected %zu bytes of dimensions, got %zu", want, got);
    raw->n_values = 1;
    for (int axis = 0; axis < rank; axis++) {
        int64_t size = load_be32(header + 4 + 4 * axis);
        if (size == 0)
            return report(r->err, r->err_len, DG_ERR_FORMAT, r->path, "dimension %d is 0",
                          axis);
        raw->dim[axis] = size;
        /* Checked before multiplying, so the product cannot overflow. */
        if (raw->n_values > DG_IDX_MAX_VALUES / size)
            return report(r->err, r->err_len, DG_ERR_FORMAT, r->path,
                          "dimensions too large: more than %lld %s (dimension %d is %lld)",
                          (long long)DG_IDX_MAX_VALUES, what, axis, (long long)size);
        raw->n_values *= size;
    }
    return DG_OK;
}

/* Reads exactly raw->n_values payload bytes and checks that nothing follows them. */
static dg_status read_payload(struct idx_reader *r, const char *what, struct idx_raw *raw)
{
    size_t total = (size_t)raw->n_values, have = 0, capacity = 0;
    unsigned char *bytes = NULL;
    dg_status status = DG_OK;
    while (have < total) {
        if (have == capacity) {
            /* Grow with the data actually read, never straight to the header's claim. */
            size_t next = capacity == 0 ? READ_CHUNK : capacity;
            next = next > total - capacity ? total : capacity + next; /* no size_t overflow */
            unsigned char *grown = dg__realloc(bytes, next);
            if (grown == NULL) {
                status = report(r->err, r->err_len, DG_ERR_NOMEM, r->path,
                                "out of memory reading %zu bytes of %s", total, what);
                goto fail;
            }
            bytes = grown;
            capacity = next;
        }
        size_t want = capacity - have, got = 0;
        if (want > READ_CHUNK)
            want = READ_CHUNK;
        status = reader_read(r, bytes + have, want, &got);
        if (status != DG_OK)
            goto fail;
        have += got;
        if (got < want) {
            status = report(r->err, r->err_len, DG_ERR_FORMAT, r->path,
                            "truncated: expected %zu bytes of %s, got %zu", total, what, have);
            goto fail;
        }
    }
    unsigned char extra[256];
    size_t got_extra = 0;
    status = reader_read(r, extra, sizeof extra, &got_extra);
    if (status != DG_OK)
        goto fail;
    if (got_extra > 0) {
        status = report(r->err, r->err_len, DG_ERR_FORMAT, r->path,
                        "unexpected data after the %zu bytes of %s the header announces", total,
                        what);
        goto fail;
    }
    raw->bytes = bytes;
    return DG_OK;
fail:
    dg__free(bytes);
    return status;
}

/* Opens `path` and reads a whole unsigned-byte IDX file of rank `rank`. */
static dg_status read_idx(const char *path, int rank, const char *what, struct idx_raw *raw,
                          char *err, size_t err_len)
{
    struct idx_reader r = {.path = path, .err = err, .err_len = err_len};
    dg_status status = reader_open(&r);
    if (status != DG_OK)
        return status;
    status = read_header(&r, rank, what, raw);
    if (status == DG_OK)
        status = read_payload(&r, what, raw);
    reader_close(&r);
    return status;
}

/* Zeroes a dataset, keeping nothing (the error fields included). */
static void dataset_zero(dg_dataset *out)
{
    memset(out, 0, sizeof *out);
}

/* Ends a load into `out`: on error the data fields are freed and zeroed and status/error
 * keep the failure; on success the error is "". Returns status. */
static dg_status dataset_finish(dg_dataset *out, dg_status status)
{
    if (status != DG_OK) {
        char message[sizeof out->error];
        memcpy(message, out->error, sizeof message);
        dg__free(out->images);
        dg__free(out->labels);
        dataset_zero(out);
        memcpy(out->error, message, sizeof message);
    } else {
        out->error[0] = '\0';
    }
    out->status = status;
    return status;
}

static dg_status load_images(const char *path, float scale, dg_dataset *out)
{
    char *err = out->error;
    size_t err_len = sizeof out->error;
    if (path == NULL)
        return report(err, err_len, DG_ERR_INVALID_ARG, path, "NULL path");
    if (!isfinite(scale))
        return report(err, err_len, DG_ERR_INVALID_ARG, path, "scale %g is not finite",
                      (double)scale);
    struct idx_raw raw = {{0}, 0, NULL};
    dg_status status = read_idx(path, IDX_RANK_IMAGES, "pixels", &raw, err, err_len);
    if (status != DG_OK)
        return status;
    /* The size check matters only where size_t is 32 bits. */
    float *images = (uint64_t)raw.n_values <= SIZE_MAX / sizeof *images
                        ? dg__malloc((size_t)raw.n_values * sizeof *images)
                        : NULL;
    if (images == NULL) {
        dg__free(raw.bytes);
        return report(err, err_len, DG_ERR_NOMEM, path, "out of memory for %lld floats",
                      (long long)raw.n_values);
    }
    for (int64_t i = 0; i < raw.n_values; i++)
        images[i] = (float)raw.bytes[i] * scale;
    dg__free(raw.bytes);
    out->count = raw.dim[0];
    out->rows = raw.dim[1];
    out->cols = raw.dim[2];
    out->images = images;
    return DG_OK;
}

dg_status dg_idx_load_images(const char *path, float scale, dg_dataset *out)
{
    if (out == NULL)
        return DG_ERR_INVALID_ARG;
    dataset_zero(out);
    return dataset_finish(out, load_images(path, scale, out));
}

static dg_status load_labels(const char *path, dg_dataset *out)
{
    char *err = out->error;
    size_t err_len = sizeof out->error;
    if (path == NULL)
        return report(err, err_len, DG_ERR_INVALID_ARG, path, "NULL path");
    struct idx_raw raw = {{0}, 0, NULL};
    dg_status status = read_idx(path, IDX_RANK_LABELS, "labels", &raw, err, err_len);
    if (status != DG_OK)
        return status;
    int32_t *labels = (uint64_t)raw.n_values <= SIZE_MAX / sizeof *labels
                          ? dg__malloc((size_t)raw.n_values * sizeof *labels)
                          : NULL;
    if (labels == NULL) {
        dg__free(raw.bytes);
        return report(err, err_len, DG_ERR_NOMEM, path, "out of memory for %lld labels",
                      (long long)raw.n_values);
    }
    int32_t largest = 0;
    for (int64_t i = 0; i < raw.n_values; i++) {
        labels[i] = raw.bytes[i];
        if (labels[i] > largest)
            largest = labels[i];
    }
    dg__free(raw.bytes);
    out->count = raw.dim[0];
    out->labels = labels;
    out->n_classes = largest + 1;
    return DG_OK;
}

dg_status dg_idx_load_labels(const char *path, dg_dataset *out)
{
    if (out == NULL)
        return DG_ERR_INVALID_ARG;
    dataset_zero(out);
    return dataset_finish(out, load_labels(path, out));
}

dg_status dg_dataset_status(const dg_dataset *data)
{
    return data == NULL ? DG_ERR_INVALID_ARG : data->status;
}

const char *dg_dataset_error(const dg_dataset *data)
{
    return data == NULL ? "dataset is NULL" : data->error;
}

void dg_dataset_free(dg_dataset *data)
{
    if (data == NULL)
        return;
    dg__free(data->images);
    dg__free(data->labels);
    dataset_zero(data);
}

static dg_status load_pair(const char *images_path, const char *labels_path, float scale,
                           dg_dataset *out)
{
    dg_status status = load_images(images_path, scale, out);
    if (status != DG_OK)
        return status;
    dg_dataset labels;
    dataset_zero(&labels);
    status = load_labels(labels_path, &labels);
    if (status != DG_OK) {
        memcpy(out->error, labels.error, sizeof out->error);
        dg_dataset_free(&labels);
        return status;
    }
    if (labels.count != out->count) {
        report(out->error, sizeof out->error, DG_ERR_FORMAT, labels_path,
               "%lld labels, but %s holds %lld images", (long long)labels.count, images_path,
               (long long)out->count);
        dg_dataset_free(&labels);
        return DG_ERR_FORMAT;
    }
    out->labels = labels.labels;
    out->n_classes = labels.n_classes;
    return DG_OK;
}

dg_status dg_idx_load(const char *images_path, const char *labels_path, float scale,
                      dg_dataset *out)
{
    if (out == NULL)
        return DG_ERR_INVALID_ARG;
    dataset_zero(out);
    return dataset_finish(out, load_pair(images_path, labels_path, scale, out));
}

/* "<dir>/<name>.gz" when that file exists, else "<dir>/<name>"; NULL when out of memory. */
static char *dataset_file(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 8;
    char *path = dg__malloc(len);
    if (path == NULL)
        return NULL;
    struct stat info;
    snprintf(path, len, "%s/%s.gz", dir, name);
    if (stat(path, &info) != 0)
        snprintf(path, len, "%s/%s", dir, name);
    return path;
}

/* Loads one split ("train" or "t10k") of an MNIST-layout directory. */
static dg_status load_split(const char *dir, const char *split, float scale, dg_dataset *out)
{
    char images_name[64], labels_name[64];
    snprintf(images_name, sizeof images_name, "%s-images-idx3-ubyte", split);
    snprintf(labels_name, sizeof labels_name, "%s-labels-idx1-ubyte", split);
    char *images_path = dataset_file(dir, images_name);
    char *labels_path = dataset_file(dir, labels_name);
    dg_status status;
    if (images_path == NULL || labels_path == NULL)
        status = report(out->error, sizeof out->error, DG_ERR_NOMEM, dir, "out of memory");
    else
        status = load_pair(images_path, labels_path, scale, out);
    dg__free(images_path);
    dg__free(labels_path);
    return status;
}

const char *dg_fashion_mnist_default_dir(void)
{
    return DG_FASHION_MNIST_DIR;
}

dg_status dg_fashion_mnist_load(const char *dir, float scale, dg_dataset *train,
                                dg_dataset *test)
{
    if (train == NULL && test == NULL)
        return DG_ERR_INVALID_ARG;
    if (train != NULL)
        dataset_zero(train);
    if (test != NULL)
        dataset_zero(test);
    if (dir == NULL)
        dir = DG_FASHION_MNIST_DIR;
    /* The first failure's message goes to the split that failed and is copied to the other. */
    dg_dataset *failed = NULL;
    dg_status status = DG_OK;
    if (train != NULL && (status = load_split(dir, "train", scale, train)) != DG_OK)
        failed = train;
    if (status == DG_OK && test != NULL &&
        (status = load_split(dir, "t10k", scale, test)) != DG_OK)
        failed = test;
    if (status == DG_OK && train != NULL && test != NULL &&
        (train->rows != test->rows || train->cols != test->cols)) {
        failed = train;
        status = report(train->error, sizeof train->error, DG_ERR_FORMAT, dir,
                        "train images are %lldx%lld but t10k images are %lldx%lld",
                        (long long)train->rows, (long long)train->cols, (long long)test->rows,
                        (long long)test->cols);
    }
    dg_dataset *other = failed == train ? test : train;
    if (failed != NULL && other != NULL)
        memcpy(other->error, failed->error, sizeof other->error);
    if (train != NULL)
        dataset_finish(train, status);
    if (test != NULL)
        dataset_finish(test, status);
    return status;
}
