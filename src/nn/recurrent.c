/*
 * Recurrent layers (vanilla tanh RNN, LSTM, GRU), single or stacked, from public ops: the LSTM's
 * recurrence is one fused dg_lstm_seq op, the GRU's one fused dg_gru_seq op, the tanh RNN is
 * unrolled over time. Equations, gate order and parameter shapes are PyTorch's
 * (torch.nn.RNN / LSTM / GRU, batch_first), so a state_dict's tensors load unchanged:
 *
 *   per layer l (input size F for l = 0, H above), parameters "<name>.weight_ih_l<l>" [G*H, F],
 *   "<name>.weight_hh_l<l>" [G*H, H], "<name>.bias_ih_l<l>" [G*H], "<name>.bias_hh_l<l>" [G*H],
 *   with G = 1 (RNN), 4 (LSTM: i, f, g, o), 3 (GRU: r, z, n).
 *
 *   RNN:  h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)
 *   LSTM: [i f g o] = x W_ih^T + b_ih + h W_hh^T + b_hh
 *         i, f, o = sigmoid(.), g = tanh(.); c' = f * c + i * g; h' = o * tanh(c')
 *   GRU:  [r z] = sigmoid(x W_i{r,z}^T + b_i{r,z} + h W_h{r,z}^T + b_h{r,z})
 *         n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)); h' = (1 - z) * n + z * h
 *
 * The input projection of all time steps is one matmul ([B,T,F] x W_ih^T -> [B,T,G*H]), or
 * over an embedding lookup from a small table, the lookup of the projected table (project). The
 * LSTM hands it, the summed biases and the states to dg_lstm_seq, whose packed [B,T,6H] output
 * is sliced into the h sequence and the final states; the GRU hands it, b_ih, b_hh (kept apart:
 * the reset gate multiplies h W_hn^T + b_hn) and h0 to dg_gru_seq ([B,T,5H] packed output).
 * The RNN steps slice their row (a view), add the recurrent matmul and apply tanh; a missing
 * initial state means zeros and its terms are left out of the graph (no zero tensors). Why
 * the LSTM and GRU are fused and what it measured: docs/sequence-models.md ("Unrolled or
 * fused").
 */
#include "dagrad.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

/* Reports through the public sticky error (nn does not need the ops layer's dg__fail). */
#define FAIL(g, status, ...) (dg_graph_set_error((g), (status), __VA_ARGS__), (dg_node *)NULL)

static const char *const cell_names[] = {
    [DG_CELL_RNN_TANH] = "rnn", [DG_CELL_LSTM] = "lstm", [DG_CELL_GRU] = "gru",
};

static int gate_count(dg_cell_kind cell)
{
    return cell == DG_CELL_LSTM ? 4 : cell == DG_CELL_GRU ? 3 : 1;
}

/* x W^T for x [B,T,F]: one matmul, or where x is an embedding lookup of a table E with fewer
 * rows than x (a character vocabulary), the lookup of the projected table, (E W^T + bias)[idx]:
 * the same dot products, made once per vocabulary entry instead of once per position, and a
 * backward whose GEMMs (and bias sum) have E's rows instead of B*T (the rows' gradients
 * summed per entry by the lookup's scatter-add first). *bias (may be NULL) is then folded
 * into the table and set to NULL; the caller adds what is left. */
static dg_node *project(dg_graph *g, dg_node *x, dg_node *w, dg_node **bias)
{
    if (strcmp(dg_node_op_name(x), "embedding") == 0) {
        dg_node *table = dg_node_input(x, 0), *indices = dg_node_input(x, 1);
        if (dg_node_dim(table, 0) < dg_node_dim(x, 0) * dg_node_dim(x, 1)) {
            dg_node *projected = dg_matmul_ex(g, table, w, false, true);
            if (*bias != NULL)
                projected = dg_add(g, projected, *bias);
            *bias = NULL;
            return dg_embedding(g, projected, indices);
        }
    }
    return dg_matmul_ex(g, x, w, false, true);
}

/* The parameter `name` of the given shape: found when an earlier call created it (a second
 * graph section sharing the layer, e.g. a one-step decode graph), else created and drawn from
 * U(-bound, bound) when rng is not NULL. A node of that name with another shape or kind is an
 * error. */
static dg_node *layer_param(dg_graph *g, const char *what, const char *name, int ndim,
                            const int64_t *shape, dg_rng *rng, float bound)
{
    /* Called only while the graph has no error, so the NOT_FOUND a miss leaves can go. */
    dg_node *p = dg_graph_find(g, name);
    if (p == NULL)
        dg_graph_clear_error(g);
    if (p != NULL) {
        bool same = dg_node_kind_of(p) == DG_NODE_PARAM && dg_node_ndim(p) == ndim;
        for (int i = 0; same && i < ndim; i++)
            same = dg_node_dim(p, i) == shape[i];
        if (!same)
            return FAIL(g, DG_ERR_SHAPE, "%s: node %d '%s' exists but is not a parameter "
                            "of shape [%lld%s%lld]", what, dg_node_index(p), name,
                            (long long)shape[0], ndim > 1 ? "," : "",
                            ndim > 1 ? (long long)shape[1] : 0LL);
        return p;
    }
    p = dg_param(g, name, ndim, shape);
    if (p != NULL && rng != NULL && dg_init_uniform(p, rng, -bound, bound) != DG_OK)
        return NULL;
    return p;
}

/* A row block [lo, hi) of the last axis. */
static dg_node *cols(dg_graph *g, dg_node *x, int64_t lo, int64_t hi)
{
    return dg_slice(g, x, dg_node_ndim(x) - 1, lo, hi);
}

/* Adds b to a, where a may be NULL (a missing term). */
static dg_node *add_opt(dg_graph *g, dg_node *a, dg_node *b)
{
    return a == NULL ? b : dg_add(g, a, b);
}

/* Columns [lo, hi) of a one-step [B,1,W] value, as [B, hi - lo]. */
static dg_node *flat_step(dg_graph *g, dg_node *step, int64_t lo, int64_t hi)
{
    return dg_reshape(g, cols(g, step, lo, hi), 2, (int64_t[]){-1, hi - lo});
}

struct layer {
    dg_node *w_ih, *w_hh, *b_ih, *b_hh;
};

/* One step of the tanh RNN (the LSTM and GRU are fused ops). xw: x W_ih^T + b_ih + b_hh for
 * this step [B, H]; h: the previous state or NULL (zeros). Returns the new state. */
static dg_node *rnn_step(dg_graph *g, const struct layer *L, dg_node *xw, dg_node *h)
{
    dg_node *hw = h ? dg_matmul_ex(g, h, L->w_hh, false, true) : NULL;
    return dg_tanh(g, add_opt(g, hw, xw));
}

static bool check_state(dg_graph *g, const char *what, const char *kind, int layer,
                        dg_node *s, dg_node *x, int64_t H)
{
    if (s == NULL)
        return true;
    if (dg_node_graph(s) != g) {
        dg_graph_set_error(g, DG_ERR_FOREIGN_NODE, "%s: %s of layer %d belongs to another graph", what,
                 kind, layer);
        return false;
    }
    if (dg_node_dtype(s) != DG_F32 || dg_node_ndim(s) != 2 || dg_node_dim(s, 1) != H ||
        dg_node_dim(s, 0) != dg_node_dim(x, 0)) {
        dg_graph_set_error(g, DG_ERR_SHAPE, "%s: %s of layer %d must be float32 [%lld,%lld] "
                 "([batch, hidden]), got %d dims [%lld,...]", what, kind, layer,
                 (long long)dg_node_dim(x, 0), (long long)H, dg_node_ndim(s),
                 (long long)dg_node_dim(s, 0));
        return false;
    }
    return true;
}

static dg_node *recurrent_in_scope(dg_graph *g, dg_cell_kind cell, dg_node *x, int64_t H,
                                   int n_layers, dg_node *const *h0, dg_node *const *c0,
                                   const char *name, dg_rng *rng, dg_node **h_n, dg_node **c_n)
{
    char what[160];
    snprintf(what, sizeof what, "%s '%s'", cell_names[cell], name);
    if (x == NULL)
        return FAIL(g, DG_ERR_INVALID_ARG, "%s: input is NULL", what);
    if (dg_node_graph(x) != g)
        return FAIL(g, DG_ERR_FOREIGN_NODE, "%s: input belongs to another graph", what);
    if (dg_node_ndim(x) != 3 || dg_node_dtype(x) != DG_F32)
        return FAIL(g, DG_ERR_SHAPE, "%s: input must be float32 [batch, time, features], "
                        "got %d dimensions", what, dg_node_ndim(x));
    int64_t T = dg_node_dim(x, 1);
    if (T < 1)
        return FAIL(g, DG_ERR_SHAPE, "%s: input has %lld time steps", what, (long long)T);
    for (int l = 0; l < n_layers; l++)
        if (!check_state(g, what, "h0", l, h0 ? h0[l] : NULL, x, H) ||
            !check_state(g, what, "c0", l, c0 ? c0[l] : NULL, x, H))
            return NULL;

    int G = gate_count(cell);
    float bound = 1.0f / sqrtf((float)H);
    dg_node *seq = x;
    dg_node **steps = dg__malloc((size_t)T * sizeof *steps);
    if (steps == NULL)
        return FAIL(g, DG_ERR_NOMEM, "%s: out of memory for %lld steps", what,
                        (long long)T);
    for (int l = 0; l < n_layers && seq != NULL; l++) {
        int64_t F = dg_node_dim(seq, 2);
        char pname[4][256];
        const char *suffix[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
        for (int k = 0; k < 4; k++)
            snprintf(pname[k], sizeof pname[k], "%s.%s_l%d", name, suffix[k], l);
        struct layer L;
        /* PyTorch's reset_parameters draws the four in this order. */
        L.w_ih = layer_param(g, what, pname[0], 2, (int64_t[]){G * H, F}, rng, bound);
        L.w_hh = layer_param(g, what, pname[1], 2, (int64_t[]){G * H, H}, rng, bound);
        L.b_ih = layer_param(g, what, pname[2], 1, (int64_t[]){G * H}, rng, bound);
        L.b_hh = layer_param(g, what, pname[3], 1, (int64_t[]){G * H}, rng, bound);
        if (L.w_ih == NULL || L.w_hh == NULL || L.b_ih == NULL || L.b_hh == NULL)
            break;
        /* Both biases in one [G*H] vector first (one pass over [B,T,G*H], one bias
         * gradient reduction); the GRU's op takes them apart (b_hh on the recurrent side). */
        dg_node *bias = cell == DG_CELL_GRU ? L.b_ih : dg_add(g, L.b_ih, L.b_hh);
        dg_node *xw = project(g, seq, L.w_ih, &bias); /* bias: NULL where folded into xw */
        dg_node *h = h0 ? h0[l] : NULL, *c = c0 ? c0[l] : NULL;
        if (cell == DG_CELL_LSTM) {
            /* One fused op for the recurrence, the bias added inside it (see "Unrolled or
             * fused" in docs/sequence-models.md). */
            dg_node *y = dg_lstm_seq(g, xw, L.w_hh, bias, h, c);
            seq = dg_slice(g, y, 2, 0, H);
            if (h_n)
                h_n[l] = flat_step(g, dg_slice(g, y, 1, T - 1, T), 0, H);
            if (c_n)
                c_n[l] = flat_step(g, dg_slice(g, y, 1, T - 1, T), H, 2 * H);
            continue;
        }
        if (cell == DG_CELL_GRU) {
            /* One fused op, both biases added inside it (b_hh on the recurrent side; b_ih
             * folded into xw by project where it could). */
            dg_node *y = dg_gru_seq(g, xw, L.w_hh, bias, L.b_hh, h);
            seq = dg_slice(g, y, 2, 0, H);
            if (h_n)
                h_n[l] = flat_step(g, dg_slice(g, y, 1, T - 1, T), 0, H);
            continue;
        }
        if (bias != NULL)
            xw = dg_add(g, xw, bias);
        for (int64_t t = 0; t < T; t++) {
            dg_node *xt = dg_reshape(g, dg_slice(g, xw, 1, t, t + 1), 2, (int64_t[]){-1, H});
            h = rnn_step(g, &L, xt, h);
            steps[t] = h;
        }
        if (h_n)
            h_n[l] = h;
        seq = T == 1 ? steps[0] : dg_concat(g, (int)T, steps, 1);
        seq = dg_reshape(g, seq, 3, (int64_t[]){-1, T, H});
    }
    dg__free(steps);
    return dg_graph_status(g) == DG_OK ? seq : NULL;
}

dg_node *dg_recurrent(dg_graph *g, dg_cell_kind cell, dg_node *x, int64_t hidden, int n_layers,
                      dg_node *const *h0, dg_node *const *c0, const char *name, dg_rng *rng,
                      dg_node **h_n, dg_node **c_n)
{
    if (g == NULL || dg_graph_status(g) != DG_OK)
        return NULL;
    if (cell < DG_CELL_RNN_TANH || cell > DG_CELL_GRU)
        return FAIL(g, DG_ERR_INVALID_ARG, "recurrent: unknown cell kind %d", (int)cell);
    if (name == NULL || *name == '\0')
        return FAIL(g, DG_ERR_INVALID_ARG, "%s: name is NULL or empty", cell_names[cell]);
    if (hidden <= 0 || n_layers < 1 || n_layers > 64)
        return FAIL(g, DG_ERR_INVALID_ARG, "%s '%s': hidden %lld must be > 0 and layers "
                        "%d in 1..64", cell_names[cell], name, (long long)hidden, n_layers);
    if (c0 != NULL && cell != DG_CELL_LSTM)
        return FAIL(g, DG_ERR_INVALID_ARG, "%s '%s': only an LSTM has a cell state c0",
                        cell_names[cell], name);
    if (dg_scope_push(g, name) != DG_OK)
        return NULL;
    dg_node *out = recurrent_in_scope(g, cell, x, hidden, n_layers, h0, c0, name, rng, h_n,
                                      c_n);
    dg_scope_pop(g);
    return out;
}

dg_node *dg_lstm(dg_graph *g, dg_node *x, int64_t hidden, dg_node *h0, dg_node *c0,
                 const char *name, dg_rng *rng, dg_node **h_n, dg_node **c_n)
{
    return dg_recurrent(g, DG_CELL_LSTM, x, hidden, 1, h0 ? &h0 : NULL, c0 ? &c0 : NULL, name,
                        rng, h_n, c_n);
}

dg_node *dg_gru(dg_graph *g, dg_node *x, int64_t hidden, dg_node *h0, const char *name,
                dg_rng *rng, dg_node **h_n)
{
    return dg_recurrent(g, DG_CELL_GRU, x, hidden, 1, h0 ? &h0 : NULL, NULL, name, rng, h_n,
                        NULL);
}

dg_node *dg_rnn(dg_graph *g, dg_node *x, int64_t hidden, dg_node *h0, const char *name,
                dg_rng *rng, dg_node **h_n)
{
    return dg_recurrent(g, DG_CELL_RNN_TANH, x, hidden, 1, h0 ? &h0 : NULL, NULL, name, rng,
                        h_n, NULL);
}
