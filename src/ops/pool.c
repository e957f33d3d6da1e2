/*
 * 2-D pooling over NCHW tensors, with PyTorch's windows and output sizes.
 *
 *   op                         inputs     output
 *   max_pool2d                 x          y[o] = max of x over window(o) (-inf padding)
 *   max_pool2d_grad            x, dy      dx: dy[o] added at argmax(o), zero elsewhere
 *   max_pool2d_gather          x, g       out[o] = g[argmax(o)]
 *   avg_pool2d                 x          y[o] = sum of x over window(o) / divisor(o)
 *   avg_pool2d_grad            dy, like   dx: dy[o] / divisor(o) added over window(o)
 *   adaptive_avg_pool2d        x          mean over PyTorch's adaptive bins
 *   adaptive_avg_pool2d_grad   dy, like   its adjoint
 *
 * Windows along an axis of size H (kernel k, stride s, padding p, dilation d):
 *   max: rows o*s - p + i*d, i < k, that fall inside [0, H);
 *   avg: rows [o*s - p, min(o*s - p + k, H + p)) clipped to [0, H); the divisor is the
 *        unclipped window's area when count_include_pad, the clipped one's otherwise;
 *   adaptive (out size O): rows [floor(o*H/O), ceil((o+1)*H/O)), divisor its area.
 * Output size: floor((H + 2p - d(k-1) - 1) / s) + 1, or ceil when ceil_mode, minus one when
 * the last window would start inside the right padding (PyTorch's rule).
 *
 * argmax(o): the first maximum in row-major window order, a NaN replacing the current maximum
 * (so the last NaN wins, and a NaN propagates), starting from the window's first element with
 * -inf as the running maximum: PyTorch's CPU kernel exactly, ties included.
 *
 * Gradients (recomputation policy: max pooling keeps no index tensor; its backward ops read x
 * and find each argmax again):
 *   max_pool2d:        dx = max_pool2d_grad(x, g)
 *   max_pool2d_grad:   d dy = max_pool2d_gather(x, g); x gets none (argmax is piecewise
 *                      constant in x)
 *   max_pool2d_gather: d g = max_pool2d_grad(x, G); x gets none
 *   avg_pool2d:        dx = avg_pool2d_grad(g, like x), and avg_pool2d_grad's is avg_pool2d
 *   adaptive likewise.
 * Every output element is computed by one thread from its own plane in a fixed order, so the
 * results are the same for any thread count.
 */
#include "pool.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum pool_variant {
    POOL_MAX, POOL_MAX_GRAD, POOL_MAX_GATHER, POOL_AVG, POOL_AVG_GRAD, POOL_ADAPTIVE,
    POOL_ADAPTIVE_GRAD
};

static inline const struct dg__pool_attrs *pool_attrs(const void *attrs) { return attrs; }

static bool is_max(int variant)
{
    return variant == POOL_MAX || variant == POOL_MAX_GRAD || variant == POOL_MAX_GATHER;
}
static bool is_adaptive(int variant)
{
    return variant == POOL_ADAPTIVE || variant == POOL_ADAPTIVE_GRAD;
}

/* PyTorch's pooling_output_shape. */
static int64_t pooled_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil)
{
    int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0);
    int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
    if (ceil && (out - 1) * s >= in + p)
        out--;
    return out;
}

/* The pooled shape of a 4-D input. */
static dg_status pool_shape(const struct dg_op_def *def, const struct dg__pool_attrs *a, int variant,
                            const struct dg_shape *x, struct dg_shape *out, char *msg,
                            size_t len)
{
    char sx[128];
    dg__shape_str(x, sx, sizeof sx);
    if (x->dtype != DG_F32 || x->ndim != 4)
        return dg__shape_error(msg, len, x->dtype != DG_F32 ? DG_ERR_DTYPE : DG_ERR_SHAPE,
                               "%s: input must be float32 [N, C, H, W], got %s%s", def->name,
                               x->dtype == DG_F32 ? "" : "int32 ", sx);
    *out = *x;
    if (is_adaptive(variant)) {
        if (a->out_size[0] < 1 || a->out_size[1] < 1)
            return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "%s: output size %lldx%lld "
                                   "must be positive (input %s)", def->name,
                                   (long long)a->out_size[0], (long long)a->out_size[1], sx);
        out->dim[2] = a->out_size[0];
        out->dim[3] = a->out_size[1];
        return DG_OK;
    }
    for (int i = 0; i < 2; i++) {
        int64_t k = a->kernel[i], s = a->stride[i], p = a->padding[i];
        int64_t d = is_max(variant) ? a->dilation[i] : 1;
        if (k < 1 || s < 1 || d < 1 || p < 0)
            return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "%s: kernel %lldx%lld, stride "
                                   "%lldx%lld and dilation must be positive, padding not "
                                   "negative (input %s)", def->name, (long long)a->kernel[0],
                                   (long long)a->kernel[1], (long long)a->stride[0],
                                   (long long)a->stride[1], sx);
        if (p > k / 2)
            return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "%s: padding %lldx%lld must be "
                                   "at most half the kernel %lldx%lld (input %s)", def->name,
                                   (long long)a->padding[0], (long long)a->padding[1],
                                   (long long)a->kernel[0], (long long)a->kernel[1], sx);
        int64_t o = pooled_size(x->dim[2 + i], k, s, p, d, a->ceil_mode != 0);
        if (o < 1)
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: kernel %lldx%lld (dilation "
                                   "%lldx%lld) is larger than the padded input %s (padding "
                                   "%lldx%lld)", def->name, (long long)a->kernel[0],
                                   (long long)a->kernel[1],
                                   (long long)(is_max(variant) ? a->dilation[0] : 1),
                                   (long long)(is_max(variant) ? a->dilation[1] : 1), sx,
                                   (long long)a->padding[0], (long long)a->padding[1]);
        out->dim[2 + i] = o;
    }
    return DG_OK;
}

static dg_status pool_infer(const struct dg_op_def *def, const void *attrs, int n_inputs,
                            const struct dg_shape *in, struct dg_shape *out, char *msg,
                            size_t len)
{
    const struct dg__pool_attrs *a = pool_attrs(attrs);
    char s0[128], s1[128];
    struct dg_shape pooled;
    dg_status st;
    switch ((enum pool_variant)def->variant) {
    case POOL_MAX:
    case POOL_AVG:
    case POOL_ADAPTIVE:
        return pool_shape(def, a, def->variant, &in[0], out, msg, len);
    case POOL_MAX_GRAD:
    case POOL_MAX_GATHER:
    case POOL_AVG_GRAD:
    case POOL_ADAPTIVE_GRAD: {
        /* the pooled input: x (max) or like (avg, input 1); the other is dy or g */
        int x_at = is_max(def->variant) ? 0 : 1, other = 1 - x_at;
        if ((st = pool_shape(def, a, def->variant, &in[x_at], &pooled, msg, len)) != DG_OK)
            return st;
        const struct dg_shape *want = def->variant == POOL_MAX_GATHER ? &in[x_at] : &pooled;
        bool same = in[other].dtype == DG_F32 && in[other].ndim == 4;
        for (int i = 0; same && i < 4; i++)
            same = in[other].dim[i] == want->dim[i];
        if (!same)
            return dg__shape_error(msg, len, DG_ERR_SHAPE, "%s: gradient %s does not match "
                                   "input %s", def->name,
                                   dg__shape_str(&in[other], s0, sizeof s0),
                                   dg__shape_str(&in[x_at], s1, sizeof s1));
        *out = def->variant == POOL_MAX_GATHER ? pooled : in[x_at];
        return DG_OK;
    }
    }
    return dg__shape_error(msg, len, DG_ERR_INVALID_ARG, "%s: unknown variant", def->name);
}

/* ---- Windows ---------------------------------------------------------------------------- */

/* Geometry of one axis of a pooling. */
struct axis {
    int64_t in, out, k, s, p, d;
    bool include_pad;
};

/* The clipped window [*lo, *hi) of an average/adaptive pooling along an axis, and the
 * divisor's factor for this axis. */
static void avg_window(const struct axis *ax, bool adaptive, int64_t o, int64_t *lo, int64_t *hi,
                       int64_t *factor)
{
    if (adaptive) {
        *lo = o * ax->in / ax->out;
        *hi = ((o + 1) * ax->in + ax->out - 1) / ax->out;
        *factor = *hi - *lo;
        return;
    }
    int64_t start = o * ax->s - ax->p;
    int64_t end = start + ax->k < ax->in + ax->p ? start + ax->k : ax->in + ax->p;
    int64_t pool = end - start;
    *lo = start > 0 ? start : 0;
    *hi = end < ax->in ? end : ax->in;
    *factor = ax->include_pad ? pool : *hi - *lo;
}

/* The flat index in its plane of the maximum of window (oh, ow), PyTorch's rule. The update
 * is written as selects, not branches: on real data which element wins is unpredictable. */
static inline int64_t argmax(const float *plane, const struct axis *ah, const struct axis *aw,
                             int64_t oh, int64_t ow, float *value)
{
    int64_t h0 = oh * ah->s - ah->p, w0 = ow * aw->s - aw->p;
    int64_t h_end = h0 + (ah->k - 1) * ah->d + 1, w_end = w0 + (aw->k - 1) * aw->d + 1;
    if (h_end > ah->in)
        h_end = ah->in;
    if (w_end > aw->in)
        w_end = aw->in;
    if (h0 < 0)
        h0 += (-h0 + ah->d - 1) / ah->d * ah->d;
    if (w0 < 0)
        w0 += (-w0 + aw->d - 1) / aw->d * aw->d;
    int64_t best = h0 * aw->in + w0;
    float best_value = -INFINITY;
    for (int64_t h = h0; h < h_end; h += ah->d) {
        const int64_t row = h * aw->in;
        for (int64_t w = w0; w < w_end; w += aw->d) {
            float v = plane[row + w];
            bool take = (v > best_value) | (v != v);
            best_value = take ? v : best_value;
            best = take ? row + w : best;
        }
    }
    *value = best_value;
    return best;
}

/* A key whose integer order is the float order of the values, with -0 == +0 and every NaN
 * above everything (INT32_MAX): comparing keys needs no branch on NaN. */
static inline int32_t order_key(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    int32_t magnitude = (int32_t)(bits & 0x7fffffffu);
    int32_t sign = -(int32_t)(bits >> 31);                 /* all ones when negative */
    int32_t key = (magnitude ^ sign) - sign;               /* -magnitude when negative */
    int32_t nan = -(int32_t)(magnitude > 0x7f800000);      /* all ones for a NaN */
    return (key & ~nan) | (INT32_MAX & nan);
}

/* Columns per block of argmax_row. */
enum { ROW_BLOCK = 128 };

/* argmax (and the maximum) of windows (oh, ow0 .. ow0 + n - 1), n <= ROW_BLOCK. Windows that
 * lie inside the image horizontally are done together, window element by window element
 * across the columns (the same visiting order inside each window as argmax, so the same
 * result, but without a loop-carried dependence from one window to the next); the others
 * through argmax. */
static void argmax_row(const float *plane, const struct axis *ah, const struct axis *aw,
                       int64_t oh, int64_t ow0, int64_t n, float *val, int64_t *idx)
{
    const int64_t s = aw->s, span = (aw->k - 1) * aw->d + 1;
    /* interior: ow*s - p >= 0 and ow*s - p + span <= in */
    int64_t lo = aw->p > 0 ? (aw->p + s - 1) / s : 0;
    int64_t hi = aw->in + aw->p - span >= 0 ? (aw->in + aw->p - span) / s + 1 : 0;
    int64_t i0 = lo - ow0, i1 = hi - ow0;
    i0 = i0 < 0 ? 0 : i0 > n ? n : i0;
    i1 = i1 < i0 ? i0 : i1 > n ? n : i1;
    for (int64_t j = 0; j < i0; j++)
        idx[j] = argmax(plane, ah, aw, oh, ow0 + j, &val[j]);
    for (int64_t j = i1; j < n; j++)
        idx[j] = argmax(plane, ah, aw, oh, ow0 + j, &val[j]);
    if (i1 <= i0)
        return;
    int64_t top = oh * ah->s - ah->p;
    if (ah->k == 2 && ah->d == 1 && aw->k == 2 && aw->d == 1 && top >= 0 && top + 1 < ah->in) {
        /* 2x2 windows inside the image (the common layer): four keys per window, compared
         * in window order with integer selects */
        const float *r0 = plane + top * aw->in, *r1 = r0 + aw->in;
#pragma omp simd
        for (int64_t j = i0; j < i1; j++) {
            int64_t at = (ow0 + j) * s - aw->p;
            const float v[4] = {r0[at], r0[at + 1], r1[at], r1[at + 1]};
            int32_t best = order_key(v[0]), which = 0;
            for (int32_t e = 1; e < 4; e++) {
                int32_t k = order_key(v[e]);
                int32_t take = -(int32_t)((k > best) | (k == INT32_MAX)); /* masks, no branch */
                best = (k & take) | (best & ~take);
                which = (e & take) | (which & ~take);
            }
            idx[j] = (top + (which >> 1)) * aw->in + at + (which & 1);
            val[j] = v[which];
        }
        return;
    }
    int64_t h0 = top, h_end = h0 + (ah->k - 1) * ah->d + 1;
    if (h_end > ah->in)
        h_end = ah->in;
    if (h0 < 0)
        h0 += (-h0 + ah->d - 1) / ah->d * ah->d;
    int32_t key[ROW_BLOCK];
    for (int64_t j = i0; j < i1; j++) {
        key[j] = order_key(-INFINITY);
        idx[j] = h0 * aw->in + (ow0 + j) * s - aw->p;
    }
    for (int64_t h = h0; h < h_end; h += ah->d) {
        const float *row = plane + h * aw->in;
        for (int64_t b = 0; b < aw->k; b++) {
            const int64_t offset = b * aw->d - aw->p;
#pragma omp simd
            for (int64_t j = i0; j < i1; j++) {
                int64_t at = (ow0 + j) * s + offset;
                int32_t k = order_key(row[at]);
                int32_t take = -(int32_t)((k > key[j]) | (k == INT32_MAX)); /* a mask */
                key[j] = (k & take) | (key[j] & ~take);
                idx[j] = ((h * aw->in + at) & (int64_t)take) | (idx[j] & ~(int64_t)take);
            }
        }
    }
    for (int64_t j = i0; j < i1; j++)
        val[j] = plane[idx[j]];
}

static void axes_of(const struct dg__pool_attrs *a, int variant, const struct dg_shape *x,
                    const struct dg_shape *y, struct axis *ah, struct axis *aw)
{
    struct axis *ax[2] = {ah, aw};
    for (int i = 0; i < 2; i++)
        *ax[i] = (struct axis){
            .in = x->dim[2 + i], .out = y->dim[2 + i], .k = a->kernel[i], .s = a->stride[i],
            .p = a->padding[i], .d = is_max(variant) ? a->dilation[i] : 1,
            .include_pad = a->count_include_pad != 0,
        };
}


/* ---- 2x2 windows with stride 2 ------------------------------------------------------------
 * The pooling of nearly every CNN: kernel 2x2, stride 2, no padding, dilation 1, every window
 * inside the image (floor mode, or ceil mode on even sizes). Windows tile the image without
 * overlap, so the gradient writes each input element exactly once (dy at the window's argmax,
 * 0 at its other three) and needs no zero-fill pass; only a last odd row or column, which no
 * window covers, is zeroed. The rule is the generic one: a window's four elements in row-major
 * order, each taken when greater than the running maximum or NaN. Written with float compares
 * and selects only, so that the compiler vectorises the loops over a row (the stride-2 reads
 * become shuffles). */

static bool is_tiled_2x2(const struct axis *ah, const struct axis *aw)
{
    return ah->k == 2 && aw->k == 2 && ah->s == 2 && aw->s == 2 && ah->p == 0 && aw->p == 0 &&
           ah->d == 1 && aw->d == 1 && 2 * ah->out <= ah->in && 2 * aw->out <= aw->in;
}

/* The take rule as a mask: all ones when v replaces the running maximum m (greater, or NaN).
 * The selects below work on the bits, which keeps the loops free of branches that the
 * compiler's jump threading would otherwise put back (and so vectorisable). */
static inline uint32_t float_bits(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}
static inline float bits_float(uint32_t u)
{
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}
static inline uint32_t take_mask(float v, float m) { return -(uint32_t)((v > m) | (v != v)); }
static inline float select_bits(uint32_t mask, float a, float b)
{
    return bits_float((float_bits(a) & mask) | (float_bits(b) & ~mask));
}

/* y[j] = the maximum of window j of rows r0, r1. */
static void max_2x2_row(const float *restrict r0, const float *restrict r1, int64_t n,
                        float *restrict y)
{
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        float a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1];
        float m = select_bits(take_mask(b, a), b, a);
        m = select_bits(take_mask(c, m), c, m);
        y[j] = select_bits(take_mask(d, m), d, m);
    }
}

/* dx rows d0, d1 (covered part, 2n columns): dy[j] at window j's argmax, 0 elsewhere. t1, t2,
 * t3 are the take masks of a window's elements 1, 2, 3 (element 0 starts as the maximum): the
 * argmax is element 3 when t3, else 2 when t2, else 1 when t1, else 0. (Written out in both
 * loops below: with a helper returning the masks through pointers GCC 12 does not vectorise
 * them.) */
static void max_grad_2x2_row(const float *restrict r0, const float *restrict r1,
                             const float *restrict dy, int64_t n, float *restrict d0,
                             float *restrict d1)
{
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        float a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1];
        uint32_t t1 = take_mask(b, a);
        float m = select_bits(t1, b, a);
        uint32_t t2 = take_mask(c, m);
        m = select_bits(t2, c, m);
        uint32_t t3 = take_mask(d, m);
        uint32_t g = float_bits(dy[j]);
        uint32_t rest = g & ~t3;            /* g unless element 3 won */
        uint32_t g2 = rest & t2;
        rest &= ~t2;
        d0[2 * j] = bits_float(rest & ~t1);
        d0[2 * j + 1] = bits_float(rest & t1);
        d1[2 * j] = bits_float(g2);
        d1[2 * j + 1] = bits_float(g & t3);
    }
}

/* out[j] = g at window j's argmax (g's rows q0, q1 match x's rows r0, r1). */
static void max_gather_2x2_row(const float *restrict r0, const float *restrict r1,
                               const float *restrict q0, const float *restrict q1, int64_t n,
                               float *restrict out)
{
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
        float a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1];
        uint32_t t1 = take_mask(b, a);
        float m = select_bits(t1, b, a);
        uint32_t t2 = take_mask(c, m);
        m = select_bits(t2, c, m);
        uint32_t t3 = take_mask(d, m);
        float v = select_bits(t1, q0[2 * j + 1], q0[2 * j]);
        v = select_bits(t2, q1[2 * j], v);
        out[j] = select_bits(t3, q1[2 * j + 1], v);
    }
}

/* One plane of a tiled 2x2 max pooling variant: x (and g for the gather) of in_h x in_w,
 * y (or dy) of out_h x out_w; dx of in_h x in_w for the gradient. */
static void max_2x2_plane(int variant, const struct axis *ah, const struct axis *aw,
                          const float *x, const float *other, float *out)
{
    const int64_t W = aw->in, Wo = aw->out;
    for (int64_t oh = 0; oh < ah->out; oh++) {
        const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
        if (variant == POOL_MAX) {
            max_2x2_row(r0, r1, Wo, out + oh * Wo);
        } else if (variant == POOL_MAX_GATHER) {
            const float *q0 = other + 2 * oh * W;
            max_gather_2x2_row(r0, r1, q0, q0 + W, Wo, out + oh * Wo);
        } else {
            float *d0 = out + 2 * oh * W, *d1 = d0 + W;
            max_grad_2x2_row(r0, r1, other + oh * Wo, Wo, d0, d1);
            for (int64_t w = 2 * Wo; w < W; w++)
                d0[w] = d1[w] = 0.0f;
        }
    }
    if (variant == POOL_MAX_GRAD && 2 * ah->out < ah->in)
        memset(out + 2 * ah->out * W, 0, (size_t)((ah->in - 2 * ah->out) * W) * sizeof *out);
}

static void pool_forward(const struct dg_op_def *def, const void *attrs, int n_inputs,
                         const struct dg_tensor *in, struct dg_tensor *out,
                         const struct dg_exec_ctx *ctx)
{
    const int variant = def->variant;
    /* x: the pooled (large) tensor; y: the pooled-shape tensor */
    const struct dg_shape *xs, *ys;
    switch ((enum pool_variant)variant) {
    case POOL_MAX: case POOL_AVG: case POOL_ADAPTIVE:
        xs = &in[0].shape; ys = &out->shape; break;
    case POOL_MAX_GRAD: xs = &in[0].shape; ys = &in[1].shape; break;
    case POOL_MAX_GATHER: xs = &in[0].shape; ys = &out->shape; break;
    default: xs = &out->shape; ys = &in[0].shape; break; /* avg/adaptive grad */
    }
    struct axis ah, aw;
    axes_of(pool_attrs(attrs), variant, xs, ys, &ah, &aw);
    const int64_t planes = xs->dim[0] * xs->dim[1];
    const int64_t x_plane = ah.in * aw.in, y_plane = ah.out * aw.out;
    const bool adaptive = is_adaptive(variant);
    const bool tiled = is_max(variant) && is_tiled_2x2(&ah, &aw);
    const int threads = dg__threads_for(ctx, planes * (x_plane + y_plane));
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t pl = 0; pl < planes; pl++) {
        switch ((enum pool_variant)variant) {
        case POOL_MAX:
        case POOL_MAX_GRAD:
        case POOL_MAX_GATHER: {
            const float *x = (const float *)in[0].data + pl * x_plane;
            if (tiled) {
                const float *other = (const float *)in[1].data +
                                     pl * (variant == POOL_MAX_GATHER ? x_plane : y_plane);
                max_2x2_plane(variant, &ah, &aw, x,
                              variant == POOL_MAX ? NULL : other,
                              (float *)out->data + pl * (variant == POOL_MAX_GRAD ? x_plane
                                                                                  : y_plane));
                break;
            }
            float val[ROW_BLOCK];
            int64_t idx[ROW_BLOCK];
            float *dx = NULL;
            if (variant == POOL_MAX_GRAD) {
                dx = (float *)out->data + pl * x_plane;
                memset(dx, 0, (size_t)x_plane * sizeof *dx);
            }
            for (int64_t oh = 0; oh < ah.out; oh++) {
                for (int64_t ow0 = 0; ow0 < aw.out; ow0 += ROW_BLOCK) {
                    int64_t n = aw.out - ow0 < ROW_BLOCK ? aw.out - ow0 : ROW_BLOCK;
                    int64_t at = pl * y_plane + oh * aw.out + ow0;
                    argmax_row(x, &ah, &aw, oh, ow0, n, val, idx);
                    if (variant == POOL_MAX) {
                        memcpy((float *)out->data + at, val, (size_t)n * sizeof *val);
                    } else if (variant == POOL_MAX_GRAD) {
                        const float *dy = (const float *)in[1].data + at;
                        for (int64_t j = 0; j < n; j++)
                            dx[idx[j]] += dy[j];
                    } else {
                        const float *gr = (const float *)in[1].data + pl * x_plane;
                        float *y = (float *)out->data + at;
                        for (int64_t j = 0; j < n; j++)
                            y[j] = gr[idx[j]];
                    }
                }
            }
            break;
        }
        case POOL_AVG:
        case POOL_ADAPTIVE: {
            const float *x = (const float *)in[0].data + pl * x_plane;
            float *y = (float *)out->data + pl * y_plane;
            for (int64_t oh = 0; oh < ah.out; oh++) {
                int64_t h0, h1, fh;
                avg_window(&ah, adaptive, oh, &h0, &h1, &fh);
                for (int64_t ow = 0; ow < aw.out; ow++) {
                    int64_t w0, w1, fw;
                    avg_window(&aw, adaptive, ow, &w0, &w1, &fw);
                    float sum = 0.0f;
                    for (int64_t h = h0; h < h1; h++)
                        for (int64_t w = w0; w < w1; w++)
                            sum += x[h * aw.in + w];
                    y[oh * aw.out + ow] = sum / (float)(fh * fw);
                }
            }
            break;
        }
        case POOL_AVG_GRAD:
        case POOL_ADAPTIVE_GRAD: {
            const float *dy = (const float *)in[0].data + pl * y_plane;
            float *dx = (float *)out->data + pl * x_plane;
            memset(dx, 0, (size_t)x_plane * sizeof *dx);
            for (int64_t oh = 0; oh < ah.out; oh++) {
                int64_t h0, h1, fh;
                avg_window(&ah, adaptive, oh, &h0, &h1, &fh);
                for (int64_t ow = 0; ow < aw.out; ow++) {
                    int64_t w0, w1, fw;
                    avg_window(&aw, adaptive, ow, &w0, &w1, &fw);
                    float v = dy[oh * aw.out + ow] / (float)(fh * fw);
                    for (int64_t h = h0; h < h1; h++)
                        for (int64_t w = w0; w < w1; w++)
                            dx[h * aw.in + w] += v;
                }
            }
            break;
        }
        }
    }
}

/* ---- Gradients and constructors ----------------------------------------------------------- */

static dg_node *make_pool(dg_graph *g, dg_op_id op, dg_node *a, dg_node *b,
                          const struct dg__pool_attrs *attrs)
{
    int n = b != NULL ? 2 : 1;
    return dg__make_node(g, op, n, (dg_node *[]){a, b}, attrs);
}

static dg_status pool_backward(const struct dg_grad_ctx *ctx, dg_graph *g, dg_node *node,
                               dg_node *grad, dg_node **gin)
{
    const struct dg__pool_attrs *a = pool_attrs(dg__attrs(node));
    dg_node *in0 = dg__input(node, 0);
    switch ((enum pool_variant)ctx->def->variant) {
    case POOL_MAX:
        if (dg__grad_needed(ctx, 0))
            gin[0] = make_pool(g, DG_OP_max_pool2d_grad, in0, grad, a);
        break;
    case POOL_MAX_GRAD: /* in0 = x (no gradient: argmax is piecewise constant), in1 = dy */
        if (dg__grad_needed(ctx, 1))
            gin[1] = make_pool(g, DG_OP_max_pool2d_gather, in0, grad, a);
        break;
    case POOL_MAX_GATHER: /* in0 = x (none), in1 = g */
        if (dg__grad_needed(ctx, 1))
            gin[1] = make_pool(g, DG_OP_max_pool2d_grad, in0, grad, a);
        break;
    case POOL_AVG:
        if (dg__grad_needed(ctx, 0))
            gin[0] = make_pool(g, DG_OP_avg_pool2d_grad, grad, in0, a);
        break;
    case POOL_AVG_GRAD: /* in0 = dy, in1 = like (shape only) */
        if (dg__grad_needed(ctx, 0))
            gin[0] = make_pool(g, DG_OP_avg_pool2d, grad, NULL, a);
        break;
    case POOL_ADAPTIVE:
        if (dg__grad_needed(ctx, 0))
            gin[0] = make_pool(g, DG_OP_adaptive_avg_pool2d_grad, grad, in0, a);
        break;
    case POOL_ADAPTIVE_GRAD:
        if (dg__grad_needed(ctx, 0))
            gin[0] = make_pool(g, DG_OP_adaptive_avg_pool2d, grad, NULL, a);
        break;
    }
    return dg_graph_status(g);
}

static void pool_label(const struct dg_op_def *def, const void *attrs, char *buf, size_t len)
{
    const struct dg__pool_attrs *a = pool_attrs(attrs);
    if (is_adaptive(def->variant)) {
        snprintf(buf, len, "out=%lldx%lld", (long long)a->out_size[0], (long long)a->out_size[1]);
        return;
    }
    snprintf(buf, len, "k=%lldx%lld s=%lld,%lld p=%lld,%lld%s%s", (long long)a->kernel[0],
             (long long)a->kernel[1], (long long)a->stride[0], (long long)a->stride[1],
             (long long)a->padding[0], (long long)a->padding[1], a->ceil_mode ? " ceil" : "",
             !is_max(def->variant) && !a->count_include_pad ? " exclude_pad" : "");
}

const struct dg_op_def dg_op_max_pool2d = {
    .name = "max_pool2d", .n_inputs = 1, .variant = POOL_MAX, .attrs_size = sizeof(struct dg__pool_attrs),
    .infer = pool_infer, .forward = pool_forward, .backward = pool_backward, .label = pool_label,
};
const struct dg_op_def dg_op_max_pool2d_grad = {
    .name = "max_pool2d_grad", .n_inputs = 2, .variant = POOL_MAX_GRAD, .attrs_size = sizeof(struct dg__pool_attrs),
    .infer = pool_infer, .forward = pool_forward, .backward = pool_backward, .label = pool_label,
};
const struct dg_op_def dg_op_max_pool2d_gather = {
    .name = "max_pool2d_gather", .n_inputs = 2, .variant = POOL_MAX_GATHER, .attrs_size = sizeof(struct dg__pool_attrs),
    .infer = pool_infer, .forward = pool_forward, .backward = pool_backward, .label = pool_label,
};
const struct dg_op_def dg_op_avg_pool2d = {
    .name = "avg_pool2d", .n_inputs = 1, .variant = POOL_AVG, .attrs_size = sizeof(struct dg__pool_attrs),
    .infer = pool_infer, .forward = pool_forward, .backward = pool_backward, .label = pool_label,
};
const struct dg_op_def dg_op_avg_pool2d_grad = {
    .name = "avg_pool2d_grad", .n_inputs = 2, .variant = POOL_AVG_GRAD, .attrs_size = sizeof(struct dg__pool_attrs),
    .shape_only_inputs = 1u << 1,
    .infer = pool_infer, .forward = pool_forward, .backward = pool_backward, .label = pool_label,
};
const struct dg_op_def dg_op_adaptive_avg_pool2d = {
    .name = "adaptive_avg_pool2d", .n_inputs = 1, .variant = POOL_ADAPTIVE, .attrs_size = sizeof(struct dg__pool_attrs),
    .infer = pool_infer, .forward = pool_forward, .backward = pool_backward, .label = pool_label,
};
const struct dg_op_def dg_op_adaptive_avg_pool2d_grad = {
    .name = "adaptive_avg_pool2d_grad", .n_inputs = 2, .variant = POOL_ADAPTIVE_GRAD, .attrs_size = sizeof(struct dg__pool_attrs),
    .shape_only_inputs = 1u << 1,
    .infer = pool_infer, .forward = pool_forward, .backward = pool_backward, .label = pool_label,
};

static dg_node *windowed(dg_graph *g, dg_op_id op, const char *name, dg_node *x,
                         const dg_pool2d_params *p, bool max)
{
    if (p == NULL) {
        if (g != NULL && dg_graph_status(g) == DG_OK)
            dg__fail(g, DG_ERR_INVALID_ARG, "%s: params is NULL", name);
        return NULL;
    }
    struct dg__pool_attrs a;
    memset(&a, 0, sizeof a);
    for (int i = 0; i < 2; i++) {
        a.kernel[i] = p->kernel[i];
        a.stride[i] = p->stride[i] == 0 && p->stride[1 - i] == 0 ? p->kernel[i] : p->stride[i];
        a.padding[i] = p->padding[i];
        a.dilation[i] = max ? (p->dilation[i] == 0 && p->dilation[1 - i] == 0 ? 1
                                                                              : p->dilation[i])
                            : 1;
    }
    a.ceil_mode = p->ceil_mode;
    a.count_include_pad = max ? 0 : p->count_include_pad;
    return make_pool(g, op, x, NULL, &a);
}

dg_node *dg_max_pool2d(dg_graph *g, dg_node *x, const dg_pool2d_params *params)
{
    return windowed(g, DG_OP_max_pool2d, "max_pool2d", x, params, true);
}

dg_node *dg_avg_pool2d(dg_graph *g, dg_node *x, const dg_pool2d_params *params)
{
    return windowed(g, DG_OP_avg_pool2d, "avg_pool2d", x, params, false);
}

dg_node *dg_adaptive_avg_pool2d(dg_graph *g, dg_node *x, int64_t out_h, int64_t out_w)
{
    struct dg__pool_attrs a;
    memset(&a, 0, sizeof a);
    a.out_size[0] = out_h;
    a.out_size[1] = out_w;
    return make_pool(g, DG_OP_adaptive_avg_pool2d, x, NULL, &a);
}
