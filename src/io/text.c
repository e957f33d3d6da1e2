/*
 * Plain text corpora with a character vocabulary: UTF-8 decoded to code points, the distinct
 * code points sorted ascending as the vocabulary, the text as int32 ids; windows of ids as
 * [B, T] inputs and next-character targets. Errors are reported like the IDX loader's: a
 * status returned and kept in the struct with a message starting "text: ".
 */
#include "dagrad.h"
#include "alloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Corpora up to 2^31 - 1 code points (ids and counts fit int32 windows). */
#define DG_TEXT_MAX_BYTES ((int64_t)INT32_MAX)

__attribute__((format(printf, 3, 4))) static dg_status report(dg_text *t, dg_status status,
                                                              const char *fmt, ...)
{
    if (t == NULL)
        return status;
    t->status = status;
    int used = snprintf(t->error, sizeof t->error, "text: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->error + used, sizeof t->error - (size_t)used, fmt, ap);
    va_end(ap);
    return status;
}

dg_status dg_text_status(const dg_text *t) { return t ? t->status : DG_ERR_INVALID_ARG; }
const char *dg_text_error(const dg_text *t) { return t ? t->error : "text: NULL corpus"; }

void dg_text_free(dg_text *t)
{
    if (t == NULL)
        return;
    dg__free(t->tokens);
    dg__free(t->vocab);
    memset(t, 0, sizeof *t);
}

/* Decodes one UTF-8 sequence at s[0 .. n) into *cp; returns its length, 0 when invalid
 * (overlong forms, surrogates and values above U+10FFFF included). */
static int utf8_decode(const unsigned char *s, int64_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || n < len)
        return 0;
    uint32_t v = c & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min_of_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min_of_len[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

int dg_text_encode_char(uint32_t code_point, char out[5])
{
    int n;
    if (code_point < 0x80) {
        out[0] = (char)code_point;
        n = 1;
    } else if (code_point < 0x800) {
        out[0] = (char)(0xC0 | (code_point >> 6));
        out[1] = (char)(0x80 | (code_point & 0x3F));
        n = 2;
    } else if (code_point < 0x10000) {
        out[0] = (char)(0xE0 | (code_point >> 12));
        out[1] = (char)(0x80 | ((code_point >> 6) & 0x3F));
        out[2] = (char)(0x80 | (code_point & 0x3F));
        n = 3;
    } else if (code_point <= 0x10FFFF) {
        out[0] = (char)(0xF0 | (code_point >> 18));
        out[1] = (char)(0x80 | ((code_point >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((code_point >> 6) & 0x3F));
        out[3] = (char)(0x80 | (code_point & 0x3F));
        n = 4;
    } else {
        n = 0;
    }
    out[n] = '\0';
    return n;
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int32_t dg_text_id(const dg_text *t, uint32_t code_point)
{
    if (t == NULL || t->vocab == NULL)
        return -1;
    const uint32_t *hit = bsearch(&code_point, t->vocab, (size_t)t->vocab_size,
                                  sizeof *t->vocab, compare_u32);
    return hit ? (int32_t)(hit - t->vocab) : -1;
}

dg_status dg_text_from_utf8(const char *data, int64_t n_bytes, dg_text *out)
{
    if (out == NULL)
        return DG_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    if (data == NULL || n_bytes < 0)
        return report(out, DG_ERR_INVALID_ARG, "NULL text or negative length %lld",
                      (long long)n_bytes);
    if (n_bytes > DG_TEXT_MAX_BYTES)
        return report(out, DG_ERR_INVALID_ARG, "%lld bytes: at most %lld", (long long)n_bytes,
                      (long long)DG_TEXT_MAX_BYTES);
    const unsigned char *s = (const unsigned char *)data;
    uint32_t *points = dg__malloc((size_t)(n_bytes > 0 ? n_bytes : 1) * sizeof *points);
    if (points == NULL)
        return report(out, DG_ERR_NOMEM, "out of memory for %lld characters",
                      (long long)n_bytes);
    int64_t n = 0;
    for (int64_t i = 0; i < n_bytes;) {
        int len = utf8_decode(s + i, n_bytes - i, &points[n]);
        if (len == 0) {
            dg__free(points);
            return report(out, DG_ERR_FORMAT, "invalid UTF-8 at byte %lld (0x%02x)",
                          (long long)i, s[i]);
        }
        i += len;
        n++;
    }
    /* The vocabulary: distinct code points, ascending. */
    uint32_t *sorted = dg__malloc((size_t)(n > 0 ? n : 1) * sizeof *sorted);
    int32_t *tokens = dg__malloc((size_t)(n > 0 ? n : 1) * sizeof *tokens);
    if (sorted == NULL || tokens == NULL) {
        dg__free(points);
        dg__free(sorted);
        dg__free(tokens);
        return report(out, DG_ERR_NOMEM, "out of memory for %lld characters", (long long)n);
    }
    memcpy(sorted, points, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, compare_u32);
    int64_t v = 0;
    for (int64_t i = 0; i < n; i++)
        if (v == 0 || sorted[v - 1] != sorted[i])
            sorted[v++] = sorted[i];
    uint32_t *vocab = dg__realloc(sorted, (size_t)(v > 0 ? v : 1) * sizeof *vocab);
    if (vocab == NULL)
        vocab = sorted; /* shrinking failed: keep the larger block */
    out->vocab = vocab;
    out->vocab_size = (int32_t)v;
    for (int64_t i = 0; i < n; i++)
        tokens[i] = dg_text_id(out, points[i]);
    dg__free(points);
    out->tokens = tokens;
    out->n_tokens = n;
    out->status = DG_OK;
    return DG_OK;
}

dg_status dg_text_load(const char *path, dg_text *out)
{
    if (out == NULL)
        return DG_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    if (path == NULL)
        return report(out, DG_ERR_INVALID_ARG, "NULL path");
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return report(out, DG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    int64_t len = 0, cap = 0;
    dg_status st = DG_OK;
    for (;;) {
        if (len == cap) {
            int64_t grown = cap ? 2 * cap : 1 << 16;
            if (cap > DG_TEXT_MAX_BYTES) {
                st = report(out, DG_ERR_INVALID_ARG, "%s: larger than %lld bytes", path,
                            (long long)DG_TEXT_MAX_BYTES);
                break;
            }
            char *bigger = dg__realloc(buf, (size_t)grown);
            if (bigger == NULL) {
                st = report(out, DG_ERR_NOMEM, "%s: out of memory after %lld bytes", path,
                            (long long)len);
                break;
            }
            buf = bigger;
            cap = grown;
        }
        size_t got = fread(buf + len, 1, (size_t)(cap - len), f);
        len += (int64_t)got;
        if (got == 0) {
            if (ferror(f))
                st = report(out, DG_ERR_IO, "%s: read error: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (st == DG_OK) {
        st = dg_text_from_utf8(buf ? buf : "", len, out);
        if (st != DG_OK) { /* name the file in the message */
            char message[sizeof out->error];
            snprintf(message, sizeof message, "%s", out->error + strlen("text: "));
            report(out, st, "%s: %s", path, message);
        }
    }
    dg__free(buf);
    return st;
}

int64_t dg_text_decode(const dg_text *t, const int32_t *ids, int64_t n, char *out, size_t cap)
{
    if (t == NULL || (ids == NULL && n > 0) || out == NULL || cap == 0)
        return -1;
    size_t used = 0;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->vocab_size)
            return -1;
        char bytes[5];
        int k = dg_text_encode_char(t->vocab[ids[i]], bytes);
        if (used + (size_t)k >= cap)
            break;
        memcpy(out + used, bytes, (size_t)k);
        used += (size_t)k;
    }
    out[used] = '\0';
    return (int64_t)used;
}

int64_t dg_text_encode(const dg_text *t, const char *utf8, int32_t *ids, int64_t max)
{
    if (t == NULL || utf8 == NULL || (ids == NULL && max > 0))
        return -1;
    const unsigned char *s = (const unsigned char *)utf8;
    int64_t n_bytes = (int64_t)strlen(utf8), count = 0;
    for (int64_t i = 0; i < n_bytes;) {
        uint32_t cp;
        int len = utf8_decode(s + i, n_bytes - i, &cp);
        int32_t id = len ? dg_text_id(t, cp) : -1;
        if (id < 0)
            return -1;
        if (count < max)
            ids[count] = id;
        count++;
        i += len;
    }
    return count;
}

int64_t dg_text_split(const dg_text *t, double val_fraction)
{
    if (t == NULL || !(val_fraction >= 0.0 && val_fraction <= 1.0))
        return -1;
    return t->n_tokens - (int64_t)((double)t->n_tokens * val_fraction);
}

dg_status dg_text_windows(const dg_text *t, int64_t lo, int64_t hi, int64_t batch, int64_t len,
                          dg_rng *rng, int32_t *x, int32_t *y)
{
    if (t == NULL || t->tokens == NULL || x == NULL || y == NULL || batch <= 0 || len <= 0)
        return DG_ERR_INVALID_ARG;
    if (lo < 0 || hi > t->n_tokens || hi - lo < len + 1)
        return DG_ERR_INVALID_ARG;
    int64_t starts = hi - lo - len; /* valid starts: lo .. hi - len - 1 */
    if (rng == NULL && batch > (hi - lo - 1) / len)
        return DG_ERR_INVALID_ARG; /* consecutive windows must fit */
    for (int64_t b = 0; b < batch; b++) {
        int64_t s = rng ? lo + (int64_t)dg_rng_below(rng, (uint64_t)starts) : lo + b * len;
        memcpy(x + b * len, t->tokens + s, (size_t)len * sizeof *x);
        memcpy(y + b * len, t->tokens + s + 1, (size_t)len * sizeof *y);
    }
    return DG_OK;
}
