/*
 * Convolution kernels: im2col + GEMM (src/ops/gemm), OpenMP across the batch.
 *
 * Per image n and group g (Kg = C/G * kh * kw rows of the column matrix, P = Ho * Wo):
 *   forward          y[n, g]  (Co/G x P)  = w[g] (Co/G x Kg) · col(x[n])[g] (Kg x P)
 *   backward-data    dcol[g]  (Kg x P)    = w[g]^T · dy[n, g],   x[n] = col2im(dcol)
 *   backward-weight  dw[g]    (Co/G x Kg) = sum_n dy[n, g] · col(x[n])[g]^T
 * A 1x1 kernel with stride 1 and no padding needs no column matrix: col(x[n]) is x[n].
 *
 * Threads: images are split into contiguous ranges, one per thread, each thread with its own
 * column buffer; each image's GEMMs then run on one thread. With fewer images than threads
 * (inference on one image) the images run in turn and each GEMM uses every thread. The GEMM's
 * result does not depend on its thread count, so forward and backward-data are bitwise
 * identical for any thread count. The weight gradient sums over images: the batch is cut into
 * at most WEIGHT_BLOCKS blocks by its size alone, each block sums its images in order into its
 * own partial (GEMMs with beta = 1), and the partials are added in block order. Which thread
 * computes a block changes nothing, so the sum too is the same for any thread count.
 *
 * Scratch memory (column buffers, partial sums) is the plan's workspace, sized by
 * dg__conv_workspace_floats for the plan's thread count. A workspace planned for fewer threads
 * than the kernel is now given runs on fewer threads (same bits); one too small even for one
 * thread (a caller without a plan) makes the kernel fall back to the direct loops at the end of
 * this file, which need none.
 */
#include "conv.h"

#include <string.h>

#include "gemm/gemm.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* The weight gradient's batch is summed in at most this many blocks (see above). */
enum { WEIGHT_BLOCKS = 4 };
/* Below this many multiply-adds a convolution stays on one thread. */
#define CONV_MIN_PARALLEL_MACS ((int64_t)1 << 18)

static int64_t col_rows(const struct dg__conv_geom *g) { return g->in_c * g->k_h * g->k_w; }
static int64_t out_pixels(const struct dg__conv_geom *g) { return g->out_h * g->out_w; }

/* Whether the column matrix of an image is the image itself. */
static bool is_pointwise(const struct dg__conv_geom *g)
{
    return g->k_h == 1 && g->k_w == 1 && g->stride_h == 1 && g->stride_w == 1 &&
           g->pad_h == 0 && g->pad_w == 0 && g->out_h == g->in_h && g->out_w == g->in_w;
}

static int64_t macs(const struct dg__conv_geom *g)
{
    return g->batch * g->out_c * out_pixels(g) * (col_rows(g) / g->groups);
}

/* Threads across images: at most one per image, 1 for small problems. */
static int image_threads(const struct dg__conv_geom *g, int64_t units, int n_threads)
{
    if (n_threads <= 1 || macs(g) < CONV_MIN_PARALLEL_MACS || units <= 1)
        return 1;
    return units < n_threads ? (int)units : n_threads;
}

static int64_t col_floats(const struct dg__conv_geom *g)
{
    return is_pointwise(g) ? 0 : col_rows(g) * out_pixels(g);
}

static int64_t weight_blocks(const struct dg__conv_geom *g)
{
    return g->batch < WEIGHT_BLOCKS ? g->batch : WEIGHT_BLOCKS;
}

/* GEMM orientation (see the top of the file). Few output channels make a short, wide product
 * (Co/G rows), which fills the GEMM's register tiles (12 x 32 on AVX-512) worse than its
 * transpose: measured on the parity CNN's conv2, 32x196x144 runs at 78 GFLOP/s and 196x32x144
 * at 95; its weight gradient 32x144x196 at 81 and 144x32x196 at 98 (and the strong recipe's
 * conv2, 64 channels: 64x196x288 at 83, 196x64x288 at 99). So the forward pass computes
 * y[n]^T (P x Co) = col^T w^T when Co/G <= 64, P >= 2 Co/G and Kg >= 32, and
 * transposes it into y with the bias; the weight gradient accumulates dw^T (Kg x Co/G) =
 * col dy^T when Kg > Co/G, transposed once per block of images. Shallow products (conv1's
 * Kg = 9) stay as they are: they take the GEMM's unpacked path, where the transposed forward
 * measured no faster (within 5 % with the blocked transpose below). */
static bool forward_transposed(const struct dg__conv_geom *g)
{
    int64_t cog = g->out_c / g->groups;
    return cog <= 64 && out_pixels(g) >= 2 * cog && col_rows(g) / g->groups >= 32;
}

static bool weight_transposed(const struct dg__conv_geom *g)
{
    return col_rows(g) / g->groups > g->out_c / g->groups;
}

/* Floats of scratch per thread: the column matrix, and the transposed product. */
static int64_t forward_scratch(const struct dg__conv_geom *g)
{
    return col_floats(g) + (forward_transposed(g) ? out_pixels(g) * g->out_c : 0);
}

static int64_t weight_scratch(const struct dg__conv_geom *g)
{
    return col_floats(g) + (weight_transposed(g) ? g->out_c * (col_rows(g) / g->groups) : 0);
}

size_t dg__conv_workspace_floats(const struct dg__conv_geom *g, enum dg__conv_kernel kernel,
                                 int n_threads)
{
    if (kernel == DG__CONV_WEIGHT) {
        int64_t blocks = weight_blocks(g);
        if (blocks == 0)
            return 0;
        int threads = image_threads(g, blocks, n_threads);
        return (size_t)(weight_scratch(g) * threads + g->out_c * (col_rows(g) / g->groups) *
                        (blocks - 1));
    }
    int64_t per_thread = kernel == DG__CONV_FORWARD ? forward_scratch(g) : col_floats(g);
    return (size_t)(per_thread * image_threads(g, g->batch, n_threads));
}

/* How many threads the workspace allows (it was planned for the plan's thread count, which
 * may have changed since): at most `threads`, each with `per_thread` floats after `fixed`;
 * 0 when not even one fits. */
static int fit_threads(const struct dg_exec_ctx *ctx, int threads, int64_t per_thread,
                       int64_t fixed)
{
    if (per_thread == 0 && fixed == 0)
        return threads;
    size_t floats = ctx->workspace != NULL ? ctx->workspace_bytes / sizeof(float) : 0;
    if ((int64_t)floats < fixed + per_thread)
        return 0;
    if (per_thread == 0)
        return threads;
    int64_t fit = ((int64_t)floats - fixed) / per_thread;
    return fit < threads ? (int)fit : threads;
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static int team_size(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* The output columns j whose input column j*stride_w + offset lies inside the image:
 * [*j0, *j1) (empty when *j1 <= *j0). */
static void valid_columns(const struct dg__conv_geom *g, int64_t offset, int64_t *j0,
                          int64_t *j1)
{
    int64_t s = g->stride_w;
    /* smallest j with j*s + offset >= 0; smallest j with j*s + offset >= in_w */
    int64_t lo = offset >= 0 ? 0 : (-offset + s - 1) / s;
    int64_t hi = g->in_w - offset <= 0 ? 0 : (g->in_w - offset + s - 1) / s;
    *j0 = lo < g->out_w ? lo : g->out_w;
    *j1 = hi < g->out_w ? hi : g->out_w;
}

/* Whether rows of the column matrix are shifted copies of whole image planes: stride 1 and
 * as many output columns as input columns (e.g. 'same' padding), so that output pixel
 * i*W + j of kernel tap (a, b) reads input pixel i*W + j + shift, shift = (a*dh - ph)*W +
 * b*dw - pw, wherever the tap falls inside the image. im2col and col2im then move whole
 * planes (one memcpy, a zeroed border) instead of one short row at a time. */
static bool is_shifted_plane(const struct dg__conv_geom *g)
{
    return g->stride_h == 1 && g->stride_w == 1 && g->out_w == g->in_w;
}

/* The output rows i whose input row i*stride_h - pad_h + a*dil_h lies inside the image:
 * [*i0, *i1). */
static void valid_rows(const struct dg__conv_geom *g, int64_t a, int64_t *i0, int64_t *i1)
{
    int64_t offset = a * g->dil_h - g->pad_h, s = g->stride_h;
    int64_t lo = offset >= 0 ? 0 : (-offset + s - 1) / s;
    int64_t hi = g->in_h - offset <= 0 ? 0 : (g->in_h - offset + s - 1) / s;
    *i0 = lo < g->out_h ? lo : g->out_h;
    *i1 = hi < g->out_h ? hi : g->out_h;
    if (*i1 < *i0)
        *i1 = *i0;
}

/* Kernel tap (a, b) of a shifted-plane geometry: output rows [i0, i1) and columns [j0, j1)
 * read inside the plane, and the flat copy plane[t + shift] for t in [lo, hi) (the rows
 * [i0*W, i1*W) clipped to the plane; the wrapped reads of the border columns are fixed up by
 * the caller). */
struct shifted_tap {
    int64_t i0, i1, j0, j1, shift, lo, hi;
};

static struct shifted_tap shifted_tap(const struct dg__conv_geom *g, int64_t a, int64_t b)
{
    const int64_t W = g->in_w, col_offset = b * g->dil_w - g->pad_w;
    struct shifted_tap t;
    valid_rows(g, a, &t.i0, &t.i1);
    valid_columns(g, col_offset, &t.j0, &t.j1);
    if (t.j1 < t.j0)
        t.j1 = t.j0;
    t.shift = (a * g->dil_h - g->pad_h) * W + col_offset;
    t.lo = t.i0 * W;
    t.hi = t.i1 * W;
    if (t.lo + t.shift < 0)
        t.lo = -t.shift;
    if (t.hi + t.shift > g->in_h * W)
        t.hi = g->in_h * W - t.shift;
    return t;
}

/* buf[t] = value in the border columns (outside [j0, j1)) of rows [i0, i1), column by column
 * down the rows: strided stores (a loop along a row would become a memset call per row, most
 * of im2col's time for 3x3 kernels). */
static void fill_border_columns(const struct shifted_tap *t, int64_t W, float value, float *buf)
{
    for (int64_t j = 0; j < t->j0; j++)
        for (int64_t k = t->i0 * W + j; k < t->i1 * W; k += W)
            buf[k] = value;
    for (int64_t j = t->j1; j < W; j++)
        for (int64_t k = t->i0 * W + j; k < t->i1 * W; k += W)
            buf[k] = value;
}

/* im2col of one kernel tap (a, b) of one channel plane when is_shifted_plane. */
static void im2col_shifted(const struct dg__conv_geom *g, const float *plane, int64_t a,
                           int64_t b, float *dst)
{
    const int64_t W = g->in_w, P = g->out_h * W;
    const struct shifted_tap t = shifted_tap(g, a, b);
    if (t.i0 > 0)
        memset(dst, 0, (size_t)(t.i0 * W) * sizeof *dst);
    if (t.i1 * W < P)
        memset(dst + t.i1 * W, 0, (size_t)(P - t.i1 * W) * sizeof *dst);
    if (t.i1 == t.i0)
        return;
    if (t.hi > t.lo)
        memcpy(dst + t.lo, plane + t.lo + t.shift, (size_t)(t.hi - t.lo) * sizeof *dst);
    fill_border_columns(&t, W, 0.0f, dst);
}

/* col[(c*kh + a)*kw + b][i*Wo + j] = x[c][i*sh - ph + a*dh][j*sw - pw + b*dw], 0 outside. */
static void im2col(const struct dg__conv_geom *g, const float *x, float *col)
{
    const int64_t oh = g->out_h, ow = g->out_w, P = oh * ow;
    const bool shifted = is_shifted_plane(g);
    for (int64_t c = 0; c < g->in_c; c++) {
        const float *plane = x + c * g->in_h * g->in_w;
        for (int64_t a = 0; a < g->k_h; a++) {
            for (int64_t b = 0; b < g->k_w; b++) {
                float *dst = col + ((c * g->k_h + a) * g->k_w + b) * P;
                if (shifted) {
                    im2col_shifted(g, plane, a, b, dst);
                    continue;
                }
                for (int64_t i = 0; i < oh; i++) {
                    int64_t ih = i * g->stride_h - g->pad_h + a * g->dil_h;
                    float *row = dst + i * ow;
                    if (ih < 0 || ih >= g->in_h) {
                        memset(row, 0, (size_t)ow * sizeof *row);
                        continue;
                    }
                    const float *src = plane + ih * g->in_w;
                    int64_t offset = b * g->dil_w - g->pad_w, j0, j1;
                    valid_columns(g, offset, &j0, &j1);
                    for (int64_t j = 0; j < j0; j++)
                        row[j] = 0.0f;
                    if (g->stride_w == 1) {
                        if (j1 > j0)
                            memcpy(row + j0, src + j0 + offset, (size_t)(j1 - j0) * sizeof *row);
                    } else {
                        for (int64_t j = j0; j < j1; j++)
                            row[j] = src[j * g->stride_w + offset];
                    }
                    for (int64_t j = j1 > j0 ? j1 : j0; j < ow; j++)
                        row[j] = 0.0f;
                }
            }
        }
    }
}

/* col2im of one kernel tap (a, b) into one channel plane when is_shifted_plane: plane[t +
 * shift] += src[t] over the valid rows in one flat loop. The border columns, whose flat
 * targets wrap into the neighbouring row, are first set to -0 in src (scratch that col2im
 * may clobber): adding -0 leaves every float as it is (-0 + -0 = -0, +0 + -0 = +0, NaN stays),
 * so the sums are bit for bit those of the row-by-row loop. */
static void col2im_shifted(const struct dg__conv_geom *g, float *src, int64_t a, int64_t b,
                           float *plane)
{
    const struct shifted_tap t = shifted_tap(g, a, b);
    if (t.i1 == t.i0)
        return;
    fill_border_columns(&t, g->in_w, -0.0f, src);
    float *restrict d = plane + t.shift;
    const float *restrict r = src;
    for (int64_t k = t.lo; k < t.hi; k++)
        d[k] += r[k];
}

/* x = the sum of col's entries into the positions im2col read them from (x overwritten),
 * in a fixed order: channel, kernel tap, output row, output column (the same sums with and
 * without the stride-1 specialisations). col is scratch: its border entries may be
 * overwritten. */
static void col2im(const struct dg__conv_geom *g, float *col, float *x)
{
    const int64_t oh = g->out_h, ow = g->out_w, P = oh * ow;
    memset(x, 0, (size_t)(g->in_c * g->in_h * g->in_w) * sizeof *x);
    const bool unit_stride = g->stride_w == 1, shifted = is_shifted_plane(g);
    for (int64_t c = 0; c < g->in_c; c++) {
        float *plane = x + c * g->in_h * g->in_w;
        for (int64_t a = 0; a < g->k_h; a++) {
            for (int64_t b = 0; b < g->k_w; b++) {
                float *src = col + ((c * g->k_h + a) * g->k_w + b) * P;
                if (shifted) {
                    col2im_shifted(g, src, a, b, plane);
                    continue;
                }
                int64_t offset = b * g->dil_w - g->pad_w, j0, j1;
                valid_columns(g, offset, &j0, &j1);
                for (int64_t i = 0; i < oh; i++) {
                    int64_t ih = i * g->stride_h - g->pad_h + a * g->dil_h;
                    if (ih < 0 || ih >= g->in_h)
                        continue;
                    float *dst = plane + ih * g->in_w;
                    const float *row = src + i * ow;
                    if (unit_stride) {
                        float *restrict d = dst + j0 + offset;
                        const float *restrict r = row + j0;
                        for (int64_t j = 0; j < j1 - j0; j++)
                            d[j] += r[j];
                    } else {
                        for (int64_t j = j0; j < j1; j++)
                            dst[j * g->stride_w + offset] += row[j];
                    }
                }
            }
        }
    }
}

static void add_channel_bias(float *data, const float *bias, int64_t channels, int64_t plane)
{
    for (int64_t c = 0; c < channels; c++) {
        float v = bias[c];
        float *p = data + c * plane;
        for (int64_t i = 0; i < plane; i++)
            p[i] += v;
    }
}

#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define DG_CONV_SHUFFLE 1
#endif
#endif

/* y[o][p] = yt[p][o] (+ bias[o]), for P pixels and C channels: 4x4 blocks transposed in
 * registers (generic vectors; the compiler picks the ISA's shuffles), the edges one by one. */
static void transpose_bias(const float *yt, const float *bias, int64_t P, int64_t C, float *y)
{
    int64_t p0 = 0;
#ifdef DG_CONV_SHUFFLE
    typedef float v4 __attribute__((vector_size(16)));
    for (; p0 + 4 <= P; p0 += 4) {
        for (int64_t o = 0; o + 4 <= C; o += 4) {
            v4 r[4], c[4];
            for (int i = 0; i < 4; i++)
                memcpy(&r[i], yt + (p0 + i) * C + o, sizeof r[i]);
            v4 t0 = __builtin_shufflevector(r[0], r[1], 0, 4, 1, 5);
            v4 t1 = __builtin_shufflevector(r[0], r[1], 2, 6, 3, 7);
            v4 t2 = __builtin_shufflevector(r[2], r[3], 0, 4, 1, 5);
            v4 t3 = __builtin_shufflevector(r[2], r[3], 2, 6, 3, 7);
            c[0] = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
            c[1] = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
            c[2] = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
            c[3] = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
            for (int j = 0; j < 4; j++) {
                if (bias != NULL)
                    c[j] += bias[o + j];
                memcpy(y + (o + j) * P + p0, &c[j], sizeof c[j]);
            }
        }
        for (int64_t o = C - C % 4; o < C; o++)
            for (int64_t p = p0; p < p0 + 4; p++)
                y[o * P + p] = yt[p * C + o] + (bias != NULL ? bias[o] : 0.0f);
    }
#endif
    for (int64_t o = 0; o < C; o++)
        for (int64_t p = p0; p < P; p++)
            y[o * P + p] = yt[p * C + o] + (bias != NULL ? bias[o] : 0.0f);
}

/* One image of the forward pass; scratch holds forward_scratch floats: the column matrix
 * (col_rows x P, unused when pointwise), then y^T (P x Co) when forward_transposed. */
static void forward_image(const struct dg__conv_geom *g, const float *x, const float *w,
                          const float *bias, float *y, float *scratch, int gemm_threads)
{
    const int64_t P = out_pixels(g), kg = col_rows(g) / g->groups, cog = g->out_c / g->groups;
    const float *col = x; /* read only */
    if (!is_pointwise(g)) {
        im2col(g, x, scratch);
        col = scratch;
    }
    if (forward_transposed(g)) {
        float *yt = scratch + col_floats(g);
        for (int64_t grp = 0; grp < g->groups; grp++)
            dg__sgemm(true, true, P, cog, kg, 1.0f, col + grp * kg * P, P, w + grp * cog * kg,
                      kg, 0.0f, yt + grp * cog, g->out_c, gemm_threads);
        transpose_bias(yt, bias, P, g->out_c, y);
        return;
    }
    for (int64_t grp = 0; grp < g->groups; grp++)
        dg__sgemm(false, false, cog, P, kg, 1.0f, w + grp * cog * kg, kg, col + grp * kg * P, P,
                  0.0f, y + grp * cog * P, P, gemm_threads);
    if (bias != NULL)
        add_channel_bias(y, bias, g->out_c, P);
}

/* One image's work: reads `src` (an image of the source), writes `dst`, with `col` as its
 * im2col scratch and `gemm_threads` for the products inside. */
typedef void (*image_fn)(const struct dg__conv_geom *g, const float *src, const float *w,
                         const float *bias, float *dst, float *col, int gemm_threads);

/* Runs fn over the batch: images split across the team that the workspace was planned for
 * (each thread its own im2col block), or one image after another with threads inside GEMM.
 * False when no workspace was planned (the caller runs its direct loops instead). */
static bool for_each_image(const struct dg__conv_geom *g, image_fn fn, int64_t col_size,
                           const float *src, int64_t src_size, const float *w, const float *bias,
                           float *dst, int64_t dst_size, const struct dg_exec_ctx *ctx)
{
    const int threads = fit_threads(ctx, image_threads(g, g->batch, ctx->n_threads), col_size, 0);
    float *scratch = ctx->workspace;
    if (threads == 0)
        return false;
    if (threads == 1) {
        for (int64_t n = 0; n < g->batch; n++)
            fn(g, src + n * src_size, w, bias, dst + n * dst_size, scratch, ctx->n_threads);
    } else {
#pragma omp parallel num_threads(threads)
        {
            /* the team may be smaller than asked for (nested regions, thread limits) */
            int t = thread_id(), team = team_size();
            int64_t lo = g->batch * t / team, hi = g->batch * (t + 1) / team;
            for (int64_t n = lo; n < hi; n++)
                fn(g, src + n * src_size, w, bias, dst + n * dst_size, scratch + col_size * t, 1);
        }
    }
    return true;
}

void dg__conv_forward(const struct dg__conv_geom *g, const float *x, const float *w,
                      const float *bias, float *y, const struct dg_exec_ctx *ctx)
{
    const int64_t in_size = g->in_c * g->in_h * g->in_w, out_size = g->out_c * out_pixels(g);
    if (!for_each_image(g, forward_image, forward_scratch(g), x, in_size, w, bias, y, out_size,
                        ctx))
        dg__conv_forward_direct(g, x, w, bias, y);
}

static void backward_data_image(const struct dg__conv_geom *g, const float *dy, const float *w,
                                const float *bias, float *x, float *col, int gemm_threads)
{
    const int64_t P = out_pixels(g), kg = col_rows(g) / g->groups, cog = g->out_c / g->groups;
    bool pointwise = is_pointwise(g);
    float *dcol = pointwise ? x : col;
    for (int64_t grp = 0; grp < g->groups; grp++)
        dg__sgemm(true, false, kg, P, cog, 1.0f, w + grp * cog * kg, kg, dy + grp * cog * P, P,
                  0.0f, dcol + grp * kg * P, P, gemm_threads);
    if (!pointwise)
        col2im(g, dcol, x);
    if (bias != NULL)
        add_channel_bias(x, bias, g->in_c, g->in_h * g->in_w);
}

void dg__conv_backward_data(const struct dg__conv_geom *g, const float *dy, const float *w,
                            const float *bias, float *x, const struct dg_exec_ctx *ctx)
{
    const int64_t in_size = g->in_c * g->in_h * g->in_w, out_size = g->out_c * out_pixels(g);
    if (!for_each_image(g, backward_data_image, col_floats(g), dy, out_size, w, bias, x,
                        in_size, ctx))
        dg__conv_backward_data_direct(g, dy, w, bias, x);
}

/* The weight gradient of images [lo, hi) into dw (overwritten); scratch holds weight_scratch
 * floats: the column matrix, then dw^T (Kg x Co) when weight_transposed. */
static void backward_weight_block(const struct dg__conv_geom *g, const float *x,
                                  const float *dy, float *dw, float *scratch, int64_t lo,
                                  int64_t hi, int gemm_threads)
{
    const int64_t in_size = g->in_c * g->in_h * g->in_w, out_size = g->out_c * out_pixels(g);
    const int64_t P = out_pixels(g), kg = col_rows(g) / g->groups, cog = g->out_c / g->groups;
    const bool pointwise = is_pointwise(g), transposed = weight_transposed(g);
    float *dwt = scratch + col_floats(g);
    for (int64_t n = lo; n < hi; n++) {
        const float *c = pointwise ? x + n * in_size : scratch;
        if (!pointwise)
            im2col(g, x + n * in_size, scratch);
        const float beta = n == lo ? 0.0f : 1.0f;
        for (int64_t grp = 0; grp < g->groups; grp++) {
            const float *d = dy + n * out_size + grp * cog * P, *cg = c + grp * kg * P;
            if (transposed)
                dg__sgemm(false, true, kg, cog, P, 1.0f, cg, P, d, P, beta, dwt + grp * cog,
                          g->out_c, gemm_threads);
            else
                dg__sgemm(false, true, cog, kg, P, 1.0f, d, P, cg, P, beta, dw + grp * cog * kg,
                          kg, gemm_threads);
        }
    }
    if (transposed && hi > lo) /* dw[o][k] = dwt[k][o] */
        transpose_bias(dwt, NULL, kg, g->out_c, dw);
}

void dg__conv_backward_weight(const struct dg__conv_geom *g, const float *x, const float *dy,
                              float *dw, const struct dg_exec_ctx *ctx)
{
    const int64_t dw_size = g->out_c * (col_rows(g) / g->groups);
    if (g->batch == 0) {
        memset(dw, 0, (size_t)dw_size * sizeof *dw);
        return;
    }
    const int64_t blocks = weight_blocks(g), col_size = weight_scratch(g);
    const int threads = fit_threads(ctx, image_threads(g, blocks, ctx->n_threads), col_size,
                                    dw_size * (blocks - 1));
    float *scratch = ctx->workspace;
    if (threads == 0) {
        dg__conv_backward_weight_direct(g, x, dy, dw);
        return;
    }
    /* partial sums of blocks 1 .. blocks-1 first, then one column buffer per thread */
    float *partials = scratch, *cols = scratch + dw_size * (blocks - 1);
    if (threads == 1) {
        for (int64_t b = 0; b < blocks; b++)
            backward_weight_block(g, x, dy, b == 0 ? dw : partials + (b - 1) * dw_size, cols,
                                  g->batch * b / blocks, g->batch * (b + 1) / blocks,
                                  ctx->n_threads);
    } else {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t b = 0; b < blocks; b++)
            backward_weight_block(g, x, dy, b == 0 ? dw : partials + (b - 1) * dw_size,
                                  cols + col_size * thread_id(), g->batch * b / blocks,
                                  g->batch * (b + 1) / blocks, 1);
    }
    for (int64_t b = 1; b < blocks; b++) {
        const float *p = partials + (b - 1) * dw_size;
        for (int64_t i = 0; i < dw_size; i++)
            dw[i] += p[i];
    }
}

/* ---- Direct loops ----------------------------------------------------------------------- */

void dg__conv_forward_direct(const struct dg__conv_geom *g, const float *x, const float *w,
                             const float *bias, float *y)
{
    const int64_t cg = g->in_c / g->groups, cog = g->out_c / g->groups;
    for (int64_t n = 0; n < g->batch; n++)
        for (int64_t o = 0; o < g->out_c; o++) {
            int64_t grp = o / cog;
            for (int64_t i = 0; i < g->out_h; i++)
                for (int64_t j = 0; j < g->out_w; j++) {
                    double acc = bias != NULL ? bias[o] : 0.0;
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t a = 0; a < g->k_h; a++) {
                            int64_t ih = i * g->stride_h - g->pad_h + a * g->dil_h;
                            if (ih < 0 || ih >= g->in_h)
                                continue;
                            for (int64_t b = 0; b < g->k_w; b++) {
                                int64_t iw = j * g->stride_w - g->pad_w + b * g->dil_w;
                                if (iw < 0 || iw >= g->in_w)
                                    continue;
                                acc += (double)w[((o * cg + c) * g->k_h + a) * g->k_w + b] *
                                       x[((n * g->in_c + grp * cg + c) * g->in_h + ih) *
                                             g->in_w + iw];
                            }
                        }
                    y[((n * g->out_c + o) * g->out_h + i) * g->out_w + j] = (float)acc;
                }
        }
}

void dg__conv_backward_data_direct(const struct dg__conv_geom *g, const float *dy,
                                   const float *w, const float *bias, float *x)
{
    const int64_t cg = g->in_c / g->groups, cog = g->out_c / g->groups;
    for (int64_t n = 0; n < g->batch; n++)
        for (int64_t ch = 0; ch < g->in_c; ch++) {
            int64_t grp = ch / cg, c = ch % cg;
            for (int64_t ih = 0; ih < g->in_h; ih++)
                for (int64_t iw = 0; iw < g->in_w; iw++) {
                    double acc = bias != NULL ? bias[ch] : 0.0;
                    for (int64_t o = grp * cog; o < (grp + 1) * cog; o++)
                        for (int64_t a = 0; a < g->k_h; a++) {
                            int64_t th = ih + g->pad_h - a * g->dil_h;
                            if (th < 0 || th % g->stride_h != 0 || th / g->stride_h >= g->out_h)
                                continue;
                            for (int64_t b = 0; b < g->k_w; b++) {
                                int64_t tw = iw + g->pad_w - b * g->dil_w;
                                if (tw < 0 || tw % g->stride_w != 0 ||
                                    tw / g->stride_w >= g->out_w)
                                    continue;
                                acc += (double)w[((o * cg + c) * g->k_h + a) * g->k_w + b] *
                                       dy[((n * g->out_c + o) * g->out_h + th / g->stride_h) *
                                              g->out_w + tw / g->stride_w];
                            }
                        }
                    x[((n * g->in_c + ch) * g->in_h + ih) * g->in_w + iw] = (float)acc;
                }
        }
}

void dg__conv_backward_weight_direct(const struct dg__conv_geom *g, const float *x,
                                     const float *dy, float *dw)
{
    const int64_t cg = g->in_c / g->groups, cog = g->out_c / g->groups;
    for (int64_t o = 0; o < g->out_c; o++) {
        int64_t grp = o / cog;
        for (int64_t c = 0; c < cg; c++)
            for (int64_t a = 0; a < g->k_h; a++)
                for (int64_t b = 0; b < g->k_w; b++) {
                    double acc = 0.0;
                    for (int64_t n = 0; n < g->batch; n++)
                        for (int64_t i = 0; i < g->out_h; i++) {
                            int64_t ih = i * g->stride_h - g->pad_h + a * g->dil_h;
                            if (ih < 0 || ih >= g->in_h)
                                continue;
                            for (int64_t j = 0; j < g->out_w; j++) {
                                int64_t iw = j * g->stride_w - g->pad_w + b * g->dil_w;
                                if (iw < 0 || iw >= g->in_w)
                                    continue;
                                acc += (double)dy[((n * g->out_c + o) * g->out_h + i) *
                                                      g->out_w + j] *
                                       x[((n * g->in_c + grp * cg + c) * g->in_h + ih) *
                                             g->in_w + iw];
                            }
                        }
                    dw[((o * cg + c) * g->k_h + a) * g->k_w + b] = (float)acc;
                }
    }
}
