/*
 * Packing op(A) and op(B) into the panel layout the micro-kernels read (gemm_kernel.h).
 * Transposes are absorbed here, by strides: a transposed operand is never materialised.
 *
 * A panel is `width` lanes (mr rows of A, or nr columns of B) by kc steps of k, stored
 * step-major: dst[p*width + lane]. Source element (lane, p) is src[lane*lane_stride +
 * p*k_stride]. Two source layouts are common and get their own loops:
 *   - lane_stride == 1: each step is `width` contiguous floats (B not transposed, A
 *     transposed): a straight copy the compiler vectorises;
 *   - k_stride == 1: each lane is a contiguous run along k (A not transposed, B transposed):
 *     read each lane's run in order, write it with stride `width` (the destination panel is
 *     small enough to stay in L1, so the scattered stores are cheap).
 */
#include "gemm_kernel.h"


static inline __attribute__((always_inline)) void
pack_panel(const int width, int64_t valid, int64_t kc, const float *src, int64_t lane_stride,
           int64_t k_stride, float *dst)
{
    if (valid == width && lane_stride == 1) {
        for (int64_t p = 0; p < kc; p++)
            for (int lane = 0; lane < width; lane++)
                dst[p * width + lane] = src[p * k_stride + lane];
        return;
    }
    if (valid == width && k_stride == 1) {
        for (int lane = 0; lane < width; lane++) {
            const float *run = src + lane * lane_stride;
            for (int64_t p = 0; p < kc; p++)
                dst[p * width + lane] = run[p];
        }
        return;
    }
    /* Edge panel (or an unusual layout): copy what exists, zero the padding lanes. */
    for (int64_t p = 0; p < kc; p++) {
        int lane = 0;
        for (; lane < valid; lane++)
            dst[p * width + lane] = src[lane * lane_stride + p * k_stride];
        for (; lane < width; lane++)
            dst[p * width + lane] = 0.0f;
    }
}

/* Panels of one width; `width` is a constant in each call below so the loops specialise. */
static inline __attribute__((always_inline)) void
pack_all(const int width, int64_t lanes, int64_t kc, const float *src, int64_t lane_stride,
         int64_t k_stride, float *dst)
{
    for (int64_t first = 0; first < lanes; first += width) {
        int64_t valid = lanes - first < width ? lanes - first : width;
        pack_panel(width, valid, kc, src + first * lane_stride, lane_stride, k_stride,
                   dst + first * kc);
    }
}

static void pack(int width, int64_t lanes, int64_t kc, const float *src, int64_t lane_stride,
                 int64_t k_stride, float *dst)
{
    /* The tile widths the kernels use; anything else takes the generic loop. */
    switch (width) {
    case 4: pack_all(4, lanes, kc, src, lane_stride, k_stride, dst); break;
    case 6: pack_all(6, lanes, kc, src, lane_stride, k_stride, dst); break;
    case 8: pack_all(8, lanes, kc, src, lane_stride, k_stride, dst); break;
    case 12: pack_all(12, lanes, kc, src, lane_stride, k_stride, dst); break;
    case 14: pack_all(14, lanes, kc, src, lane_stride, k_stride, dst); break;
    case 16: pack_all(16, lanes, kc, src, lane_stride, k_stride, dst); break;
    case 32: pack_all(32, lanes, kc, src, lane_stride, k_stride, dst); break;
    case 48: pack_all(48, lanes, kc, src, lane_stride, k_stride, dst); break;
    case 64: pack_all(64, lanes, kc, src, lane_stride, k_stride, dst); break;
    default:
        for (int64_t first = 0; first < lanes; first += width) {
            int64_t valid = lanes - first < width ? lanes - first : width;
            const float *panel_src = src + first * lane_stride;
            float *panel = dst + first * kc;
            for (int64_t p = 0; p < kc; p++) {
                int64_t lane = 0;
                for (; lane < valid; lane++)
                    panel[p * width + lane] = panel_src[lane * lane_stride + p * k_stride];
                for (; lane < width; lane++)
                    panel[p * width + lane] = 0.0f;
            }
        }
        break;
    }
}

void dg__gemm_pack_a(int mr, int64_t mc, int64_t kc, const float *a, int64_t row_stride,
                     int64_t col_stride, float *packed)
{
    pack(mr, mc, kc, a, row_stride, col_stride, packed);
}

void dg__gemm_pack_b(int nr, int64_t kc, int64_t nc, const float *b, int64_t row_stride,
                     int64_t col_stride, float *packed)
{
    pack(nr, nc, kc, b, col_stride, row_stride, packed);
}
