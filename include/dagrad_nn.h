/* Part of the dagrad public API; include dagrad.h rather than this file. */
#ifndef DAGRAD_NN_H
#define DAGRAD_NN_H

#include "dagrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ========================================================================================= */
/* Random numbers (src/nn/rng.c). See docs/data.md.                                           */
/* ========================================================================================= */

/* A seeded pseudo-random generator: xoshiro256** 1.0 (Blackman & Vigna), its 256-bit state
 * filled from the seed by splitmix64. The output sequence for a seed is fixed by this
 * definition alone (integer arithmetic only), so it is the same on every machine, compiler
 * and thread count. There is no global generator: every function takes the state it
 * advances, and the struct is plain data that may live on the stack, be copied (a copy
 * replays the same numbers) or be saved and restored. Not thread-safe: give each thread its
 * own generator (dg_rng_split or dg_rng_jump). The state is never all zero after
 * dg_rng_seed. Functions below other than dg_rng_seed need a non-NULL generator (they are
 * called per value in hot loops and do not check). */
typedef struct dg_rng {
    uint64_t s[4];
} dg_rng;

/* Sets the state from a 64-bit seed: s[i] = the (i+1)-th splitmix64 output from `seed`.
 * Every seed, 0 included, is valid. NULL is a no-op. */
DG_API void dg_rng_seed(dg_rng *rng, uint64_t seed);

/* The next 64 random bits (one xoshiro256** step). */
DG_API uint64_t dg_rng_u64(dg_rng *rng);

/* A float uniform in [0, 1): the top 24 bits of one dg_rng_u64 times 2^-24, so every value
 * is a multiple of 2^-24 and 1.0f never occurs. */
DG_API float dg_rng_uniform(dg_rng *rng);

/* A double uniform in [0, 1): the top 53 bits of one dg_rng_u64 times 2^-53. */
DG_API double dg_rng_uniform_double(dg_rng *rng);

/* A standard normal deviate N(0, 1), by Marsaglia's polar method in double precision. Each
 * attempt draws two dg_rng_uniform_double values u, v mapped to (-1, 1); a pair is accepted
 * when 0 < s = u*u + v*v < 1 (about 78.5% of attempts) and the result is
 * u * sqrt(-2 ln(s) / s). The second deviate of the pair (v * ...) is discarded rather than
 * cached, so the whole state is s[] and a copied generator replays exactly. Only log() and
 * sqrt() are used (sqrt is exact in IEEE 754; log is as accurate as the C library's). */
DG_API double dg_rng_normal(dg_rng *rng);

/* An integer uniform in [0, n), without bias (Lemire's multiply-and-reject method: one
 * 64x64->128-bit multiply, rarely a retry). n == 0 returns 0 without advancing the state. */
DG_API uint64_t dg_rng_below(dg_rng *rng, uint64_t n);

/* Shuffles idx[0 .. n-1] in place (Fisher–Yates, from the back: for i = n-1 down to 1, swap
 * idx[i] with idx[dg_rng_below(rng, i + 1)]). Every permutation is equally likely. It permutes
 * whatever the array holds; n <= 1 (or idx == NULL) does nothing. */
DG_API void dg_rng_shuffle_indices(dg_rng *rng, int64_t *idx, int64_t n);

/* Writes a uniformly random permutation of 0 .. n-1 into idx: fills idx[i] = i, then
 * dg_rng_shuffle_indices. The result depends only on the generator's state, not on what idx
 * held before (convenient for one shuffle per epoch from dg_rng_split(&base, epoch)). */
DG_API void dg_rng_permutation(dg_rng *rng, int64_t *idx, int64_t n);

/* A generator for sub-stream `stream_id`, derived from parent's current state without
 * advancing it: the same (parent state, stream_id) always gives the same child, and different
 * stream ids give unrelated sequences (the child is seeded, through dg_rng_seed, with a
 * splitmix64 hash of the parent state and the id). Use it for per-epoch shuffles, per-layer
 * dropout masks, per-thread streams. Overlap of two children is not ruled out by
 * construction but is as unlikely as two random 256-bit states landing within a few billion
 * steps of each other; use dg_rng_jump for provably disjoint streams. */
DG_API dg_rng dg_rng_split(const dg_rng *parent, uint64_t stream_id);

/* Advances the generator by 2^128 steps (the xoshiro256 jump polynomial). Starting from one
 * state, calling dg_rng_jump k times gives k + 1 streams that do not overlap for 2^128 steps
 * each. */
DG_API void dg_rng_jump(dg_rng *rng);

/* ========================================================================================= */
/* Parameter initialisers (src/nn/init.c). See docs/data.md.                                  */
/* ========================================================================================= */

/* Each initialiser overwrites the storage of a parameter node (dg_param) and returns DG_OK.
 * On error the parameter is left unchanged and the status is returned; when the node is not
 * NULL the message also sticks to its graph ("init_uniform: node 3 'b1' is not a parameter").
 * Values are drawn in storage order (row-major), one generator draw per value for uniform
 * initialisers and one dg_rng_normal per value for normal ones, so a seed gives the same
 * parameters on every machine. Initialisers run whatever the graph's sticky error is. */

/* Fan convention. dagrad stores a dense weight as [in_features, out_features] (y = x @ W),
 * the transpose of PyTorch's [out, in]. For a parameter of shape [d0, d1, d2, ...]:
 *     receptive = d2 * d3 * ...   (1 for 2-D)
 *     fan_in    = d0 * receptive
 *     fan_out   = d1 * receptive
 * which is torch.nn.init._calculate_fan_in_and_fan_out with the roles of axes 0 and 1
 * swapped. Parameters with fewer than 2 dimensions have no fans (DG_ERR_SHAPE), as in
 * PyTorch. */
typedef enum dg_fan_mode {
    DG_FAN_IN = 0,  /* preserves the variance of activations in the forward pass */
    DG_FAN_OUT = 1, /* preserves the variance of gradients in the backward pass */
} dg_fan_mode;

/* The nonlinearity after a layer, for its recommended gain (torch.nn.init.calculate_gain). */
typedef enum dg_nonlinearity {
    DG_NONLIN_LINEAR = 0,  /* gain 1 (also right for identity and convolution) */
    DG_NONLIN_SIGMOID,     /* gain 1 */
    DG_NONLIN_TANH,        /* gain 5/3 */
    DG_NONLIN_RELU,        /* gain sqrt(2) */
    DG_NONLIN_LEAKY_RELU,  /* gain sqrt(2 / (1 + a^2)), a = the negative slope */
    DG_NONLIN_SELU,        /* gain 3/4 */
} dg_nonlinearity;

/* The recommended gain for `nonlinearity`; `param` is the negative slope for
 * DG_NONLIN_LEAKY_RELU and ignored otherwise. NaN for a value outside the enum. */
DG_API float dg_init_gain(dg_nonlinearity nonlinearity, float param);

/* The fans of a parameter by the convention above. DG_ERR_INVALID_ARG for NULL arguments,
 * DG_ERR_SHAPE for fewer than 2 dimensions. Reports nothing to the graph. */
DG_API dg_status dg_init_fans(const dg_node *param, int64_t *fan_in, int64_t *fan_out);

/* Every value = value. */
DG_API dg_status dg_init_constant(dg_node *param, float value);

/* Uniform in [lo, hi): lo + (hi - lo) * u with u = dg_rng_uniform, in double, rounded to float
 * and kept below hi. lo == hi gives lo everywhere; lo > hi or a non-finite bound is
 * DG_ERR_INVALID_ARG. */
DG_API dg_status dg_init_uniform(dg_node *param, dg_rng *rng, float lo, float hi);

/* mean + std * dg_rng_normal, in double, rounded to float. std < 0 or a non-finite
 * argument is DG_ERR_INVALID_ARG; std == 0 gives mean everywhere. */
DG_API dg_status dg_init_normal(dg_node *param, dg_rng *rng, float mean, float std);

/* Glorot/Xavier: std = gain * sqrt(2 / (fan_in + fan_out)).
 * uniform: U(-b, b) with b = sqrt(3) * std;  normal: N(0, std^2). */
DG_API dg_status dg_init_xavier_uniform(dg_node *param, dg_rng *rng, float gain);
DG_API dg_status dg_init_xavier_normal(dg_node *param, dg_rng *rng, float gain);

/* He/Kaiming: std = dg_init_gain(nonlinearity, a) / sqrt(fan), fan = fan_in or fan_out per
 * mode. uniform: U(-b, b) with b = sqrt(3) * std;  normal: N(0, std^2). `a` is the negative
 * slope of a following leaky ReLU (used only with DG_NONLIN_LEAKY_RELU). PyTorch's defaults
 * are a = 0, DG_FAN_IN, DG_NONLIN_LEAKY_RELU (which then equals DG_NONLIN_RELU). */
DG_API dg_status dg_init_kaiming_uniform(dg_node *param, dg_rng *rng, float a, dg_fan_mode mode,
                                         dg_nonlinearity nonlinearity);
DG_API dg_status dg_init_kaiming_normal(dg_node *param, dg_rng *rng, float a, dg_fan_mode mode,
                                        dg_nonlinearity nonlinearity);

/* ========================================================================================= */
/* End of the RNG and initialiser API. Layer helpers (src/nn/layers.c) go below this line.    */
/* ========================================================================================= */

/* ---- Layers ------------------------------------------------------------------------------
 * Helpers that create named parameters and ordinary op nodes: a model built from them is a
 * plain graph, every node visible in the DOT dump. */

typedef enum dg_activation {
    DG_ACT_NONE = 0,
    DG_ACT_RELU,
    DG_ACT_SIGMOID,
    DG_ACT_TANH,
    DG_ACT_GELU,
    DG_ACT_SOFTMAX, /* over the last axis */
    DG_ACT_COUNT
} dg_activation;

/* "none" (or "linear"), "relu", "sigmoid", "tanh", "gelu", "softmax" -> *out. Unknown names
 * (and NULL) are DG_ERR_NOT_FOUND. */
DG_API dg_status dg_activation_from_name(const char *name, dg_activation *out);
DG_API const char *dg_activation_name(dg_activation act);
/* act(x); DG_ACT_NONE returns x itself. */
DG_API dg_node *dg_activate(dg_graph *g, dg_node *x, dg_activation act);

/* A dense (fully connected) layer over the last axis of x:
 *     y = act(x @ weight + bias),  weight [in, units] "<name>.weight", bias [units] "<name>.bias"
 * The weight is drawn from rng: He/Kaiming uniform (fan_in) before relu and gelu, Glorot/Xavier
 * uniform otherwise; the bias starts at zero. rng may be NULL to leave both at zero. x must
 * have at least 2 dimensions; `name` must be unique in the graph. */
DG_API dg_node *dg_dense(dg_graph *g, dg_node *x, int64_t units, dg_activation act,
                         const char *name, dg_rng *rng);
/* The same with the activation by name ("relu", ...): an unknown name is an error naming it. */
DG_API dg_node *dg_dense_named(dg_graph *g, dg_node *x, int64_t units, const char *activation,
                               const char *name, dg_rng *rng);

/* Inverted dropout with probability p of zeroing each element (scaled by 1/(1-p) when kept),
 * in training mode only. `key` is the int32 [3] input {seed, step, training} that drives every
 * dropout node of the graph (dg_dropout_key creates or finds it): the mask is a pure function
 * of the seed, the step, the node and the element, so runs are reproducible and the backward
 * pass regenerates the mask. With training == 0, dropout is the identity. The training loop
 * (dagrad_train.h) feeds the key; a hand-written loop calls dg_dropout_feed_key. */
#define DG_DROPOUT_KEY_NAME "dropout_key"
DG_API dg_node *dg_dropout(dg_graph *g, dg_node *x, dg_node *key, float p);
DG_API dg_node *dg_dropout_key(dg_graph *g);
/* Feeds the key input of `plan` (if the plan has one): seed, step and mode. */
DG_API dg_status dg_dropout_feed_key(dg_plan *plan, uint64_t seed, int64_t step, bool training);

/* Collects the graph's parameters in creation order into out (up to max) and returns how many
 * the graph has (which may exceed max). */
DG_API int dg_graph_params(dg_graph *g, int max, dg_node **out);

/* ---- Recurrent layers (src/nn/recurrent.c). See docs/sequence-models.md. -----------------
 * PyTorch's equations, gate order and parameter layout (torch.nn.RNN/LSTM/GRU with
 * batch_first=True), so weights interchange unchanged. Per layer l the parameters are
 *     "<name>.weight_ih_l<l>" [G*H, F_l]   "<name>.weight_hh_l<l>" [G*H, H]
 *     "<name>.bias_ih_l<l>"   [G*H]        "<name>.bias_hh_l<l>"   [G*H]
 * with G = 1 (tanh RNN), 4 (LSTM gates i, f, g, o), 3 (GRU gates r, z, n), F_0 = the input's
 * features and F_l = H above; the names are PyTorch's state_dict keys after "<name>.". With a
 * non-NULL rng each is drawn from U(-1/sqrt(H), 1/sqrt(H)) in that order (PyTorch's init).
 *   RNN:  h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)
 *   LSTM: i, f, o = sigmoid(.), g = tanh(.) of the four blocks of x W_ih^T + b_ih + h W_hh^T + b_hh;
 *         c' = f * c + i * g,  h' = o * tanh(c')
 *   GRU:  r, z = sigmoid(x W_i{r,z}^T + b_i{r,z} + h W_h{r,z}^T + b_h{r,z}),
 *         n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)),  h' = (1 - z) * n + z * h
 * An LSTM layer's recurrence is one fused op (dg_lstm_seq: one GEMM per step inside, a fused
 * backward; second and higher derivatives through a composed rule, as for any op), a GRU
 * layer's likewise (dg_gru_seq); tanh RNN layers are unrolled over time in the graph (every
 * step ordinary op nodes).
 * If parameters of those names already exist (an earlier call with the same name), they are
 * reused: build a training graph over [B, T, F] and a one-step decode graph over [B, 1, F]
 * sharing one set of weights. A node of such a name with another shape is an error. */
typedef enum dg_cell_kind {
    DG_CELL_RNN_TANH = 0,
    DG_CELL_LSTM = 1,
    DG_CELL_GRU = 2,
} dg_cell_kind;

/* n_layers stacked recurrent layers over x float32 [B, T, F]; returns the last layer's
 * outputs [B, T, H] (every step's h). h0 (and c0, LSTM only: c0 must be NULL otherwise) are
 * arrays of n_layers initial states [B, H], or NULL; a NULL array or entry is a zero state.
 * h_n / c_n, when not NULL, receive each layer's final states [B, H] (c_n only for the LSTM):
 * feed them back as h0 / c0 of the next batch for truncated back-propagation through time.
 * The layer's nodes go into a name scope called `name`. NULL with the error on the graph for
 * a bad argument (hidden <= 0, n_layers outside 1..64, x not 3-D, a state of the wrong shape).
 * Where x is dg_embedding(table, indices) with fewer table rows than B * T, the first layer
 * projects the table and looks the projection up (the same maths, cheaper: see
 * docs/sequence-models.md, "Input projection over an embedding"). */
DG_API dg_node *dg_recurrent(dg_graph *g, dg_cell_kind cell, dg_node *x, int64_t hidden,
                             int n_layers, dg_node *const *h0, dg_node *const *c0,
                             const char *name, dg_rng *rng, dg_node **h_n, dg_node **c_n);
/* One layer of each kind (dg_recurrent with n_layers = 1); h0, c0 may be NULL (zeros);
 * h_n, c_n may be NULL. */
DG_API dg_node *dg_lstm(dg_graph *g, dg_node *x, int64_t hidden, dg_node *h0, dg_node *c0,
                        const char *name, dg_rng *rng, dg_node **h_n, dg_node **c_n);
DG_API dg_node *dg_gru(dg_graph *g, dg_node *x, int64_t hidden, dg_node *h0, const char *name,
                       dg_rng *rng, dg_node **h_n);
DG_API dg_node *dg_rnn(dg_graph *g, dg_node *x, int64_t hidden, dg_node *h0, const char *name,
                       dg_rng *rng, dg_node **h_n);

/* ---- Transformer pieces (src/nn/transformer.c). See docs/sequence-models.md. ---------------
 * A pre-norm (GPT-2) block over x [B, T, C]:
 *     h   = x + dropout(attn_proj(attention(ln1(x))))
 *     out = h + dropout(mlp_proj(gelu(mlp_fc(ln2(h)))))
 * attention: q, k, v from ln1(x) W_qkv + b_qkv ([C, 3C], split in that order), n_heads heads
 * of C / n_heads, softmax(q k^T / sqrt(C / n_heads) + causal mask) with dropout, heads
 * concatenated. Parameters "<name>.ln1.weight/bias", "<name>.attn.qkv.weight/bias",
 * "<name>.attn.proj.weight/bias", "<name>.ln2.weight/bias", "<name>.mlp.fc.weight/bias",
 * "<name>.mlp.proj.weight/bias"; dense weights are [in, out] (PyTorch's Linear.weight
 * transposed). New parameters: weights N(0, 0.02) from rng (left 0 when rng is NULL),
 * biases 0, layer-norm scales 1. Existing parameters of those names are reused (shape
 * checked), so a decode graph shares the training graph's weights. */
typedef struct dg_transformer_config {
    int n_heads;        /* divides the width */
    int64_t mlp_hidden; /* 0: 4 * width */
    float dropout;      /* on attention weights, attention output and MLP output; in [0, 1) */
    bool causal;        /* position i attends to positions <= i */
    float ln_eps;       /* layer-norm epsilon (PyTorch's 1e-5) */
    bool fused_attention; /* dg_attention (online softmax, O(T) memory per head) instead of
                             the composed matmul/mask/softmax/matmul (faster at short
                             contexts); same maths, dropout on the attention weights in both */
} dg_transformer_config;
#define DG_TRANSFORMER_DEFAULTS                                                               \
    ((dg_transformer_config){.n_heads = 4, .causal = true, .ln_eps = 1e-5f})

/* The block over x [B, T, C]; dropout_key from dg_dropout_key (NULL: no dropout). */
DG_API dg_node *dg_transformer_block(dg_graph *g, dg_node *x, const dg_transformer_config *cfg,
                                     dg_node *dropout_key, const char *name, dg_rng *rng);

/* The same block for ONE new position x [B, 1, C] during generation, with a key/value cache:
 * k_cache, v_cache [B, n_heads, S, C / n_heads] hold the keys and values of S earlier slots
 * and cache_mask [1, 1, 1, S + 1] is added to the attention scores (0 for a filled slot,
 * -1e9 for an empty one; the last entry, the new position itself, 0). *k_new, *v_new receive
 * the new position's key and value [B, n_heads, 1, C / n_heads] for the caller to store in
 * its cache. No dropout. The block's parameters must exist (build the training block first). */
DG_API dg_node *dg_transformer_block_step(dg_graph *g, dg_node *x, dg_node *k_cache,
                                          dg_node *v_cache, dg_node *cache_mask,
                                          const dg_transformer_config *cfg, const char *name,
                                          dg_node **k_new, dg_node **v_new);

/* x [B, T, C] + rows 0 .. T-1 of a learned table "<name>.weight" [max_len, C] (N(0, 0.02)). */
DG_API dg_node *dg_positional_embedding(dg_graph *g, dg_node *x, int64_t max_len,
                                        const char *name, dg_rng *rng);

/* Layer normalisation over the last axis with a learned scale "<name>.weight" (ones) and shift
 * "<name>.bias" (zeros): (x - mean) / sqrt(var + eps) * weight + bias, var biased (as PyTorch).
 * Composed from mean/sub/square/sqrt/div until a fused layer_norm op is on this branch. */
DG_API dg_node *dg_layer_norm_layer(dg_graph *g, dg_node *x, float eps, const char *name);

#ifdef __cplusplus
}
#endif

#endif
