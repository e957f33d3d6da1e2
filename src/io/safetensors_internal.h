/* The dg_checkpoint handle's insides, shared by safetensors.c (read, validate, build),
 * safetensors_write.c (atomic save) and checkpoint.c (graphs, optimizers, the fit loop). */
#ifndef DG_IO_SAFETENSORS_INTERNAL_H
#define DG_IO_SAFETENSORS_INTERNAL_H

#include "dagrad.h"

enum dg__st_dtype {
    DG__ST_BOOL, DG__ST_U8, DG__ST_I8, DG__ST_F8_E4M3, DG__ST_F8_E5M2,
    DG__ST_I16, DG__ST_U16, DG__ST_F16, DG__ST_BF16,
    DG__ST_I32, DG__ST_U32, DG__ST_F32,
    DG__ST_I64, DG__ST_U64, DG__ST_F64,
    DG__ST_DTYPE_COUNT
};

struct dg__st_tensor {
    char *name;          /* owned */
    int dtype;           /* enum dg__st_dtype */
    int ndim;
    int64_t shape[DG_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end; /* byte range in the data section (opened files) */
    const void *data;    /* into the handle's buffer, or the caller's array (added) */
    bool transpose;      /* an added 2-D array written transposed; shape is the file's */
};

struct dg__st_meta {
    char *key, *value; /* owned */
};

struct dg_checkpoint {
    dg_status status;
    char error[768];
    char *label;            /* the path, for messages */
    unsigned char *buffer;  /* an opened file's bytes */
    size_t size;
    struct dg__st_tensor *tensors;
    int n_tensors, cap_tensors;
    struct dg__st_meta *meta;
    int n_meta, cap_meta;
};

/* Sticks an error to the handle (first wins), prefixed "checkpoint: <label>: ". */
dg_status dg__ck_fail(dg_checkpoint *ck, dg_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

const char *dg__st_dtype_name(int dtype);
unsigned dg__st_dtype_size(int dtype);
/* "[2,3]" into buf; returns buf. */
const char *dg__st_shape_str(int ndim, const int64_t *shape, char *buf, size_t len);
/* F32, F16, BF16, F64 convert to float32. */
bool dg__st_dtype_to_f32(int dtype);
/* t->numel floats into out (t's dtype must convert). */
void dg__st_convert_f32(const struct dg__st_tensor *t, float *out);

#endif
