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
/* End of the IDX loader API.                                                                 */
/* ========================================================================================= */

#ifdef __cplusplus
}
#endif

#endif
