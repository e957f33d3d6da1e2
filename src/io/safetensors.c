/*
 * The safetensors format: a validating reader (the header parsed by cJSON, every claim
 * checked against the file before use) and an atomic writer. No graph here: this file is the
 * dg_checkpoint handle only, so that the fuzz target links it alone. checkpoint.c binds it to
 * graphs, optimizers and the training loop.
 */
#include "dagrad.h"
#include "alloc.h"
#include "safetensors_internal.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Every dtype of the safetensors specification, so that any valid file can be listed. */
static const struct {
    const char *name;
    unsigned size;
} dtype_table[] = {
    [DG__ST_BOOL] = {"BOOL", 1}, [DG__ST_U8] = {"U8", 1},     [DG__ST_I8] = {"I8", 1},
    [DG__ST_F8_E4M3] = {"F8_E4M3", 1}, [DG__ST_F8_E5M2] = {"F8_E5M2", 1},
    [DG__ST_I16] = {"I16", 2},   [DG__ST_U16] = {"U16", 2},   [DG__ST_F16] = {"F16", 2},
    [DG__ST_BF16] = {"BF16", 2}, [DG__ST_I32] = {"I32", 4},   [DG__ST_U32] = {"U32", 4},
    [DG__ST_F32] = {"F32", 4},   [DG__ST_I64] = {"I64", 8},   [DG__ST_U64] = {"U64", 8},
    [DG__ST_F64] = {"F64", 8},
};

#define METADATA_KEY "__metadata__"
/* JSON integers beyond 2^53 are not exact in a double: refused. */
#define MAX_JSON_INTEGER 9007199254740992.0

dg_status dg__ck_fail(dg_checkpoint *ck, dg_status status, const char *fmt, ...)
{
    if (ck == NULL || ck->status != DG_OK)
        return ck ? ck->status : status;
    int used = snprintf(ck->error, sizeof ck->error, "checkpoint: %s: ",
                        ck->label ? ck->label : "(memory)");
    if (used < 0 || (size_t)used >= sizeof ck->error)
        used = 0;
    va_list args;
    va_start(args, fmt);
    vsnprintf(ck->error + used, sizeof ck->error - (size_t)used, fmt, args);
    va_end(args);
    ck->status = status;
    return status;
}

static char *copy_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = dg__malloc(n);
    if (copy != NULL)
        memcpy(copy, s, n);
    return copy;
}

static dg_checkpoint *handle_new(const char *label)
{
    dg_checkpoint *ck = dg__calloc(1, sizeof *ck);
    if (ck == NULL)
        return NULL;
    if (label != NULL && (ck->label = copy_string(label)) == NULL) {
        dg__free(ck);
        return NULL;
    }
    return ck;
}

dg_checkpoint *dg_checkpoint_new(void) { return handle_new(NULL); }

static void clear_contents(dg_checkpoint *ck)
{
    for (int i = 0; i < ck->n_tensors; i++)
        dg__free(ck->tensors[i].name);
    for (int i = 0; i < ck->n_meta; i++) {
        dg__free(ck->meta[i].key);
        dg__free(ck->meta[i].value);
    }
    dg__free(ck->tensors);
    dg__free(ck->meta);
    dg__free(ck->buffer);
    ck->tensors = NULL;
    ck->meta = NULL;
    ck->buffer = NULL;
    ck->n_tensors = ck->cap_tensors = ck->n_meta = ck->cap_meta = 0;
}

void dg_checkpoint_free(dg_checkpoint *ck)
{
    if (ck == NULL)
        return;
    clear_contents(ck);
    dg__free(ck->label);
    dg__free(ck);
}

dg_status dg_checkpoint_status(const dg_checkpoint *ck) { return ck ? ck->status : DG_ERR_NOMEM; }

const char *dg_checkpoint_error(const dg_checkpoint *ck)
{
    return ck ? ck->error : "out of memory";
}

const char *dg__st_dtype_name(int dtype)
{
    return dtype >= 0 && dtype < DG__ST_DTYPE_COUNT ? dtype_table[dtype].name : "?";
}

unsigned dg__st_dtype_size(int dtype)
{
    return dtype >= 0 && dtype < DG__ST_DTYPE_COUNT ? dtype_table[dtype].size : 0;
}

static int dtype_from_name(const char *name)
{
    for (int i = 0; i < DG__ST_DTYPE_COUNT; i++)
        if (strcmp(dtype_table[i].name, name) == 0)
            return i;
    return -1;
}

/* "[2,3]" into buf. */
const char *dg__st_shape_str(int ndim, const int64_t *shape, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, i ? ",%lld" : "%lld",
                                 (long long)shape[i]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
    return buf;
}

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* ---- Growing arrays ----------------------------------------------------------------------- */

static bool reserve_tensors(dg_checkpoint *ck, int extra)
{
    if (ck->n_tensors + extra <= ck->cap_tensors)
        return true;
    if (extra > INT_MAX / 2 - ck->n_tensors)
        return false;
    int cap = ck->cap_tensors ? ck->cap_tensors : 8;
    while (cap < ck->n_tensors + extra)
        cap *= 2;
    struct dg__st_tensor *grown = dg__realloc(ck->tensors, (size_t)cap * sizeof *grown);
    if (grown == NULL)
        return false;
    ck->tensors = grown;
    ck->cap_tensors = cap;
    return true;
}

static int find_meta(const dg_checkpoint *ck, const char *key)
{
    for (int i = 0; i < ck->n_meta; i++)
        if (strcmp(ck->meta[i].key, key) == 0)
            return i;
    return -1;
}

/* Appends key = value (copies); false when out of memory. */
static bool append_meta(dg_checkpoint *ck, const char *key, const char *value)
{
    if (ck->n_meta == ck->cap_meta) {
        if (ck->cap_meta > INT_MAX / 4)
            return false;
        int cap = ck->cap_meta ? 2 * ck->cap_meta : 8;
        struct dg__st_meta *grown = dg__realloc(ck->meta, (size_t)cap * sizeof *grown);
        if (grown == NULL)
            return false;
        ck->meta = grown;
        ck->cap_meta = cap;
    }
    char *k = copy_string(key), *v = copy_string(value);
    if (k == NULL || v == NULL) {
        dg__free(k);
        dg__free(v);
        return false;
    }
    ck->meta[ck->n_meta++] = (struct dg__st_meta){k, v};
    return true;
}

/* ---- Parsing and validation --------------------------------------------------------------- */

/* A JSON number that is an exact integer in [0, 2^53] into *out; false otherwise. */
static bool json_index(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return false;
    double v = item->valuedouble;
    if (!(v >= 0.0 && v <= MAX_JSON_INTEGER) || floor(v) != v)
        return false;
    *out = (uint64_t)v;
    return true;
}

static dg_status parse_metadata(dg_checkpoint *ck, const cJSON *object)
{
    if (!cJSON_IsObject(object))
        return dg__ck_fail(ck, DG_ERR_FORMAT, "__metadata__ is not a JSON object");
    for (const cJSON *item = object->child; item != NULL; item = item->next) {
        if (!cJSON_IsString(item) || item->valuestring == NULL)
            return dg__ck_fail(ck, DG_ERR_FORMAT, "__metadata__ value of '%s' is not a string",
                               item->string);
        if (find_meta(ck, item->string) >= 0)
            return dg__ck_fail(ck, DG_ERR_FORMAT, "__metadata__ key '%s' appears twice",
                               item->string);
        if (!append_meta(ck, item->string, item->valuestring))
            return dg__ck_fail(ck, DG_ERR_NOMEM, "out of memory");
    }
    return DG_OK;
}

/* One "name": {"dtype", "shape", "data_offsets"} entry into *t (t->name set by the caller). */
static dg_status parse_entry(dg_checkpoint *ck, const cJSON *entry, struct dg__st_tensor *t)
{
    const char *name = t->name;
    if (!cJSON_IsObject(entry))
        return dg__ck_fail(ck, DG_ERR_FORMAT, "tensor '%s': entry is not a JSON object", name);
    const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL;
    for (const cJSON *field = entry->child; field != NULL; field = field->next) {
        const cJSON **slot = strcmp(field->string, "dtype") == 0          ? &dtype
                             : strcmp(field->string, "shape") == 0        ? &shape
                             : strcmp(field->string, "data_offsets") == 0 ? &offsets
                                                                          : NULL;
        if (slot == NULL)
            return dg__ck_fail(ck, DG_ERR_FORMAT, "tensor '%s': unexpected field '%s'", name,
                               field->string);
        if (*slot != NULL)
            return dg__ck_fail(ck, DG_ERR_FORMAT, "tensor '%s': field '%s' appears twice",
                               name, field->string);
        *slot = field;
    }
    if (dtype == NULL || shape == NULL || offsets == NULL)
        return dg__ck_fail(ck, DG_ERR_FORMAT, "tensor '%s': missing field '%s'", name,
                           dtype == NULL ? "dtype" : shape == NULL ? "shape" : "data_offsets");
    if (!cJSON_IsString(dtype) || dtype->valuestring == NULL)
        return dg__ck_fail(ck, DG_ERR_FORMAT, "tensor '%s': dtype is not a string", name);
    t->dtype = dtype_from_name(dtype->valuestring);
    if (t->dtype < 0)
        return dg__ck_fail(ck, DG_ERR_FORMAT, "tensor '%s': unknown dtype '%.32s'", name,
                           dtype->valuestring);
    if (!cJSON_IsArray(shape))
        return dg__ck_fail(ck, DG_ERR_FORMAT, "tensor '%s': shape is not an array", name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > DG_MAX_DIMS)
        return dg__ck_fail(ck, DG_ERR_FORMAT, "tensor '%s': %d dimensions, more than %d", name,
                           ndim, DG_MAX_DIMS);
    t->ndim = ndim;
    t->numel = 1;
    int axis = 0;
    for (const cJSON *dim = shape->child; dim != NULL; dim = dim->next, axis++) {
        uint64_t size;
        if (!json_index(dim, &size))
            return dg__ck_fail(ck, DG_ERR_FORMAT,
                               "tensor '%s': shape[%d] is not an integer in [0, 2^53]", name,
                               axis);
        t->shape[axis] = (int64_t)size;
        if (__builtin_mul_overflow(t->numel, t->shape[axis], &t->numel))
            return dg__ck_fail(ck, DG_ERR_FORMAT,
                               "tensor '%s': the shape's element count overflows", name);
    }
    uint64_t range[2];
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        !json_index(offsets->child, &range[0]) || !json_index(offsets->child->next, &range[1]))
        return dg__ck_fail(ck, DG_ERR_FORMAT,
                           "tensor '%s': data_offsets is not two integers in [0, 2^53]", name);
    if (range[1] < range[0])
        return dg__ck_fail(ck, DG_ERR_FORMAT, "tensor '%s': data_offsets [%llu, %llu] end "
                           "before they begin", name, (unsigned long long)range[0],
                           (unsigned long long)range[1]);
    t->begin = range[0];
    t->end = range[1];
    uint64_t need;
    char buf[160];
    if (__builtin_mul_overflow((uint64_t)t->numel, (uint64_t)dg__st_dtype_size(t->dtype),
                               &need) ||
        need != t->end - t->begin)
        return dg__ck_fail(ck, DG_ERR_FORMAT, "tensor '%s': data_offsets [%llu, %llu] hold "
                           "%llu bytes, but %s %s needs %llu", name,
                           (unsigned long long)t->begin, (unsigned long long)t->end,
                           (unsigned long long)(t->end - t->begin), dg__st_dtype_name(t->dtype),
                           dg__st_shape_str(t->ndim, t->shape, buf, sizeof buf),
                           (unsigned long long)need);
    return DG_OK;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp((*(const struct dg__st_tensor *const *)a)->name,
                  (*(const struct dg__st_tensor *const *)b)->name);
}

static int compare_ranges(const void *a, const void *b)
{
    const struct dg__st_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* Names unique; ranges from 0 to the end of the data, touching, not overlapping. Sorts the
 * tensors into data order. */
static dg_status check_layout(dg_checkpoint *ck, uint64_t data_size)
{
    int n = ck->n_tensors;
    if (n == 0)
        return data_size == 0 ? DG_OK
                              : dg__ck_fail(ck, DG_ERR_FORMAT, "%llu bytes of data but no "
                                            "tensors", (unsigned long long)data_size);
    const struct dg__st_tensor **by_name = dg__malloc((size_t)n * sizeof *by_name);
    if (by_name == NULL)
        return dg__ck_fail(ck, DG_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++)
        by_name[i] = &ck->tensors[i];
    qsort(by_name, (size_t)n, sizeof *by_name, compare_names);
    for (int i = 1; i < n; i++) {
        if (strcmp(by_name[i]->name, by_name[i - 1]->name) == 0) {
            dg__ck_fail(ck, DG_ERR_FORMAT, "tensor '%s' appears twice", by_name[i]->name);
            dg__free(by_name);
            return ck->status;
        }
    }
    dg__free(by_name);
    qsort(ck->tensors, (size_t)n, sizeof *ck->tensors, compare_ranges);
    uint64_t expected = 0;
    for (int i = 0; i < n; i++) {
        const struct dg__st_tensor *t = &ck->tensors[i];
        if (t->begin < expected)
            return dg__ck_fail(ck, DG_ERR_FORMAT, "tensor '%s': data_offsets [%llu, %llu] "
                               "overlap the tensor '%s' before it", t->name,
                               (unsigned long long)t->begin, (unsigned long long)t->end,
                               ck->tensors[i - 1].name);
        if (t->begin > expected)
            return dg__ck_fail(ck, DG_ERR_FORMAT, "tensor '%s': data_offsets [%llu, %llu] "
                               "leave a gap after byte %llu", t->name,
                               (unsigned long long)t->begin, (unsigned long long)t->end,
                               (unsigned long long)expected);
        if (t->end > data_size)
            return dg__ck_fail(ck, DG_ERR_FORMAT, "tensor '%s': data_offsets [%llu, %llu] "
                               "reach past the end of the data (%llu bytes): truncated file?",
                               t->name, (unsigned long long)t->begin,
                               (unsigned long long)t->end, (unsigned long long)data_size);
        expected = t->end;
    }
    if (expected != data_size)
        return dg__ck_fail(ck, DG_ERR_FORMAT, "%llu bytes of data after the last tensor '%s'",
                           (unsigned long long)(data_size - expected),
                           ck->tensors[n - 1].name);
    return DG_OK;
}

/* Parses and validates ck->buffer (ck->size bytes). */
static dg_status parse(dg_checkpoint *ck)
{
    const unsigned char *bytes = ck->buffer;
    size_t size = ck->size;
    if (size < 8)
        return dg__ck_fail(ck, DG_ERR_FORMAT, "%s: the file is %zu bytes, shorter than the "
                           "8-byte header length", size == 0 ? "empty file" : "truncated",
                           size);
    uint64_t header_len = load_le64(bytes);
    if (header_len > DG_CHECKPOINT_MAX_HEADER)
        return dg__ck_fail(ck, DG_ERR_FORMAT, "header length %llu exceeds the limit of %llu "
                           "bytes", (unsigned long long)header_len,
                           (unsigned long long)DG_CHECKPOINT_MAX_HEADER);
    if (header_len > size - 8)
        return dg__ck_fail(ck, DG_ERR_FORMAT, "truncated: the header length is %llu bytes "
                           "but only %zu follow", (unsigned long long)header_len, size - 8);
    if (header_len < 2 || bytes[8] != '{')
        return dg__ck_fail(ck, DG_ERR_FORMAT, "the header does not start with '{'");
    const char *header = (const char *)bytes + 8;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(header, (size_t)header_len, &end, false);
    if (root == NULL) {
        long at = end != NULL && end >= header ? (long)(end - header) : -1;
        return dg__ck_fail(ck, DG_ERR_FORMAT, "the header is not well-formed JSON (error near "
                           "byte %ld of %llu)", at, (unsigned long long)header_len);
    }
    dg_status status = DG_OK;
    for (const char *p = end; p < header + header_len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            status = dg__ck_fail(ck, DG_ERR_FORMAT, "the header has bytes after its JSON "
                                 "object (at byte %ld)", (long)(p - header));
            break;
        }
    }
    if (status == DG_OK && !cJSON_IsObject(root))
        status = dg__ck_fail(ck, DG_ERR_FORMAT, "the header is not a JSON object");
    bool seen_metadata = false;
    for (const cJSON *item = status == DG_OK ? root->child : NULL; item; item = item->next) {
        if (strcmp(item->string, METADATA_KEY) == 0) {
            if (seen_metadata) {
                status = dg__ck_fail(ck, DG_ERR_FORMAT, "__metadata__ appears twice");
                break;
            }
            seen_metadata = true;
            if ((status = parse_metadata(ck, item)) != DG_OK)
                break;
            continue;
        }
        /* Grown one entry at a time, as entries validate: a header of many bad entries
         * fails at the first one without a large allocation. */
        if (!reserve_tensors(ck, 1)) {
            status = dg__ck_fail(ck, DG_ERR_NOMEM, "out of memory for %d tensors",
                                 ck->n_tensors + 1);
            break;
        }
        struct dg__st_tensor *t = &ck->tensors[ck->n_tensors];
        memset(t, 0, sizeof *t);
        if (item->string[0] == '\0') {
            status = dg__ck_fail(ck, DG_ERR_FORMAT, "a tensor has an empty name");
            break;
        }
        if ((t->name = copy_string(item->string)) == NULL) {
            status = dg__ck_fail(ck, DG_ERR_NOMEM, "out of memory");
            break;
        }
        ck->n_tensors++;
        if ((status = parse_entry(ck, item, t)) != DG_OK)
            break;
    }
    cJSON_Delete(root);
    uint64_t data_start = 8 + header_len;
    if (status == DG_OK)
        status = check_layout(ck, (uint64_t)size - data_start);
    if (status == DG_OK)
        for (int i = 0; i < ck->n_tensors; i++)
            ck->tensors[i].data = bytes + data_start + ck->tensors[i].begin;
    return status;
}

/* Drops the contents of a handle whose parse failed, keeping its status and message. */
static dg_checkpoint *finish_open(dg_checkpoint *ck)
{
    if (parse(ck) != DG_OK)
        clear_contents(ck);
    return ck;
}

dg_checkpoint *dg_checkpoint_open_memory(const void *bytes, size_t size, const char *label)
{
    dg_checkpoint *ck = handle_new(label);
    if (ck == NULL)
        return NULL;
    if (bytes == NULL && size > 0) {
        dg__ck_fail(ck, DG_ERR_INVALID_ARG, "bytes is NULL");
        return ck;
    }
    ck->buffer = dg__malloc(size > 0 ? size : 1);
    if (ck->buffer == NULL) {
        dg__ck_fail(ck, DG_ERR_NOMEM, "out of memory for %zu bytes", size);
        return ck;
    }
    if (size > 0)
        memcpy(ck->buffer, bytes, size);
    ck->size = size;
    return finish_open(ck);
}

dg_checkpoint *dg_checkpoint_open(const char *path)
{
    dg_checkpoint *ck = handle_new(path ? path : "(null)");
    if (ck == NULL)
        return NULL;
    if (path == NULL) {
        dg__ck_fail(ck, DG_ERR_INVALID_ARG, "path is NULL");
        return ck;
    }
    FILE *f = fopen(path, "rb");
    struct stat info;
    if (f == NULL || fstat(fileno(f), &info) != 0) {
        dg__ck_fail(ck, DG_ERR_IO, "cannot open: %s", strerror(errno));
        if (f)
            fclose(f);
        return ck;
    }
    if (!S_ISREG(info.st_mode) || (uint64_t)info.st_size > (uint64_t)SIZE_MAX) {
        dg__ck_fail(ck, DG_ERR_IO, "not a regular file of a readable size");
        fclose(f);
        return ck;
    }
    size_t size = (size_t)info.st_size;
    ck->buffer = dg__malloc(size > 0 ? size : 1);
    if (ck->buffer == NULL) {
        dg__ck_fail(ck, DG_ERR_NOMEM, "out of memory for the file's %zu bytes", size);
        fclose(f);
        return ck;
    }
    size_t got = fread(ck->buffer, 1, size, f);
    bool read_error = ferror(f);
    fclose(f);
    if (read_error) {
        dg__ck_fail(ck, DG_ERR_IO, "read error: %s", strerror(errno));
        return ck;
    }
    ck->size = got; /* a file that shrank meanwhile is judged by what was read */
    return finish_open(ck);
}

/* ---- Access ------------------------------------------------------------------------------- */

int dg_checkpoint_tensor_count(const dg_checkpoint *ck)
{
    return ck && ck->status == DG_OK ? ck->n_tensors : 0;
}

dg_status dg_checkpoint_tensor(const dg_checkpoint *ck, int index, dg_tensor_info *out)
{
    if (ck == NULL)
        return DG_ERR_NOMEM;
    if (ck->status != DG_OK)
        return ck->status;
    if (out == NULL || index < 0 || index >= ck->n_tensors)
        return DG_ERR_INVALID_ARG;
    const struct dg__st_tensor *t = &ck->tensors[index];
    memset(out, 0, sizeof *out);
    out->name = t->name;
    out->dtype = dg__st_dtype_name(t->dtype);
    out->ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++)
        out->shape[i] = t->shape[i];
    out->numel = t->numel;
    out->offset = t->begin;
    out->nbytes = t->end - t->begin;
    out->data = t->data;
    return DG_OK;
}

int dg_checkpoint_find(const dg_checkpoint *ck, const char *name)
{
    if (ck == NULL || name == NULL || ck->status != DG_OK)
        return -1;
    for (int i = 0; i < ck->n_tensors; i++)
        if (strcmp(ck->tensors[i].name, name) == 0)
            return i;
    return -1;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1fu,
             mantissa = h & 0x3ffu, bits;
    if (exponent == 0) { /* zero and subnormals: mantissa * 2^-24, exact in float */
        float v = ldexpf((float)mantissa, -24);
        return sign ? -v : v;
    }
    if (exponent == 31)
        bits = sign | 0x7f800000u | (mantissa << 13);
    else
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

bool dg__st_dtype_to_f32(int dtype) {
    return dtype == DG__ST_F32 || dtype == DG__ST_F16 || dtype == DG__ST_BF16 ||
           dtype == DG__ST_F64;
}

void dg__st_convert_f32(const struct dg__st_tensor *t, float *out)
{
    const unsigned char *p = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        switch (t->dtype) {
        case DG__ST_F32: {
            uint32_t bits = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                            (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
            memcpy(&out[i], &bits, sizeof bits);
            break;
        }
        case DG__ST_F16:
            out[i] = half_to_float((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
            break;
        case DG__ST_BF16: {
            uint32_t bits = (uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16;
            memcpy(&out[i], &bits, sizeof bits);
            break;
        }
        case DG__ST_F64: {
            uint64_t bits = load_le64(p + 8 * i);
            double v;
            memcpy(&v, &bits, sizeof v);
            out[i] = (float)v;
            break;
        }
        default:
            out[i] = NAN;
        }
    }
}

dg_status dg_checkpoint_read_f32(dg_checkpoint *ck, int index, float *out, int64_t count)
{
    if (ck == NULL)
        return DG_ERR_NOMEM;
    if (ck->status != DG_OK)
        return ck->status;
    if (index < 0 || index >= ck->n_tensors || (out == NULL && count > 0))
        return dg__ck_fail(ck, DG_ERR_INVALID_ARG, "read_f32: tensor index %d out of range or "
                           "NULL output", index);
    const struct dg__st_tensor *t = &ck->tensors[index];
    if (count != t->numel)
        return dg__ck_fail(ck, DG_ERR_SHAPE, "tensor '%s': holds %lld values, the caller asked "
                           "for %lld", t->name, (long long)t->numel, (long long)count);
    if (!dg__st_dtype_to_f32(t->dtype))
        return dg__ck_fail(ck, DG_ERR_DTYPE, "tensor '%s': dtype %s does not convert to "
                           "float32 (F32, F16, BF16 and F64 do)", t->name,
                           dg__st_dtype_name(t->dtype));
    dg__st_convert_f32(t, out);
    return DG_OK;
}

uint32_t dg_crc32(const void *bytes, size_t n)
{
    /* The byte table is rebuilt per call (2048 steps): no shared state between threads. */
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    const unsigned char *p = bytes;
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}

uint32_t dg_checkpoint_crc32(const dg_checkpoint *ck, int index)
{
    if (ck == NULL || ck->status != DG_OK || index < 0 || index >= ck->n_tensors ||
        ck->tensors[index].transpose || ck->tensors[index].data == NULL)
        return 0;
    const struct dg__st_tensor *t = &ck->tensors[index];
    return dg_crc32(t->data, (size_t)t->numel * dg__st_dtype_size(t->dtype));
}

int dg_checkpoint_metadata_count(const dg_checkpoint *ck)
{
    return ck && ck->status == DG_OK ? ck->n_meta : 0;
}

const char *dg_checkpoint_metadata_key(const dg_checkpoint *ck, int index)
{
    return index >= 0 && index < dg_checkpoint_metadata_count(ck) ? ck->meta[index].key : NULL;
}

const char *dg_checkpoint_metadata_value(const dg_checkpoint *ck, int index)
{
    return index >= 0 && index < dg_checkpoint_metadata_count(ck) ? ck->meta[index].value
                                                                   : NULL;
}

const char *dg_checkpoint_metadata(const dg_checkpoint *ck, const char *key)
{
    if (ck == NULL || key == NULL || ck->status != DG_OK)
        return NULL;
    int i = find_meta(ck, key);
    return i >= 0 ? ck->meta[i].value : NULL;
}

/* ---- Building ----------------------------------------------------------------------------- */

dg_status dg_checkpoint_add_f32(dg_checkpoint *ck, const char *name, int ndim,
                                const int64_t *shape, const float *data, bool transpose)
{
    if (ck == NULL)
        return DG_ERR_NOMEM;
    if (ck->status != DG_OK)
        return ck->status;
    if (name == NULL || name[0] == '\0' || strcmp(name, METADATA_KEY) == 0)
        return dg__ck_fail(ck, DG_ERR_INVALID_ARG, "add: tensor name '%s' is not allowed",
                           name ? name : "(null)");
    if (ndim < 0 || ndim > DG_MAX_DIMS || (ndim > 0 && shape == NULL))
        return dg__ck_fail(ck, DG_ERR_INVALID_ARG, "add: tensor '%s': %d dimensions (0 .. %d "
                           "with a shape)", name, ndim, DG_MAX_DIMS);
    if (transpose && ndim != 2)
        return dg__ck_fail(ck, DG_ERR_INVALID_ARG, "add: tensor '%s': only 2-D tensors "
                           "transpose", name);
    if (dg_checkpoint_find(ck, name) >= 0)
        return dg__ck_fail(ck, DG_ERR_INVALID_ARG, "add: tensor '%s' is already present",
                           name);
    struct dg__st_tensor t = {.dtype = DG__ST_F32, .ndim = ndim, .numel = 1,
                              .transpose = transpose};
    for (int i = 0; i < ndim; i++) {
        int64_t size = shape[transpose ? 1 - i : i];
        if (size < 0 || __builtin_mul_overflow(t.numel, size, &t.numel) ||
            t.numel > ((int64_t)1 << 60))
            return dg__ck_fail(ck, DG_ERR_INVALID_ARG, "add: tensor '%s': bad shape", name);
        t.shape[i] = size;
    }
    if (data == NULL && t.numel > 0)
        return dg__ck_fail(ck, DG_ERR_INVALID_ARG, "add: tensor '%s': data is NULL", name);
    t.data = data;
    /* The byte range the tensor will have in the saved file (tensors are written in order). */
    t.begin = ck->n_tensors > 0 ? ck->tensors[ck->n_tensors - 1].end : 0;
    t.end = t.begin + (uint64_t)t.numel * sizeof(float);
    if (!reserve_tensors(ck, 1) || (t.name = copy_string(name)) == NULL)
        return dg__ck_fail(ck, DG_ERR_NOMEM, "out of memory");
    ck->tensors[ck->n_tensors++] = t;
    return DG_OK;
}

dg_status dg_checkpoint_set_metadata(dg_checkpoint *ck, const char *key, const char *value)
{
    if (ck == NULL)
        return DG_ERR_NOMEM;
    if (ck->status != DG_OK)
        return ck->status;
    if (key == NULL || value == NULL)
        return dg__ck_fail(ck, DG_ERR_INVALID_ARG, "set_metadata: NULL key or value");
    int i = find_meta(ck, key);
    if (i >= 0) {
        char *copy = copy_string(value);
        if (copy == NULL)
            return dg__ck_fail(ck, DG_ERR_NOMEM, "out of memory");
        dg__free(ck->meta[i].value);
        ck->meta[i].value = copy;
        return DG_OK;
    }
    return append_meta(ck, key, value) ? DG_OK : dg__ck_fail(ck, DG_ERR_NOMEM, "out of memory");
}
