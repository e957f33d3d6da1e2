/* Part of the dagrad public API; include dagrad.h rather than this file.
 *
 * Checkpoints in the safetensors format (https://github.com/huggingface/safetensors):
 *   8 bytes   little-endian uint64 N, the length of the header
 *   N bytes   a JSON object: for each tensor  "name": {"dtype": "F32", "shape": [2, 3],
 *             "data_offsets": [begin, end]}  (byte offsets into the data section), and an
 *             optional "__metadata__": {"key": "value", ...} map of strings
 *   the rest  the data section: each tensor's raw little-endian bytes, row-major
 * Files written here can be read by numpy / PyTorch users (safetensors.torch.load_file, or by
 * hand), and their files read here: F32 as is, F16, BF16 and F64 converted to float32. See
 * docs/checkpoints.md for the names dagrad gives parameters, optimizer state and the training
 * loop's position, and for resuming.
 *
 * Two levels:
 *   - dg_checkpoint: a file handle, without a graph. Open (read + validate) a file, list and
 *     read its tensors and metadata; or build one from caller arrays and save it.
 *   - dg_save_checkpoint / dg_load_checkpoint: a graph's parameters, and optionally an
 *     optimizer's state, the training loop's position and a generator, by name.
 *
 * Errors. A dg_checkpoint carries its own status and message, like dg_optim: the first error
 * sticks (dg_checkpoint_status, dg_checkpoint_error), every later call returns it and does
 * nothing, so a chain of adds is checked once at dg_checkpoint_save. dg_checkpoint_open never
 * returns NULL except when memory is exhausted (NULL handles report DG_ERR_NOMEM). The graph
 * functions report through the graph's sticky error (dg_graph_error). Every message names the
 * file, and the tensor when one is involved:
 *   "checkpoint: run/model.safetensors: tensor 'fc1.weight': data_offsets [0, 40] hold 40
 *    bytes, but F32 [3,4] needs 48"
 */
#ifndef DAGRAD_CHECKPOINT_H
#define DAGRAD_CHECKPOINT_H

#include "dagrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A header longer than this is refused (as the safetensors library does). */
#define DG_CHECKPOINT_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

typedef struct dg_checkpoint dg_checkpoint;

/* One tensor of a checkpoint. Pointers stay valid until the handle is freed. */
typedef struct dg_tensor_info {
    const char *name;
    const char *dtype;     /* as in the file: "F32", "F16", "BF16", "F64", "I64", ... */
    int ndim;              /* 0 .. DG_MAX_DIMS */
    int64_t shape[DG_MAX_DIMS];
    int64_t numel;         /* product of the shape (1 for a scalar) */
    uint64_t offset;       /* byte offset of the data within the data section (for an
                              added tensor: where dg_checkpoint_save will put it) */
    uint64_t nbytes;       /* numel * element size */
    const void *data;      /* raw little-endian bytes (opened files), or the caller's array */
} dg_tensor_info;

/* ---- Reading ------------------------------------------------------------------------------ */

/* Reads `path` whole and validates it before anything is used: header length <= the file and
 * <= DG_CHECKPOINT_MAX_HEADER; the header is one well-formed JSON object (cJSON); every entry
 * has a known dtype, a shape of at most DG_MAX_DIMS non-negative integers whose product does
 * not overflow, and data_offsets [begin, end] with end - begin = numel * element size; names
 * are unique; the ranges, sorted, start at 0, touch without overlap and end at the end of the
 * file; metadata values are strings. Memory: the file's size, plus the parsed header (cJSON's
 * tree, a small multiple of the header's length, freed before returning) and one record per
 * tensor; never a size the file merely claims. On failure the handle is in the failed state: DG_ERR_IO (cannot open or
 * read: the system's reason quoted), DG_ERR_FORMAT (anything above), DG_ERR_NOMEM. */
DG_API dg_checkpoint *dg_checkpoint_open(const char *path);

/* The same from `size` bytes in memory (copied); `label` names it in messages (may be NULL). */
DG_API dg_checkpoint *dg_checkpoint_open_memory(const void *bytes, size_t size,
                                                const char *label);

/* Frees the handle, its copy of the file and of every name. NULL is a no-op. */
DG_API void dg_checkpoint_free(dg_checkpoint *ck);

/* DG_OK, or the first error (DG_ERR_NOMEM for NULL). */
DG_API dg_status dg_checkpoint_status(const dg_checkpoint *ck);
/* The message of the first error, "" when none ("out of memory" for NULL). */
DG_API const char *dg_checkpoint_error(const dg_checkpoint *ck);

/* Tensors in data order (by offset). A failed handle has none. */
DG_API int dg_checkpoint_tensor_count(const dg_checkpoint *ck);
/* Fills *out for tensor `index`; DG_ERR_INVALID_ARG for an index out of range. */
DG_API dg_status dg_checkpoint_tensor(const dg_checkpoint *ck, int index, dg_tensor_info *out);
/* The index of the tensor called `name`, or -1. */
DG_API int dg_checkpoint_find(const dg_checkpoint *ck, const char *name);

/* Converts tensor `index` to float32 into out[0 .. count-1]; count must equal its numel
 * (else DG_ERR_SHAPE). F32 is copied; F16 (IEEE half, subnormals, inf and NaN kept), BF16 and
 * F64 (rounded to nearest) are converted; any other dtype is DG_ERR_DTYPE. */
DG_API dg_status dg_checkpoint_read_f32(dg_checkpoint *ck, int index, float *out,
                                        int64_t count);

/* CRC-32 (the zlib/PNG polynomial, 0xEDB88320 reflected) of tensor `index`'s bytes as stored;
 * 0 for an index out of range and for an added tensor that is written transposed.
 * dagrad-inspect prints it. */
DG_API uint32_t dg_checkpoint_crc32(const dg_checkpoint *ck, int index);
/* CRC-32 of any bytes, with the same definition (crc32 of "123456789" is 0xCBF43926). */
DG_API uint32_t dg_crc32(const void *bytes, size_t n);

/* The "__metadata__" map, in file order. */
DG_API int dg_checkpoint_metadata_count(const dg_checkpoint *ck);
DG_API const char *dg_checkpoint_metadata_key(const dg_checkpoint *ck, int index);
DG_API const char *dg_checkpoint_metadata_value(const dg_checkpoint *ck, int index);
/* The value of `key`, or NULL. */
DG_API const char *dg_checkpoint_metadata(const dg_checkpoint *ck, const char *key);

/* ---- Writing ------------------------------------------------------------------------------ */

/* An empty handle to which tensors and metadata are added, then saved. */
DG_API dg_checkpoint *dg_checkpoint_new(void);

/* Adds a float32 tensor `name` of shape shape[0 .. ndim-1] (ndim 0 .. DG_MAX_DIMS, sizes >= 0)
 * whose row-major values are `data`. The array is referenced, not copied: it must stay valid
 * and unchanged until dg_checkpoint_save or dg_checkpoint_free. A name already present, an
 * empty name, or the reserved "__metadata__" is DG_ERR_INVALID_ARG. With `transpose`, a 2-D
 * [r, c] array is written as its [c, r] transpose (PyTorch's Linear layout). */
DG_API dg_status dg_checkpoint_add_f32(dg_checkpoint *ck, const char *name, int ndim,
                                       const int64_t *shape, const float *data,
                                       bool transpose);

/* Sets metadata `key` to `value` (both copied; a key already set is replaced). */
DG_API dg_status dg_checkpoint_set_metadata(dg_checkpoint *ck, const char *key,
                                            const char *value);

/* Writes every tensor added (and, for an opened file, every tensor it holds) and the metadata
 * to `path` atomically: a temporary file in the same directory, fsync, rename over `path`,
 * fsync of the directory. A process killed at any point leaves either the old file or the new
 * one, never a mix (a stray "<path>.tmp.XXXXXX" may remain after a kill). The new file gets
 * the mode of the file it replaces, else 0644. DG_ERR_IO naming
 * the file and the system's reason on failure, and `path` is then untouched. */
DG_API dg_status dg_checkpoint_save(dg_checkpoint *ck, const char *path);

/* ---- A graph's parameters, optimizer state and training position ---------------------------- */

/* What dg_save_checkpoint writes (start from DG_SAVE_DEFAULTS):
 *   params      every parameter of the graph, by name (with `prefix` in front), and the
 *               graph's state: the running statistics of every batch_norm node (constants
 *               that training runs update), as "<layer>.running_mean" / "<layer>.running_var"
 *               (PyTorch's names; from the node's gamma "<layer>.weight", or the constant's
 *               own dg_name, or else "batch_norm.<node index>.running_mean"), F32 [C]
 *   optimizer   when not NULL: every state slot of every parameter as
 *               "optimizer.state.<i>.<slot>" (PyTorch's state_dict names: exp_avg, ...), and
 *               metadata: the optimizer's name, step count (= the schedule's position), the
 *               lr it will use next, and "optimizer.param.<i>" = the parameter's name in
 *               the file (prefix included)
 *   fit         when not NULL: the training loop's position (dagrad_train.h)
 *   rng         when not NULL: a generator's 256-bit state
 *   transpose_2d  2-D parameters written transposed, [in, out] -> [out, in], the layout of
 *               PyTorch's nn.Linear.weight (dagrad's dense weight is [in, out]) */
typedef struct dg_save_options {
    bool params;
    dg_optim *optimizer;
    const dg_fit_state *fit;
    const dg_rng *rng;
    const char *prefix;
    bool transpose_2d;
} dg_save_options;
#define DG_SAVE_DEFAULTS ((dg_save_options){.params = true})

/* Saves per `opts` (NULL: DG_SAVE_DEFAULTS) to `path`, atomically (dg_checkpoint_save). */
DG_API dg_status dg_save_checkpoint(dg_graph *g, const char *path, const dg_save_options *opts);

/* What dg_load_checkpoint restores (start from DG_LOAD_DEFAULTS):
 *   params        the graph's parameters and state (as saved above) by name. A file
 *                 tensor's name is mapped first:
 *                 `strip_prefix` removed when it starts the name, then `add_prefix` put in
 *                 front. Tensors named "optimizer.*" are optimizer state, never parameters.
 *                 Without `partial`, every parameter must be in the file
 *                 (DG_ERR_NOT_FOUND, "parameter 'fc2.bias' is not in the file") and every
 *                 other tensor must be a parameter (DG_ERR_NOT_FOUND, "tensor 'x' matches no
 *                 parameter"); with it, missing parameters keep their values and unmatched
 *                 tensors are ignored. Every state tensor must be in the file too
 *                 (DG_ERR_NOT_FOUND, "state 'bn1.running_var' (batch-norm running
 *                 statistics) is not in the file") unless `partial` or `no_state`; PyTorch's
 *                 "<layer>.num_batches_tracked" beside a state "<layer>.running_mean" is
 *                 skipped. Shapes must match (DG_ERR_SHAPE; with transpose_2d a
 *                 2-D file tensor is transposed first); dtypes must convert to float32
 *                 (DG_ERR_DTYPE otherwise).
 *   no_state      with params: keep the graph's state as it is (state tensors in the file are
 *                 skipped; for files written before state was saved, or to keep statistics)
 *   optimizer     when not NULL: same kind and parameter count, parameter i of the same name
 *                 (mapped like the parameters' names), every slot present with the element
 *                 count of its parameter, and the step count
 *   fit, rng      when not NULL: restored from the metadata, which must hold them
 *   n_loaded      when not NULL, receives how many parameters were loaded (state not
 *                 counted)
 * Everything is checked before anything is written: on error the graph's parameters, the
 * optimizer, *fit and *rng are unchanged (except after an out-of-memory failure of the
 * scratch buffer a transposed tensor needs, which may leave earlier tensors loaded). */
typedef struct dg_load_options {
    bool params;
    bool partial;
    const char *strip_prefix;
    const char *add_prefix;
    bool transpose_2d;
    bool no_state;
    dg_optim *optimizer;
    dg_fit_state *fit;
    dg_rng *rng;
    int *n_loaded;
} dg_load_options;
#define DG_LOAD_DEFAULTS ((dg_load_options){.params = true})

/* Loads per `opts` (NULL: DG_LOAD_DEFAULTS) from `path`; errors stick to the graph, with the
 * file's validation message for a corrupt file. */
DG_API dg_status dg_load_checkpoint(dg_graph *g, const char *path, const dg_load_options *opts);
/* The same from an opened handle (a failed handle's error is copied to the graph). */
DG_API dg_status dg_load_checkpoint_from(dg_graph *g, dg_checkpoint *ck,
                                         const dg_load_options *opts);

#ifdef __cplusplus
}
#endif

#endif
