/*
 * The fused recurrent layers' shared kernel-side helpers and first-order rule pieces
 * (recurrent_seq.h): used by lstm.c and gru.c.
 */
#include "recurrent_seq.h"
#include "layout_attrs.h"

bool dg__seq_is_f32(const struct dg_shape *s, int ndim)
{
    return s->dtype == DG_F32 && s->ndim == ndim;
}

bool dg__seq_is_state(const struct dg_shape *s, int64_t batch, int64_t hidden)
{
    return dg__seq_is_f32(s, 2) && s->dim[0] == batch && s->dim[1] == hidden;
}

int64_t dg__seq_round16(int64_t floats) { return (floats + 15) / 16 * 16; }

int64_t dg__seq_packed_weight_floats(int64_t batch, int64_t k, int64_t n, int n_threads)
{
    return dg__seq_round16(dg__gemm_packed_b_floats(k, n)) +
           dg__gemm_packed_a_floats(batch, k, n_threads);
}

struct dg__seq_packed_weight dg__seq_pack_weight(float *ws, int64_t head, bool transpose,
                                                 int64_t batch, int64_t k, int64_t n,
                                                 const float *w, int64_t ldw)
{
    struct dg__seq_packed_weight pw;
    float *packed = ws + dg__seq_round16(head);
    dg__gemm_pack_b_once(transpose, k, n, w, ldw, packed, &pw.b);
    pw.a_scratch = packed + dg__seq_round16(dg__gemm_packed_b_floats(k, n));
    pw.a_floats = dg__gemm_packed_a_floats(batch, k, 1);
    return pw;
}

int dg__seq_rows_threads(const struct dg_exec_ctx *ctx, int64_t batch, int64_t hidden,
                         int64_t cost)
{
    int threads = dg__threads_for(ctx, batch * hidden * cost);
    return threads < batch ? threads : (int)batch;
}

/* Rows (and multiply-adds per step) of a part below which a block split does not pay: a
 * part's rows past its last whole micro-tile take the slower direct kernel, and thread
 * start-up would cost more than the block saves. (Correctness does not depend on them: the
 * prepacked GEMM gives every split the same bits.) */
enum { PART_MIN_ROWS = 8 };
#define PART_MIN_MACS ((int64_t)2 * 64 * 64 * 64)

/* A per-step split of the GEMM and the gates costs two fork/joins per step, which a busy
 * machine turns into milliseconds: blocks of rows avoid them where each is large enough. */
int dg__seq_batch_parts(const struct dg_exec_ctx *ctx, int64_t batch, int64_t hidden,
                        int64_t gates)
{
    int64_t parts = ctx->n_threads;
    if (parts > batch / PART_MIN_ROWS)
        parts = batch / PART_MIN_ROWS;
    if (parts < 2 || batch / parts * gates * hidden * hidden < PART_MIN_MACS)
        return 1;
    return (int)parts;
}

void dg__seq_run(const struct dg_exec_ctx *ctx, int64_t batch, int64_t hidden, int64_t gates,
                 int64_t cost, dg__seq_range_fn range, const void *job,
                 const struct dg__seq_packed_weight *w)
{
    const int parts = dg__seq_batch_parts(ctx, batch, hidden, gates);
    if (parts <= 1) {
        range(job, 0, batch, ctx->n_threads, dg__seq_rows_threads(ctx, batch, hidden, cost),
              w != NULL ? w->a_scratch : NULL);
        return;
    }
#pragma omp parallel for num_threads(parts) schedule(static)
    for (int part = 0; part < parts; part++)
        range(job, batch * part / parts, batch * (part + 1) / parts, 1, 1,
              w != NULL ? w->a_scratch + part * w->a_floats : NULL);
}

void dg__seq_split_rows(dg__seq_rows_fn rows, const void *step, int64_t b0, int64_t b1,
                        int point_threads)
{
    if (point_threads <= 1) {
        rows(step, b0, b1);
        return;
    }
#pragma omp parallel for num_threads(point_threads) schedule(static)
    for (int part = 0; part < point_threads; part++)
        rows(step, b0 + (b1 - b0) * part / point_threads,
             b0 + (b1 - b0) * (part + 1) / point_threads);
}

/* ---- first-order rule's graph pieces -------------------------------------------------------- */

dg_node *dg__seq_flat(dg_graph *g, dg_node *x, int64_t width)
{
    return dg_reshape(g, x, 2, (int64_t[]){-1, width});
}

dg_node *dg__seq_gradient_of_output(dg_node *node, dg_node *grad, int64_t H)
{
    if (grad == NULL || dg__node_def(grad) != &dg_op_pad_slice || dg__input(grad, 1) != node)
        return grad;
    const struct dg_slice_attrs *range = dg__attrs(grad);
    return range->axis == 2 && range->start == 0 && range->end == H ? dg__input(grad, 0)
                                                                     : grad;
}

dg_node *dg__seq_h_sequence(dg_graph *g, dg_node *node, int64_t H)
{
    const int n = dg_graph_node_count(g);
    for (int i = dg_node_index(node) + 1; i < n; i++) {
        dg_node *other = dg_graph_node(g, i);
        if (dg_node_kind_of(other) != DG_NODE_OP || dg__node_def(other) != &dg_op_slice ||
            dg__input(other, 0) != node)
            continue;
        const struct dg_slice_attrs *range = dg__attrs(other);
        if (range->axis == 2 && range->start == 0 && range->end == H)
            return other;
    }
    return dg_slice(g, node, 2, 0, H);
}

dg_node *dg__seq_h_prev(dg_graph *g, dg_node *h_seq, dg_node *h0, int64_t T, int64_t H)
{
    if (T == 1)
        return h0 ? dg_reshape(g, h0, 3, (int64_t[]){-1, 1, H}) : NULL;
    if (h0 != NULL)
        return dg_concat(g, 2, (dg_node *[]){dg_reshape(g, h0, 3, (int64_t[]){-1, 1, H}),
                                             dg_slice(g, h_seq, 1, 0, T - 1)}, 1);
    struct dg_slice_attrs shift = {.axis = 1, .start = 1, .end = T};
    return dg__make_node(g, DG_OP_pad_slice, 2,
                         (dg_node *[]){dg_slice(g, h_seq, 1, 0, T - 1), h_seq}, &shift);
}
