/*
 * Writing a dg_checkpoint: the JSON header written by hand (integers printed as integers,
 * names escaped), padded with spaces to a multiple of 8 bytes so that the data is aligned,
 * then the data; all through a temporary file that is synced and renamed over the target.
 */
#include "dagrad.h"
#include "alloc.h"
#include "safetensors_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A growing string; `failed` once an allocation failed. */
struct text {
    char *s;
    size_t len, cap;
    bool failed;
};

static void text_grow(struct text *t, size_t extra)
{
    if (t->failed || t->len + extra + 1 <= t->cap)
        return;
    size_t cap = t->cap ? t->cap : 1024;
    while (cap < t->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            t->failed = true;
            return;
        }
        cap *= 2;
    }
    char *grown = dg__realloc(t->s, cap);
    if (grown == NULL) {
        t->failed = true;
        return;
    }
    t->s = grown;
    t->cap = cap;
}

static void text_add(struct text *t, const char *s, size_t n)
{
    text_grow(t, n);
    if (t->failed)
        return;
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void text_printf(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void text_printf(struct text *t, const char *fmt, ...)
{
    char buf[128];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, args);
    va_end(args);
    if (n < 0 || (size_t)n >= sizeof buf)
        t->failed = true;
    else
        text_add(t, buf, (size_t)n);
}

/* A JSON string literal: quotes, backslashes and control characters escaped; other bytes
 * (UTF-8) as they are. */
static void text_json_string(struct text *t, const char *s)
{
    text_add(t, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            text_add(t, esc, 2);
        } else if (*p < 0x20) {
            text_printf(t, "\\u%04x", *p);
        } else {
            text_add(t, (const char *)p, 1);
        }
    }
    text_add(t, "\"", 1);
}

/* The header, with each tensor's range assigned in order, padded to a multiple of 8. */
static bool build_header(const dg_checkpoint *ck, struct text *t)
{
    text_add(t, "{", 1);
    if (ck->n_meta > 0) {
        text_add(t, "\"__metadata__\":{", 16);
        for (int i = 0; i < ck->n_meta; i++) {
            if (i)
                text_add(t, ",", 1);
            text_json_string(t, ck->meta[i].key);
            text_add(t, ":", 1);
            text_json_string(t, ck->meta[i].value);
        }
        text_add(t, "}", 1);
    }
    uint64_t offset = 0;
    for (int i = 0; i < ck->n_tensors; i++) {
        const struct dg__st_tensor *x = &ck->tensors[i];
        uint64_t bytes = (uint64_t)x->numel * dg__st_dtype_size(x->dtype);
        if (i || ck->n_meta > 0)
            text_add(t, ",", 1);
        text_json_string(t, x->name);
        text_printf(t, ":{\"dtype\":\"%s\",\"shape\":[", dg__st_dtype_name(x->dtype));
        for (int d = 0; d < x->ndim; d++)
            text_printf(t, d ? ",%lld" : "%lld", (long long)x->shape[d]);
        text_printf(t, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                    (unsigned long long)(offset + bytes));
        offset += bytes;
    }
    text_add(t, "}", 1);
    while (!t->failed && (8 + t->len) % 8 != 0)
        text_add(t, " ", 1);
    return !t->failed;
}

static bool write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t done = write(fd, p, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n);
        if (done < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        p += done;
        n -= (size_t)done;
    }
    return true;
}

/* Writes one tensor's bytes, little-endian; an added transposed array element by element. */
static bool write_tensor(int fd, const struct dg__st_tensor *x)
{
    size_t bytes = (size_t)x->numel * dg__st_dtype_size(x->dtype);
    bool little = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
    if (!x->transpose && (little || x->dtype != DG__ST_F32))
        return write_all(fd, x->data, bytes);
    enum { CHUNK = 4096 };
    unsigned char buf[4 * CHUNK];
    const float *src = x->data;
    int64_t rows = x->shape[0], cols = x->ndim == 2 ? x->shape[1] : x->numel;
    size_t used = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        /* Element i of the file: row r, column c of the file's [rows, cols] layout. */
        int64_t source = x->transpose ? (i % cols) * rows + i / cols : i;
        uint32_t bits;
        memcpy(&bits, &src[source], sizeof bits);
        for (int k = 0; k < 4; k++)
            buf[used++] = (unsigned char)(bits >> (8 * k));
        if (used == sizeof buf) {
            if (!write_all(fd, buf, used))
                return false;
            used = 0;
        }
    }
    return write_all(fd, buf, used);
}

/* The directory part of `path` ("." when none) into a new string. */
static char *directory_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 1 : (slash == path ? 1 : (size_t)(slash - path));
    char *dir = dg__malloc(n + 1);
    if (dir == NULL)
        return NULL;
    if (slash == NULL)
        memcpy(dir, ".", 2);
    else {
        memcpy(dir, slash == path ? "/" : path, n);
        dir[n] = '\0';
    }
    return dir;
}

dg_status dg_checkpoint_save(dg_checkpoint *ck, const char *path)
{
    if (ck == NULL)
        return DG_ERR_NOMEM;
    if (ck->status != DG_OK)
        return ck->status;
    if (path == NULL || path[0] == '\0')
        return dg__ck_fail(ck, DG_ERR_INVALID_ARG, "save: path is NULL or empty");
    struct text header = {0};
    size_t tmp_len = strlen(path) + 16;
    char *tmp = dg__malloc(tmp_len);
    char *dir = directory_of(path);
    if (!build_header(ck, &header) || tmp == NULL || dir == NULL) {
        dg__free(header.s);
        dg__free(tmp);
        dg__free(dir);
        return dg__ck_fail(ck, DG_ERR_NOMEM, "save: out of memory");
    }
    snprintf(tmp, tmp_len, "%s.tmp.XXXXXX", path);
    dg_status status = DG_OK;
    const char *failed_step = NULL;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        failed_step = "creating a temporary file";
    } else {
        /* mkstemp makes the file 0600: give it the mode of the file it replaces, else 0644. */
        struct stat old;
        fchmod(fd, stat(path, &old) == 0 ? (old.st_mode & 07777) : 0644);
        unsigned char length[8];
        for (int i = 0; i < 8; i++)
            length[i] = (unsigned char)((uint64_t)header.len >> (8 * i));
        bool ok = write_all(fd, length, 8) && write_all(fd, header.s, header.len);
        for (int i = 0; ok && i < ck->n_tensors; i++)
            ok = write_tensor(fd, &ck->tensors[i]);
        if (!ok)
            failed_step = "writing";
        else if (fsync(fd) != 0)
            failed_step = "syncing";
        int saved = errno;
        if (close(fd) != 0 && failed_step == NULL)
            failed_step = "closing";
        else
            errno = saved;
        if (failed_step == NULL && rename(tmp, path) != 0)
            failed_step = "renaming the temporary file over it";
        if (failed_step != NULL) {
            saved = errno;
            unlink(tmp);
            errno = saved;
        }
    }
    if (failed_step != NULL) {
        status = dg__ck_fail(ck, DG_ERR_IO, "save to '%s' failed while %s: %s", path,
                             failed_step, strerror(errno));
    } else {
        /* The rename is durable once the directory is synced. A directory that cannot be
         * opened for syncing (some file systems) leaves the file written but not yet durable:
         * not reported as a failure. */
        int dfd = open(dir, O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    dg__free(header.s);
    dg__free(tmp);
    dg__free(dir);
    return status;
}
