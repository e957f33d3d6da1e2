/* Part of the dagrad public API; include dagrad.h rather than this file. */
#ifndef DAGRAD_IO_H
#define DAGRAD_IO_H

#include "dagrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ========================================================================================= */
/* IDX data sets (MNIST, Fashion-MNIST), src/io/idx.c. See docs/data.md.                      */
/* ========================================================================================= */

/* A loaded data set: plain data, owned by the caller, released with dg_dataset_free().
 * Images are row-major [count, rows, cols] float32, pixel byte * scale; labels are the label
 * bytes as int32. A loader that reads only images leaves labels NULL (and n_classes 0); one
 * that reads only labels leaves images NULL and rows == cols == 0. */
typedef struct dg_dataset {
    int64_t count;     /* number of examples */
    int64_t rows;      /* image height */
    int64_t cols;      /* image width */
    float *images;     /* count * rows * cols values, or NULL */
    int32_t *labels;   /* count values in 0 .. 255, or NULL */
    int32_t n_classes; /* largest label + 1 (10 for (Fashion-)MNIST); 0 without labels */
    dg_status status;  /* the last load's status: read with dg_dataset_status */
    char error[256];   /* the last load's message, "" on success: read with dg_dataset_error */
} dg_dataset;

/* Errors, reported as the graph and the optimizer report theirs (status + message object):
 * each loader returns a dg_status, and the dataset it was loading into holds the status and
 * the message (dg_dataset_status, dg_dataset_error) until it is freed or loaded again. The
 * message names the file, e.g.
 *   "idx: /data/train-images-idx3-ubyte.gz: truncated: expected 47040000 bytes of pixels, got 1024"
 * and the status is one of
 *   DG_ERR_INVALID_ARG  NULL path or output (a NULL output has nowhere to hold a message),
 *                       scale not finite
 *   DG_ERR_IO           the file cannot be opened or read (the system's reason is quoted)
 *   DG_ERR_FORMAT       wrong magic, element type or rank; a zero or too large dimension
 *                       (more than 2^31 values); truncated header or data; bytes after the
 *                       data; a corrupt gzip stream; a gzip file in a build without zlib;
 *                       image and label counts that differ
 *   DG_ERR_NOMEM        an allocation failed
 * Every loader zeroes *out first (a NULL path included); on error the data fields stay zero
 * and nothing is leaked, so dg_dataset_free() is always safe afterwards.
 *
 * Files may be plain or gzip-compressed; gzip is recognised by its magic bytes (1f 8b), not by
 * the name. Only unsigned-byte IDX files are read: magic 00 00 08 03 with three big-endian
 * dimensions (count, rows, cols) for images, 00 00 08 01 with one (count) for labels. */

/* The status of the last load into `data` (DG_ERR_INVALID_ARG for NULL). */
DG_API dg_status dg_dataset_status(const dg_dataset *data);
/* Its message, "" when it succeeded; never NULL. Valid while `data` is not reloaded/freed. */
DG_API const char *dg_dataset_error(const dg_dataset *data);

/* Reads an image file into out->count, rows, cols and images (labels stay NULL). */
DG_API dg_status dg_idx_load_images(const char *path, float scale, dg_dataset *out);

/* Reads a label file into out->count, labels and n_classes (images stay NULL). */
DG_API dg_status dg_idx_load_labels(const char *path, dg_dataset *out);

/* Reads an image file and its label file, and checks that they hold the same number of
 * examples (else DG_ERR_FORMAT naming both files and both counts). */
DG_API dg_status dg_idx_load(const char *images_path, const char *labels_path, float scale,
                             dg_dataset *out);

/* Loads the standard four files from `dir` (NULL: where Debian's dataset-fashion-mnist
 * package installs them, dg_fashion_mnist_default_dir(); any MNIST-layout directory works,
 * the file names are the same): train-images-idx3-ubyte, train-labels-idx1-ubyte,
 * t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each taken with a ".gz" suffix when that
 * file exists, else without. Also checks that train and test images have the same size. On
 * error both outputs are zeroed and both hold the message. Either output may be NULL to skip
 * that split (not both: DG_ERR_INVALID_ARG). */
DG_API dg_status dg_fashion_mnist_load(const char *dir, float scale, dg_dataset *train,
                                       dg_dataset *test);

/* The directory dg_fashion_mnist_load reads when given NULL: the build's `fashion_mnist_dir`
 * option, /usr/share/datasets/fashion-mnist by default (Debian's package). */
DG_API const char *dg_fashion_mnist_default_dir(void);

/* Frees the arrays and zeroes the struct; safe on a zeroed struct and on NULL. */
DG_API void dg_dataset_free(dg_dataset *data);

/* ========================================================================================= */
/* Text corpora with a character vocabulary, src/io/text.c. See docs/sequence-models.md.     */
/* ========================================================================================= */

/* A text as character ids: the bytes are decoded as UTF-8, the vocabulary is the set of
 * distinct code points sorted ascending (id k is vocab[k]), and tokens[i] is the id of the
 * i-th character. Plain data owned by the caller, released with dg_text_free(). Errors are
 * reported as the IDX loader's: the status is returned and kept, with a message starting
 * "text: " (DG_ERR_IO: unreadable file; DG_ERR_FORMAT: invalid UTF-8, with the byte offset;
 * DG_ERR_NOMEM; DG_ERR_INVALID_ARG: NULL arguments, more than 2^31 - 1 bytes). On error
 * the data fields are zero and nothing leaks. */
typedef struct dg_text {
    int32_t *tokens;    /* n_tokens ids in 0 .. vocab_size - 1 */
    int64_t n_tokens;
    uint32_t *vocab;    /* vocab_size code points, ascending */
    int32_t vocab_size;
    dg_status status;
    char error[256];
} dg_text;

DG_API dg_status dg_text_status(const dg_text *t);
DG_API const char *dg_text_error(const dg_text *t);

/* Reads a whole file (any size up to 2^31 - 1 bytes) into *out. */
DG_API dg_status dg_text_load(const char *path, dg_text *out);
/* The same from n_bytes of memory (not NUL-terminated). */
DG_API dg_status dg_text_from_utf8(const char *data, int64_t n_bytes, dg_text *out);
/* Frees the arrays and zeroes the struct; safe on a zeroed struct and on NULL. */
DG_API void dg_text_free(dg_text *t);

/* The id of a code point, -1 when it is not in the vocabulary. */
DG_API int32_t dg_text_id(const dg_text *t, uint32_t code_point);
/* Ids of a NUL-terminated UTF-8 string: writes up to max ids and returns how many characters
 * the string has; -1 when a character is not in the vocabulary or the UTF-8 is invalid. */
DG_API int64_t dg_text_encode(const dg_text *t, const char *utf8, int32_t *ids, int64_t max);
/* UTF-8 of n ids into out (NUL-terminated, stopping before a character that does not fit in
 * cap bytes); returns the bytes written, -1 for an id out of range or bad arguments. */
DG_API int64_t dg_text_decode(const dg_text *t, const int32_t *ids, int64_t n, char *out,
                              size_t cap);
/* The UTF-8 bytes of one code point into out (NUL-terminated); returns their count (0 for a
 * value above U+10FFFF). */
DG_API int dg_text_encode_char(uint32_t code_point, char out[5]);

/* The position where the held-out tail starts: n_tokens - floor(n_tokens * val_fraction).
 * Training uses tokens [0, split), validation [split, n_tokens) (by position, not shuffled).
 * -1 for a fraction outside [0, 1]. */
DG_API int64_t dg_text_split(const dg_text *t, double val_fraction);

/* `batch` windows of `len` characters taken from tokens [lo, hi): x [batch, len] holds
 * tokens[s .. s+len) and y the next characters tokens[s+1 .. s+len] (the language-model
 * targets). With rng, each start s is uniform over lo .. hi - len - 1 (one dg_rng_below per
 * window); with rng NULL the windows are consecutive, s = lo + b * len, and must all fit
 * (batch <= (hi - lo - 1) / len): the way to sweep a validation range. DG_ERR_INVALID_ARG for
 * NULL arguments, non-positive sizes or a range too short. */
DG_API dg_status dg_text_windows(const dg_text *t, int64_t lo, int64_t hi, int64_t batch,
                                 int64_t len, dg_rng *rng, int32_t *x, int32_t *y);

/* ========================================================================================= */
/* End of the IDX loader API.                                                                 */
/* ========================================================================================= */

#ifdef __cplusplus
}
#endif

#endif
