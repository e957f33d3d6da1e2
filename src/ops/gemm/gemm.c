/*
 * The portable GEMM framework: path choice, cache blocking, packing buffers and threading
 * around the per-ISA kernels of gemm_kernel.h.
 *
 * Loop nest for one thread's rectangle of C (BLIS order):
 *   jc: NC columns   -> pc: KC of k, pack op(B)[pc.., jc..] (KC x NC, reused from L2/L3)
 *     ic: ~MC rows   -> pack op(A)[ic.., pc..] (MC x KC, stays in L2; see rows_per_block)
 *       jr: NR cols  -> ir: MR rows -> micro-kernel (its KC x NR panel of B is reused
 *                                         from L1/L2 across the MC/MR panels of A;
 *                                         meanwhile the source of the next block packed is
 *                                         prefetched)
 *
 * Threads: C is cut into a tm x tn grid of rectangles on tile boundaries, a few per thread,
 * handed out dynamically, each running the whole loop nest with private packing buffers. No
 * barriers, no shared writes; the cost is that a B block is packed by each of the tm
 * row-groups (and A by each of the tn column-groups), so the grid is chosen to keep that
 * redundancy small (see choose_grid). Determinism: an element's value depends only on k, KC
 * and the kernel (see the micro-kernel contract), never on which rectangle, tile or thread
 * computes it. Products of at most DG__GEMM_SMALL_M rows skip packing whatever their size and
 * are split along n only (gemm_small_m).
 */
#include "gemm.h"
#include "alloc.h"

#include <pthread.h>
#include <stdlib.h>

#include "dg_config.h"
#include "gemm_kernel.h"

#if DG_HAVE_CBLAS
#include <cblas.h>
/* With -Dblas=enabled, products of at least this many multiply-adds (a 256^3 product) go to
 * the system CBLAS; smaller ones stay here, where call overhead is lower. The built-in kernels
 * never need it. CBLAS threads itself (OPENBLAS_NUM_THREADS), ignoring n_threads, and its
 * results need not match the built-in path bit for bit. */
#define CBLAS_MIN_MACS ((int64_t)1 << 24)
#endif

/* Below this many multiply-adds (about a 64^3 product) the direct kernel wins: packing and
 * thread start-up would cost more than the product itself. Shape-only, so the choice never
 * depends on the thread count. */
#define DIRECT_MAX_MACS ((int64_t)64 * 64 * 64)
/* Do not hand a thread less than this many multiply-adds: OpenMP fork/join costs a few
 * microseconds, which is ~0.5M multiply-adds at this machine's speed. */
#define MIN_MACS_PER_THREAD ((int64_t)1 << 19)
/* Work split: up to CELLS_PER_THREAD rectangles per thread, each at least MIN_MACS_PER_CELL
 * multiply-adds. Every rectangle repeats some packing (its rows of A, its columns of B), a few
 * percent of its time at ~8M multiply-adds, so only large products get more than one per
 * thread. */
#define CELLS_PER_THREAD 4
#define MIN_MACS_PER_CELL ((int64_t)1 << 23)
/* Transposed-B scratch for the direct path: rows of k x columns, on the stack. */
enum { DIRECT_KB = 128, DIRECT_NB = 64 };
/* Small-m products are split across threads along n in multiples of this many columns (the
 * widest column block of the small-m direct kernels). Only for speed: an element's value does
 * not depend on where its thread's columns start. */
enum { SMALL_M_COLUMNS = 128 };
#define SMALL_M_MIN_MACS_PER_THREAD ((int64_t)1 << 16)

struct problem {
    int64_t m, n, k;
    float alpha, beta;
    const float *a;
    int64_t a_row, a_col; /* op(A)(i, p) = a[i*a_row + p*a_col] */
    const float *b;
    int64_t b_row, b_col; /* op(B)(p, j) = b[p*b_row + j*b_col] */
    float *c;
    int64_t ldc;
};

const struct dg__gemm_kernel *dg__gemm_kernel_for(enum dg_isa isa)
{
    enum dg_isa supported = dg__isa_supported();
    if (isa > supported)
        isa = supported;
#if DG_X86_64
    if (isa == DG_ISA_AVX512)
        return &dg__gemm_kernel_avx512;
    if (isa == DG_ISA_AVX2)
        return &dg__gemm_kernel_avx2;
#endif
    return &dg__gemm_kernel_generic;
}

/* ---- Per-thread packing buffers ------------------------------------------------------------
 * One 64-byte-aligned block per thread, grown on demand and kept for the thread's life (freed
 * by a thread-exit destructor), so a steady state allocates nothing per call. OpenMP reuses
 * its worker threads, so the blocks survive across calls. */

struct scratch {
    size_t capacity; /* floats after the header */
};
enum { SCRATCH_HEADER = 64 };

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;

static void scratch_free(void *block) { dg__free(block); }

static void scratch_init(void)
{
    scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
}

/* A 64-byte-aligned buffer of at least `floats` floats owned by this thread, or NULL when
 * memory (or the key) is unavailable; valid until the next call on this thread. */
static float *scratch_get(size_t floats)
{
    pthread_once(&scratch_once, scratch_init);
    if (!scratch_key_ok)
        return NULL;
    struct scratch *block = pthread_getspecific(scratch_key);
    if (block == NULL || block->capacity < floats) {
        size_t bytes = SCRATCH_HEADER + floats * sizeof(float);
        bytes = (bytes + 63) & ~(size_t)63;
        struct scratch *grown = dg__aligned_alloc(64, bytes);
        if (grown == NULL)
            return NULL;
        grown->capacity = floats;
        if (pthread_setspecific(scratch_key, grown) != 0) {
            dg__free(grown);
            return NULL;
        }
        dg__free(block);
        block = grown;
    }
    return (float *)((char *)block + SCRATCH_HEADER);
}

/* ---- Paths ---------------------------------------------------------------------------------- */

static int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }
static int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

/* C = beta * C on rows [m0, m1), columns [n0, n1) (beta == 0 writes zeros without reading). */
static void scale_c(const struct problem *pr, int64_t m0, int64_t m1, int64_t n0, int64_t n1)
{
    for (int64_t i = m0; i < m1; i++) {
        float *row = pr->c + i * pr->ldc;
        for (int64_t j = n0; j < n1; j++)
            row[j] = pr->beta == 0.0f ? 0.0f : pr->beta * row[j];
    }
}

/* The unpacked path over rows [m0, m1), columns [n0, n1). With a transposed B: at most
 * DG__GEMM_SMALL_M rows whose op(A) runs contiguously along k go to the kernel's dot form;
 * otherwise B is first copied, DIRECT_KB x DIRECT_NB at a time, into a row-major block on the
 * stack, and k is summed in DIRECT_KB blocks, always the same blocks for a given k. */
static void gemm_direct(const struct dg__gemm_kernel *kern, const struct problem *pr,
                        int64_t m0, int64_t m1, int64_t n0, int64_t n1)
{
    const float *a = pr->a + m0 * pr->a_row;
    float *c = pr->c + m0 * pr->ldc;
    int64_t rows = m1 - m0;
    if (pr->b_col != 1 && pr->b_row == 1 && pr->a_col == 1 && rows <= DG__GEMM_SMALL_M &&
        kern->dot != NULL) {
        kern->dot(rows, n1 - n0, pr->k, pr->alpha, a, pr->a_row, pr->b + n0 * pr->b_col,
                  pr->b_col, pr->beta, c + n0, pr->ldc);
        return;
    }
    if (pr->b_col == 1) {
        kern->direct(rows, n1 - n0, pr->k, pr->alpha, a, pr->a_row, pr->a_col, pr->b + n0,
                     pr->b_row, pr->beta, c + n0, pr->ldc);
        return;
    }
    float block[DIRECT_KB * DIRECT_NB];
    for (int64_t j = n0; j < n1; j += DIRECT_NB) {
        int64_t width = min64(DIRECT_NB, n1 - j);
        for (int64_t p = 0; p < pr->k; p += DIRECT_KB) {
            int64_t depth = min64(DIRECT_KB, pr->k - p);
            for (int64_t jj = 0; jj < width; jj++) {
                const float *src = pr->b + (j + jj) * pr->b_col + p * pr->b_row;
                for (int64_t pp = 0; pp < depth; pp++)
                    block[pp * DIRECT_NB + jj] = src[pp * pr->b_row];
            }
            kern->direct(rows, width, depth, pr->alpha, a + p * pr->a_col, pr->a_row,
                         pr->a_col, block, DIRECT_NB, p == 0 ? pr->beta : 1.0f, c + j,
                         pr->ldc);
        }
    }
}

/* ---- Prefetching the next block's source ---------------------------------------------------
 * Packing reads memory the product has not touched yet: a weight gradient's 4096-long k
 * streams its whole 10 MB of operands through once, a forward product its 8 MB of input.
 * Packing that waits on those misses took ~10% of such a product at one thread, so while
 * the micro-kernels work on one block, the source of the block packed next is handed to the
 * kernel's micro_prefetch, a share of the lines with each call, which requests them spread
 * over its k loop (issued all at once between calls, the requests queued up behind each
 * other and stalled the kernel's own loads, which cost more than they saved). Kernels
 * without micro_prefetch prefetch nothing. Only speed depends on this, never a value. */

struct prefetch {
    const char *base;        /* first row */
    int64_t row_bytes;       /* stride between rows */
    int64_t run_bytes;       /* contiguous bytes per row */
    int64_t lines_per_row;   /* cache lines requested per row (one spare for alignment) */
    int64_t next, total;     /* lines requested so far, and in all */
};

/* At most one line per PREFETCH_STEPS k steps of a call, and PREFETCH_MAX_LINES a call: denser
 * requests (a 128 x 128 x 4096 weight gradient asked for ~100 lines in a 256-step call) cost
 * the kernel more than the packer saved. What a call cannot take is left to the packer. */
enum { CACHE_LINE = 64, PREFETCH_MAX_LINES = 128, PREFETCH_STEPS = 8 };

/* The source lines of the lanes [0, lanes) x steps [0, kc) of an operand whose element
 * (lane, p) is x[lane*lane_stride + p*k_stride], row by row of memory; empty when neither
 * stride is 1 (no layout the framework passes). */
static struct prefetch prefetch_region(const float *x, int64_t lanes, int64_t kc,
                                       int64_t lane_stride, int64_t k_stride)
{
    struct prefetch pf = {(const char *)x, 0, 0, 0, 0, 0};
    int64_t rows, run, stride;
    if (k_stride == 1) {
        rows = lanes, run = kc, stride = lane_stride;
    } else if (lane_stride == 1) {
        rows = kc, run = lanes, stride = k_stride;
    } else {
        return pf;
    }
    pf.row_bytes = stride * (int64_t)sizeof(float);
    pf.run_bytes = run * (int64_t)sizeof(float);
    pf.lines_per_row = (pf.run_bytes + CACHE_LINE - 1) / CACHE_LINE + 1;
    pf.total = rows * pf.lines_per_row;
    return pf;
}

/* Appends to lines[*count] (capacity `room`) an even share of the lines left, `calls_left`
 * calls (>= 1 while lines are left) before the block is needed. */
static void prefetch_share(struct prefetch *pf, int64_t calls_left, const char **lines,
                           int *count, int room)
{
    if (pf->next >= pf->total)
        return;
    int64_t share = (pf->total - pf->next + calls_left - 1) / calls_left;
    for (; share > 0 && *count < room; share--, pf->next++) {
        int64_t row = pf->next / pf->lines_per_row;
        int64_t offset = min64(pf->next % pf->lines_per_row * CACHE_LINE, pf->run_bytes - 1);
        lines[(*count)++] = pf->base + row * pf->row_bytes + offset;
    }
}

/* Rows per packed block of A for `rows` rows: the kernel's mc stretched by up to a quarter,
 * then the rows cut into blocks of equal whole tiles. A block reuses each KC x NR panel of B
 * across its rows, so a short last block (M = 128 in 120 + 8 rows) fetches every B panel
 * again for one tile; 128 rows as one block of 11 tiles does not. Only speed depends on the
 * blocking, never a value. */
static int64_t rows_per_block(const struct dg__gemm_kernel *kern, int64_t rows)
{
    const int64_t stretched = kern->mc + kern->mc / 4;
    const int64_t blocks = (rows + stretched - 1) / stretched;
    return round_up((rows + blocks - 1) / blocks, kern->mr);
}

/* The micro-kernel calls of one packed A block (rows [ic, ic + mc), at a_packed) against one
 * packed B block (columns [jc, jc + nc), at b_packed) over kc steps, C scaled by beta.
 * next_a is prefetched over these calls, next_b over *b_calls_left calls that may span several
 * blocks (the counter is shared and counts down). */
static void run_block(const struct dg__gemm_kernel *kern, const struct problem *pr,
                      const float *a_packed, const float *b_packed, int64_t ic, int64_t mc,
                      int64_t jc, int64_t nc, int64_t kc, float beta, struct prefetch *next_a,
                      struct prefetch *next_b, int64_t *b_calls_left)
{
    const int64_t mr = kern->mr, nr = kern->nr;
    int64_t a_calls_left = (nc + nr - 1) / nr * ((mc + mr - 1) / mr);
    for (int64_t jr = 0; jr < nc; jr += nr) {
        const int n_valid = (int)min64(nr, nc - jr);
        for (int64_t ir = 0; ir < mc; ir += mr) {
            float *c = pr->c + (ic + ir) * pr->ldc + jc + jr;
            const int m_valid = (int)min64(mr, mc - ir);
            if (kern->micro_prefetch == NULL) {
                kern->micro(kc, a_packed + ir * kc, b_packed + jr * kc, pr->alpha, beta, c,
                            pr->ldc, m_valid, n_valid);
                continue;
            }
            const char *lines[PREFETCH_MAX_LINES];
            int n_lines = 0;
            const int room = (int)min64(PREFETCH_MAX_LINES, kc / PREFETCH_STEPS);
            prefetch_share(next_a, a_calls_left--, lines, &n_lines, room);
            prefetch_share(next_b, (*b_calls_left)--, lines, &n_lines, room);
            kern->micro_prefetch(kc, a_packed + ir * kc, b_packed + jr * kc, pr->alpha, beta,
                                 c, pr->ldc, m_valid, n_valid, lines, n_lines);
        }
    }
}

/* The source of op(A)'s rows [i0, i0 + rows) x steps [p0, p0 + steps), as a prefetch. */
static struct prefetch a_region(const struct problem *pr, int64_t i0, int64_t rows, int64_t p0,
                                int64_t steps)
{
    return prefetch_region(pr->a + i0 * pr->a_row + p0 * pr->a_col, rows, steps, pr->a_row,
                           pr->a_col);
}

/* Packed B of at most this many floats (256 KiB, a quarter of L2) is packed whole, for all of
 * k, when it holds every column: then each block of rows of A runs all its k blocks in turn,
 * and its block of C stays in L2 between them, instead of all of C (2 MB for 4096 x 128)
 * going out to L3 after each k block and coming back for the next. */
#define RESIDENT_B_FLOATS ((int64_t)1 << 16)

/* The packed path over rows [m0, m1), columns [n0, n1). Returns false, having written
 * nothing, when the packing buffer cannot be allocated. */
static bool gemm_packed(const struct dg__gemm_kernel *kern, const struct problem *pr,
                        int64_t m0, int64_t m1, int64_t n0, int64_t n1)
{
    const int64_t mr = kern->mr, nr = kern->nr;
    const int64_t kc_max = min64(kern->kc, pr->k);
    const int64_t mc_max = rows_per_block(kern, m1 - m0);
    const int64_t n_pad = round_up(min64(kern->nc, n1 - n0), nr);
    const bool b_resident = pr->k > kern->kc && n1 - n0 <= kern->nc &&
                            n_pad * pr->k <= RESIDENT_B_FLOATS;
    const int64_t a_floats = round_up(min64(mc_max, m1 - m0), mr) * kc_max;
    const int64_t b_floats = n_pad * (b_resident ? pr->k : kc_max);
    float *a_packed = scratch_get((size_t)(a_floats + b_floats));
    if (a_packed == NULL)
        return false;
    float *b_packed = a_packed + a_floats; /* a_floats is a multiple of 16: stays aligned */

    if (b_resident) {
        /* k block pc of B at b_packed + pc * n_pad (every block before it is kc_max deep). */
        for (int64_t pc = 0; pc < pr->k; pc += kern->kc)
            kern->pack_b((int)nr, min64(kern->kc, pr->k - pc), n1 - n0,
                         pr->b + pc * pr->b_row + n0 * pr->b_col, pr->b_row, pr->b_col,
                         b_packed + pc * n_pad);
        struct prefetch no_b = {0};
        int64_t no_b_calls = 0; /* counts down, unused: no_b is empty */
        for (int64_t ic = m0; ic < m1; ic += mc_max) {
            const int64_t mc = min64(mc_max, m1 - ic);
            for (int64_t pc = 0; pc < pr->k; pc += kern->kc) {
                const int64_t kc = min64(kern->kc, pr->k - pc);
                kern->pack_a((int)mr, mc, kc, pr->a + ic * pr->a_row + pc * pr->a_col,
                             pr->a_row, pr->a_col, a_packed);
                /* Packed next: this block's next k block, else the next rows' first. */
                struct prefetch next_a = {0};
                if (pc + kern->kc < pr->k)
                    next_a = a_region(pr, ic, mc, pc + kern->kc,
                                      min64(kern->kc, pr->k - pc - kern->kc));
                else if (ic + mc_max < m1)
                    next_a = a_region(pr, ic + mc_max, min64(mc_max, m1 - ic - mc_max), 0,
                                      kc_max);
                run_block(kern, pr, a_packed, b_packed + pc * n_pad, ic, mc, n0, n1 - n0, kc,
                          pc == 0 ? pr->beta : 1.0f, &next_a, &no_b, &no_b_calls);
            }
        }
        return true;
    }

    for (int64_t jc = n0; jc < n1; jc += kern->nc) {
        const int64_t nc = min64(kern->nc, n1 - jc);
        for (int64_t pc = 0; pc < pr->k; pc += kern->kc) {
            const int64_t kc = min64(kern->kc, pr->k - pc);
            const float beta = pc == 0 ? pr->beta : 1.0f;
            kern->pack_b((int)nr, kc, nc, pr->b + pc * pr->b_row + jc * pr->b_col,
                         pr->b_row, pr->b_col, b_packed);
            /* The block of B packed after this one: the next k block, else the next
             * columns' first; requested over all of this block's micro-kernel calls. */
            int64_t next_jc = jc, next_pc = pc + kern->kc;
            if (next_pc >= pr->k)
                next_jc += kern->nc, next_pc = 0;
            struct prefetch next_b = {0};
            if (next_jc < n1)
                next_b = prefetch_region(pr->b + next_pc * pr->b_row + next_jc * pr->b_col,
                                         min64(kern->nc, n1 - next_jc),
                                         min64(kern->kc, pr->k - next_pc), pr->b_col,
                                         pr->b_row);
            int64_t b_calls_left = (nc + nr - 1) / nr * ((m1 - m0 + mr - 1) / mr);
            for (int64_t ic = m0; ic < m1; ic += mc_max) {
                const int64_t mc = min64(mc_max, m1 - ic);
                kern->pack_a((int)mr, mc, kc, pr->a + ic * pr->a_row + pc * pr->a_col,
                             pr->a_row, pr->a_col, a_packed);
                /* The block of A packed next: the next rows, else the first rows of the
                 * next B block; requested over this block's calls. */
                struct prefetch next_a = {0};
                if (ic + mc_max < m1)
                    next_a = a_region(pr, ic + mc_max, min64(mc_max, m1 - ic - mc_max), pc, kc);
                else if (next_jc < n1)
                    next_a = a_region(pr, m0, min64(mc_max, m1 - m0), next_pc,
                                      min64(kern->kc, pr->k - next_pc));
                run_block(kern, pr, a_packed, b_packed, ic, mc, jc, nc, kc, beta, &next_a,
                          &next_b, &b_calls_left);
            }
        }
    }
    return true;
}

static void gemm_rect(const struct dg__gemm_kernel *kern, const struct problem *pr,
                      bool direct, int64_t m0, int64_t m1, int64_t n0, int64_t n1)
{
    if (m0 >= m1 || n0 >= n1)
        return;
    if (direct || !gemm_packed(kern, pr, m0, m1, n0, n1))
        gemm_direct(kern, pr, m0, m1, n0, n1);
}

/* ---- Threading ------------------------------------------------------------------------------ */

struct grid {
    int rows, cols; /* tm x tn rectangles */
};

/* The tm x tn grid of exactly `cells` rectangles that minimises the largest rectangle's
 * estimated time: its tile area (padding included) plus the packing it repeats, weighted as
 * ~16 multiply-adds per packed element per k step. {0, 0} when no grid has every rectangle
 * at least one tile in each direction. */
static struct grid choose_grid(const struct dg__gemm_kernel *kern, int64_t m, int64_t n,
                               int cells)
{
    const int64_t m_tiles = (m + kern->mr - 1) / kern->mr;
    const int64_t n_tiles = (n + kern->nr - 1) / kern->nr;
    struct grid best = {0, 0};
    double best_cost = -1.0;
    for (int tm = 1; tm <= cells; tm++) {
        if (cells % tm != 0)
            continue;
        int tn = cells / tm;
        if (tm > m_tiles || tn > n_tiles)
            continue;
        double rows = (double)((m_tiles + tm - 1) / tm * kern->mr);
        double cols = (double)((n_tiles + tn - 1) / tn * kern->nr);
        double cost = rows * cols + 16.0 * (rows + cols);
        if (best_cost < 0.0 || cost < best_cost) {
            best_cost = cost;
            best = (struct grid){tm, tn};
        }
    }
    return best;
}

/* The grid for `threads` threads: CELLS_PER_THREAD rectangles per thread when each still holds
 * MIN_MACS_PER_CELL of work, handed out dynamically, so that a thread delayed by another
 * process (two cores shared with the rest of a training program) does not hold the others
 * up; fewer otherwise, down to one per thread (or a single one). */
static struct grid grid_for(const struct dg__gemm_kernel *kern, const struct problem *pr,
                            int threads)
{
    const int64_t macs = pr->m * pr->n * pr->k;
    int cells = threads * CELLS_PER_THREAD;
    while (cells > threads && macs / cells < MIN_MACS_PER_CELL)
        cells /= 2;
    for (; cells >= 1; cells--) {
        struct grid grid = choose_grid(kern, pr->m, pr->n, cells);
        if (grid.rows > 0)
            return grid;
    }
    return (struct grid){1, 1};
}

/* Threads worth starting for this problem: at most n_threads, at least one, and no more than
 * the work justifies. */
static int threads_for(const struct problem *pr, int n_threads)
{
    int64_t macs = pr->m * pr->n * pr->k;
    int64_t useful = macs / MIN_MACS_PER_THREAD;
    int threads = n_threads < 1 ? 1 : n_threads;
    if (useful < threads)
        threads = useful < 1 ? 1 : (int)useful;
    return threads;
}

/* Splits `tiles` tiles into `parts` contiguous runs; the bounds of run `index`, in elements. */
static void split(int64_t tiles, int parts, int index, int64_t tile, int64_t total,
                  int64_t *lo, int64_t *hi)
{
    *lo = min64(tiles * index / parts * tile, total);
    *hi = min64(tiles * (index + 1) / parts * tile, total);
}

/* Rectangle `index` (row-major) of the grid, on tile boundaries. */
static void gemm_grid_cell(const struct dg__gemm_kernel *kern, const struct problem *pr,
                           struct grid grid, int index)
{
    const int64_t m_tiles = (pr->m + kern->mr - 1) / kern->mr;
    const int64_t n_tiles = (pr->n + kern->nr - 1) / kern->nr;
    int64_t m0, m1, n0, n1;
    split(m_tiles, grid.rows, index / grid.cols, kern->mr, pr->m, &m0, &m1);
    split(n_tiles, grid.cols, index % grid.cols, kern->nr, pr->n, &n0, &n1);
    gemm_rect(kern, pr, false, m0, m1, n0, n1);
}

/* Products of at most DG__GEMM_SMALL_M rows, whatever n and k: always the direct (or dot)
 * kernel, since packing would copy all of B to use each packed element m times. A transposed
 * A under a transposed B is first gathered into contiguous rows (m x k floats of this
 * thread's scratch) so that the dot kernel can read it; should that allocation fail, the
 * direct path's copy of B serves instead (slower, and summed in another order). Work is
 * split along n, in SMALL_M_COLUMNS blocks, over the threads the size justifies. */
static void gemm_small_m(const struct dg__gemm_kernel *kern, const struct problem *pr,
                         int n_threads)
{
    struct problem local = *pr;
    if (pr->b_col != 1 && pr->a_col != 1 && kern->dot != NULL) {
        float *rows = scratch_get((size_t)(pr->m * pr->k));
        if (rows != NULL) {
            for (int64_t p = 0; p < pr->k; p++)
                for (int64_t i = 0; i < pr->m; i++)
                    rows[i * pr->k + p] = pr->a[i * pr->a_row + p * pr->a_col];
            local.a = rows;
            local.a_row = pr->k;
            local.a_col = 1;
        }
    }
    const int64_t blocks = (pr->n + SMALL_M_COLUMNS - 1) / SMALL_M_COLUMNS;
    /* A few rows do little arithmetic per element of B, so these products are bound by reading
     * B: each thread streams its own columns of B through its own core's cache, and a split
     * pays off from SMALL_M_MIN_MACS_PER_THREAD on (an eighth of the general threshold). */
    int64_t useful = pr->m * pr->n * pr->k / SMALL_M_MIN_MACS_PER_THREAD;
    const int threads = useful < 1 ? 1 : useful < n_threads ? (int)useful : n_threads;
    const int parts = threads < blocks ? threads : (int)blocks;
    if (parts <= 1) {
        gemm_direct(kern, &local, 0, pr->m, 0, pr->n);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(parts) schedule(static)
#endif
    for (int part = 0; part < parts; part++) {
        int64_t n0, n1;
        split(blocks, parts, part, SMALL_M_COLUMNS, pr->n, &n0, &n1);
        gemm_direct(kern, &local, 0, pr->m, n0, n1);
    }
}

static void gemm_run(const struct dg__gemm_kernel *kern, const struct problem *pr,
                     int n_threads)
{
    if (pr->m <= 0 || pr->n <= 0)
        return;
    if (pr->k == 0 || pr->alpha == 0.0f) {
        scale_c(pr, 0, pr->m, 0, pr->n);
        return;
    }
    if (pr->m <= DG__GEMM_SMALL_M) {
        gemm_small_m(kern, pr, n_threads);
        return;
    }
    const bool direct = pr->m * pr->n * pr->k <= DIRECT_MAX_MACS;
    const int threads = direct ? 1 : threads_for(pr, n_threads);
    if (threads <= 1) {
        gemm_rect(kern, pr, direct, 0, pr->m, 0, pr->n);
        return;
    }
    const struct grid grid = grid_for(kern, pr, threads);
    const int cells = grid.rows * grid.cols;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads < cells ? threads : cells) schedule(dynamic, 1)
#endif
    for (int cell = 0; cell < cells; cell++)
        gemm_grid_cell(kern, pr, grid, cell);
}

static struct problem make_problem(bool transpose_a, bool transpose_b, int64_t m, int64_t n,
                                   int64_t k, float alpha, const float *a, int64_t lda,
                                   const float *b, int64_t ldb, float beta, float *c,
                                   int64_t ldc)
{
    return (struct problem){
        .m = m, .n = n, .k = k, .alpha = alpha, .beta = beta,
        .a = a, .a_row = transpose_a ? 1 : lda, .a_col = transpose_a ? lda : 1,
        .b = b, .b_row = transpose_b ? 1 : ldb, .b_col = transpose_b ? ldb : 1,
        .c = c, .ldc = ldc,
    };
}

void dg__sgemm_isa(enum dg_isa isa, bool transpose_a, bool transpose_b, int64_t m, int64_t n,
                   int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                   int64_t ldb, float beta, float *c, int64_t ldc, int n_threads)
{
    struct problem pr = make_problem(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb,
                                     beta, c, ldc);
    gemm_run(dg__gemm_kernel_for(isa), &pr, n_threads);
}

void dg__sgemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
               int64_t ldc, int n_threads)
{
#if DG_HAVE_CBLAS
    if (m * n * k >= CBLAS_MIN_MACS && m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX &&
        lda <= INT32_MAX && ldb <= INT32_MAX && ldc <= INT32_MAX) {
        cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans,
                    transpose_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a,
                    (int)lda, b, (int)ldb, beta, c, (int)ldc);
        return;
    }
#endif
    dg__sgemm_isa(dg__isa(), transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c,
                  ldc, n_threads);
}

/* Problems too small to split are spread over the batch instead (each on one thread); larger
 * ones run one after another, each split across the threads. Either way each problem's result
 * is the same as dg__sgemm's, whatever n_threads. stride_c == 0 with batch > 1 (every problem
 * writing the same C) is run in order, on one thread, so the last write wins predictably. */
void dg__sgemm_batched(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                       float alpha, const float *a, int64_t lda, int64_t stride_a,
                       const float *b, int64_t ldb, int64_t stride_b, float beta, float *c,
                       int64_t ldc, int64_t stride_c, int64_t batch, int n_threads)
{
    if (batch <= 0)
        return;
    const struct dg__gemm_kernel *kern = dg__gemm_kernel_for(dg__isa());
    struct problem pr = make_problem(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb,
                                     beta, c, ldc);
    const bool split_batch = stride_c != 0 && batch > 1 && n_threads > 1 &&
                             threads_for(&pr, n_threads) < n_threads;
    if (!split_batch) {
        for (int64_t i = 0; i < batch; i++) {
            struct problem one = pr;
            one.a = a + i * stride_a;
            one.b = b + i * stride_b;
            one.c = c + i * stride_c;
            gemm_run(kern, &one, stride_c == 0 ? 1 : n_threads);
        }
        return;
    }
    const int threads = (int64_t)n_threads < batch ? n_threads : (int)batch;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
    for (int64_t i = 0; i < batch; i++) {
        struct problem one = pr;
        one.a = a + i * stride_a;
        one.b = b + i * stride_b;
        one.c = c + i * stride_c;
        gemm_run(kern, &one, 1);
    }
    (void)threads;
}
