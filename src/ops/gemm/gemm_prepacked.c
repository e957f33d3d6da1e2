/*
 * GEMM with op(B) packed once and used for many products: a recurrent layer multiplies by
 * the same weight matrix at every time step (lstm.c: h W_hh^T forward, d W_hh backward), and
 * dg__sgemm would pack the whole of it again at each step, for a product whose A has only a
 * few dozen rows (about a tenth of the step's time).
 *
 * The packed layout is gemm.c's packed path's, laid out for all of op(B) at once: for each
 * block of KC rows of k (pc = 0, KC, 2 KC, ...), ceil(n / NR) panels of kc x NR floats
 * (dg__gemm_pack_b's layout), the blocks one after another. A product packs op(A), MC rows
 * at a time, into caller-given scratch and runs the kernel's micro-kernel over every tile, as
 * gemm.c's packed path does: each element of C is the sum over p = 0..k-1 in the same KC
 * blocks with the same kernel, so its bits are those of dg__sgemm's packed path and never
 * depend on m, on the tile or on the thread that computes it. Unlike dg__sgemm this path
 * never switches to the direct kernels for small m or small products (which sum in another
 * order): a caller that splits its rows across threads gets the same bits for any split.
 *
 * Only the portable framework lives here; the kernels, the packing routines and the
 * dispatch rule (the kernel of dg__isa()) are gemm.c's and gemm_pack.c's.
 */
#include "gemm.h"
#include "gemm_kernel.h"

static int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }
static int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

/* The kernel of dg__isa(), as gemm.c picks it. */
static const struct dg__gemm_kernel *current_kernel(void)
{
    return dg__gemm_kernel_for(dg__isa());
}

/* Below this many multiply-adds per thread a split costs more than it saves (gemm.c's
 * threshold). */
#define MIN_MACS_PER_THREAD ((int64_t)1 << 19)

int64_t dg__gemm_packed_b_floats(int64_t k, int64_t n)
{
    const struct dg__gemm_kernel *kern = current_kernel();
    return round_up(n > 0 ? n : 1, kern->nr) * (k > 0 ? k : 1);
}

int64_t dg__gemm_packed_a_floats(int64_t m, int64_t k, int n_threads)
{
    const struct dg__gemm_kernel *kern = current_kernel();
    const int64_t one = round_up(min64(kern->mc, m > 0 ? m : 1), kern->mr) *
                        min64(kern->kc, k > 0 ? k : 1);
    return round_up(one, 16) * (n_threads > 1 ? n_threads : 1);
}

void dg__gemm_pack_b_once(bool transpose_b, int64_t k, int64_t n, const float *b, int64_t ldb,
                          float *packed, struct dg__gemm_packed_b *out)
{
    const struct dg__gemm_kernel *kern = current_kernel();
    const int64_t b_row = transpose_b ? 1 : ldb, b_col = transpose_b ? ldb : 1;
    const int64_t width = round_up(n, kern->nr);
    for (int64_t pc = 0; pc < k; pc += kern->kc)
        kern->pack_b(kern->nr, min64(kern->kc, k - pc), n, b + pc * b_row, b_row, b_col,
                     packed + pc * width);
    *out = (struct dg__gemm_packed_b){.kernel = kern, .k = k, .n = n, .data = packed};
}

/* Columns [j0, j1) (multiples of NR, or n) of C for all m rows. Whole tiles of MR rows go
 * through the micro-kernel, op(A) packed into a_packed; the rows left over (m mod MR) through
 * the direct kernel, reading op(A) in place and the packed B panel as a row-major kc x NR
 * block, so that no tile computes padding rows (12.5% of the work at m = 32 with MR = 12).
 * Both kernels sum each element over p in order with one FMA per term and write back alike
 * (gemm_kernel.h), block by block of KC: the same bits whichever kernel computes a row. */
static void product_columns(const struct dg__gemm_kernel *kern, bool transpose_a, int64_t m,
                            float alpha, const float *a, int64_t lda,
                            const struct dg__gemm_packed_b *b, float beta, float *c,
                            int64_t ldc, float *a_packed, int64_t j0, int64_t j1)
{
    const int64_t mr = kern->mr, nr = kern->nr, k = b->k;
    const int64_t a_row = transpose_a ? 1 : lda, a_col = transpose_a ? lda : 1;
    const int64_t width = round_up(b->n, nr);
    for (int64_t pc = 0; pc < k; pc += kern->kc) {
        const int64_t kc = min64(kern->kc, k - pc);
        const float beta_pc = pc == 0 ? beta : 1.0f;
        const float *b_block = b->data + pc * width;
        for (int64_t ic = 0; ic < m; ic += kern->mc) {
            const int64_t mc = min64(kern->mc, m - ic), whole = mc / mr * mr;
            const float *a_block = a + ic * a_row + pc * a_col;
            if (whole > 0)
                kern->pack_a((int)mr, whole, kc, a_block, a_row, a_col, a_packed);
            for (int64_t jr = j0; jr < j1; jr += nr) {
                const int n_valid = (int)min64(nr, b->n - jr);
                for (int64_t ir = 0; ir < whole; ir += mr)
                    kern->micro(kc, a_packed + ir * kc, b_block + jr * kc, alpha, beta_pc,
                                c + (ic + ir) * ldc + jr, ldc, (int)mr, n_valid);
                if (whole < mc)
                    kern->direct(mc - whole, n_valid, kc, alpha, a_block + whole * a_row,
                                 a_row, a_col, b_block + jr * kc, nr, beta_pc,
                                 c + (ic + whole) * ldc + jr, ldc);
            }
        }
    }
}

void dg__sgemm_packed_b(bool transpose_a, int64_t m, float alpha, const float *a, int64_t lda,
                        const struct dg__gemm_packed_b *b, float beta, float *c, int64_t ldc,
                        float *a_scratch, int n_threads)
{
    const struct dg__gemm_kernel *kern = b->kernel;
    if (m <= 0 || b->n <= 0)
        return;
    if (b->k == 0 || alpha == 0.0f) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < b->n; j++)
                c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    const int64_t panels = (b->n + kern->nr - 1) / kern->nr;
    const int64_t useful = m * b->n * b->k / MIN_MACS_PER_THREAD;
    int threads = n_threads < 1 ? 1 : n_threads;
    if (useful < threads)
        threads = useful < 1 ? 1 : (int)useful;
    if (panels < threads)
        threads = (int)panels;
    if (threads <= 1) {
        product_columns(kern, transpose_a, m, alpha, a, lda, b, beta, c, ldc, a_scratch, 0,
                        b->n);
        return;
    }
    /* Columns split on panel boundaries; each thread packs its own copy of op(A). */
    const int64_t per_thread = dg__gemm_packed_a_floats(m, b->k, 1);
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
    for (int part = 0; part < threads; part++) {
        const int64_t j0 = panels * part / threads * kern->nr;
        const int64_t j1 = min64(panels * (part + 1) / threads * kern->nr, b->n);
        product_columns(kern, transpose_a, m, alpha, a, lda, b, beta, c, ldc,
                        a_scratch + part * per_thread, j0, j1);
    }
}
