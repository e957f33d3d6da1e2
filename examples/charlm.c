/*
 * Character-level language models on a plain text (the King James Bible: tools/kjv_text.sh).
 *
 *   charlm --model lstm   embedding 64, LSTM layers of 256 (--layers 1 or 2), Adam
 *   charlm --model gru    the same with GRU layers (PyTorch's nn.GRU equations)
 *   charlm --model gpt    4 pre-norm transformer blocks, 4 heads, width 128, context 128,
 *                         dropout 0.1, AdamW, cosine schedule
 *
 * Training takes random windows of the first 95% of the text (the last 5% is validation, by
 * position), prints the validation loss in nats/char every --eval-every steps, ends with
 * "val_loss X" and "train_tokens_per_s N", then samples --sample-len characters from a prompt
 * with a one-step decode graph (carried LSTM state, or a key/value cache for the GPT) and
 * reports the sampling speed. Options: --data PATH (kjv.txt) --steps N --batch B --seq T
 * --lr LR --threads N (0, the default: every core, adaptive) --seed S --eval-every N --val-batches N --prompt STR --temperature X
 * --top-k K --sample-len N --csv PATH (step,seconds,train_loss,val_loss)
 * --attention composed|fused (GPT: matmul/softmax attention, or the fused dg_attention op)
 * --plot PATH (the curves as SVG through dg_plot_history, one point per evaluation).
 * --profile 1 (after 5 warm-up steps, time every step of the training plan and the optimizer
 * step; prints the per-op profile of dg_plan_profile_report at the end).
 * --target-loss X (stop at the first evaluation whose validation loss is <= X and print
 * "steps_to_target N" and "seconds_to_target S", the wall time since training started,
 * evaluations included; the schedule still spans --steps. "target_not_reached X" otherwise).
 */
#include <dagrad.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct options {
    const char *model, *data, *prompt, *csv, *attention, *plot;
    int steps, layers, threads, eval_every, val_batches, top_k, sample_len, profile;
    int64_t batch, seq, hidden, embed, width, heads, blocks;
    double lr, temperature, dropout, target_loss;
    uint64_t seed;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(void)
{
    fprintf(stderr, "usage: charlm [--model lstm|gru|gpt] [--data kjv.txt] [--steps N] [--batch B] "
                    "[--seq T] [--layers L] [--lr LR] [--threads N] [--seed S] [--eval-every N] "
                    "[--val-batches N] [--prompt STR] [--temperature X] [--top-k K] "
                    "[--sample-len N] [--csv PATH] [--plot PATH] [--attention composed|fused] "
                    "[--profile 0|1] [--target-loss X]\n");
    exit(2);
}

static void parse(int argc, char **argv, struct options *o)
{
    *o = (struct options){.model = "lstm", .data = "kjv.txt", .prompt = "And God said, ",
                          .steps = 2000, .layers = 1, .threads = 0, .eval_every = 100,
                          .val_batches = 20, .top_k = 10, .sample_len = 300, .batch = 32,
                          .seq = 128, .hidden = 256, .embed = 64, .width = 128, .heads = 4,
                          .blocks = 4, .lr = -1, .temperature = 0.8, .dropout = 0.1,
                          .seed = 1, .attention = "fused"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            usage();
        i++;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--prompt")) o->prompt = v;
        else if (!strcmp(a, "--csv")) o->csv = v;
        else if (!strcmp(a, "--attention")) o->attention = v;
        else if (!strcmp(a, "--plot")) o->plot = v;
        else if (!strcmp(a, "--steps")) o->steps = atoi(v);
        else if (!strcmp(a, "--profile")) o->profile = atoi(v);
        else if (!strcmp(a, "--layers")) o->layers = atoi(v);
        else if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--eval-every")) o->eval_every = atoi(v);
        else if (!strcmp(a, "--val-batches")) o->val_batches = atoi(v);
        else if (!strcmp(a, "--top-k")) o->top_k = atoi(v);
        else if (!strcmp(a, "--sample-len")) o->sample_len = atoi(v);
        else if (!strcmp(a, "--batch")) o->batch = atoll(v);
        else if (!strcmp(a, "--seq")) o->seq = atoll(v);
        else if (!strcmp(a, "--lr")) o->lr = atof(v);
        else if (!strcmp(a, "--temperature")) o->temperature = atof(v);
        else if (!strcmp(a, "--target-loss")) o->target_loss = atof(v);
        else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 10);
        else usage();
    }
    bool gpt = !strcmp(o->model, "gpt");
    bool recurrent = !strcmp(o->model, "lstm") || !strcmp(o->model, "gru");
    if ((!gpt && !recurrent) || o->steps < 1 || o->batch < 1 || o->seq < 2 ||
        o->layers < 1 || o->layers > 4 || o->threads < 0 || o->eval_every < 1 ||
        o->val_batches < 1 || o->temperature <= 0 || o->sample_len < 0 ||
        !(o->target_loss >= 0) ||
        (strcmp(o->attention, "fused") && strcmp(o->attention, "composed")))
        usage();
    if (o->lr < 0)
        o->lr = 2e-3; /* LSTM Adam; GPT AdamW (1e-3 reached 1.607 after 1000 steps, 2e-3 1.551) */
}

/* ---- the models ------------------------------------------------------------------------ */

struct model {
    dg_graph *g;
    dg_node *tokens, *targets, *logits, *loss; /* training graph over [B, T] */
    /* one-step decode graph over [1, 1] */
    dg_node *tok1, *logits1;
    int n_state; /* LSTM: 2 per layer (h, c); GRU: 1 per layer (h); GPT: 2 per block (k, v) */
    dg_node *state_in[16], *state_out[16];
    dg_node *pos1, *mask1;           /* GPT: position id [1] and cache mask [1,1,1,S+1] */
    int64_t cache_slots;             /* GPT: S = context - 1 */
};

static dg_node *head(dg_graph *g, dg_node *x, int64_t vocab, dg_rng *rng, dg_node **w,
                     dg_node **b)
{
    if (*w == NULL) { /* PyTorch Linear init: U(-1/sqrt(in), 1/sqrt(in)) */
        int64_t in = dg_node_dim(x, -1);
        float bound = 1.0f / sqrtf((float)in);
        *w = dg_param(g, "head.weight", 2, (int64_t[]){in, vocab});
        *b = dg_param(g, "head.bias", 1, (int64_t[]){vocab});
        dg_init_uniform(*w, rng, -bound, bound);
        dg_init_uniform(*b, rng, -bound, bound);
    }
    if (dg_node_ndim(x) != 3)
        return dg_add(g, dg_matmul(g, x, *w), *b);
    /* [B, T, in] as one [B*T, in] matrix: the weight gradient is one GEMM over every row */
    int64_t t = dg_node_dim(x, 1), in = dg_node_dim(x, 2);
    dg_node *rows = dg_reshape(g, x, 2, (int64_t[]){-1, in});
    return dg_reshape(g, dg_add(g, dg_matmul(g, rows, *w), *b), 3, (int64_t[]){-1, t, vocab});
}

/* --model lstm or gru: embedding, recurrent layers, head. */
static void build_recurrent(struct model *m, const struct options *o, int64_t vocab,
                            dg_rng *rng)
{
    dg_graph *g = m->g;
    dg_cell_kind cell = strcmp(o->model, "gru") ? DG_CELL_LSTM : DG_CELL_GRU;
    bool lstm = cell == DG_CELL_LSTM;
    dg_node *table = dg_param(g, "embed.weight", 2, (int64_t[]){vocab, o->embed});
    dg_init_normal(table, rng, 0.0f, 1.0f); /* nn.Embedding's N(0, 1) */
    dg_node *hw = NULL, *hb = NULL;
    dg_node *seq = dg_recurrent(g, cell, dg_embedding(g, table, m->tokens), o->hidden,
                                o->layers, NULL, NULL, o->model, rng, NULL, NULL);
    m->logits = head(g, seq, vocab, rng, &hw, &hb);
    m->loss = dg_softmax_cross_entropy(g, m->logits, m->targets);
    /* Decode: one character, states carried in and out. */
    dg_node *h0[4], *c0[4], *hn[4], *cn[4];
    for (int l = 0; l < o->layers; l++) {
        char name[32];
        snprintf(name, sizeof name, "h0_%d", l);
        h0[l] = dg_input(g, name, 2, (int64_t[]){1, o->hidden});
        snprintf(name, sizeof name, "c0_%d", l);
        c0[l] = lstm ? dg_input(g, name, 2, (int64_t[]){1, o->hidden}) : NULL;
    }
    dg_node *one = dg_recurrent(g, cell, dg_embedding(g, table, m->tok1), o->hidden, o->layers,
                                h0, lstm ? c0 : NULL, o->model, NULL, hn, lstm ? cn : NULL);
    m->logits1 = head(g, one, vocab, rng, &hw, &hb);
    int per = lstm ? 2 : 1;
    m->n_state = per * o->layers;
    for (int l = 0; l < o->layers; l++) {
        m->state_in[per * l] = h0[l];
        m->state_out[per * l] = hn[l];
        if (lstm) {
            m->state_in[2 * l + 1] = c0[l];
            m->state_out[2 * l + 1] = cn[l];
        }
    }
}

static void build_gpt(struct model *m, const struct options *o, int64_t vocab, dg_rng *rng)
{
    dg_graph *g = m->g;
    int64_t C = o->width;
    dg_transformer_config cfg = DG_TRANSFORMER_DEFAULTS;
    cfg.n_heads = (int)o->heads;
    cfg.dropout = (float)o->dropout;
    cfg.fused_attention = !strcmp(o->attention, "fused");
    dg_node *key = dg_dropout_key(g);
    dg_node *tok = dg_param(g, "tok.weight", 2, (int64_t[]){vocab, C});
    dg_init_normal(tok, rng, 0.0f, 0.02f);
    dg_node *x = dg_positional_embedding(g, dg_embedding(g, tok, m->tokens), o->seq, "pos", rng);
    x = dg_dropout(g, x, key, (float)o->dropout);
    char name[32];
    for (int b = 0; b < o->blocks; b++) {
        snprintf(name, sizeof name, "block%d", b);
        x = dg_transformer_block(g, x, &cfg, key, name, rng);
    }
    x = dg_layer_norm_layer(g, x, 1e-5f, "ln_f");
    dg_node *hw = NULL, *hb = NULL;
    m->logits = head(g, x, vocab, rng, &hw, &hb);
    m->loss = dg_softmax_cross_entropy(g, m->logits, m->targets);

    /* Decode: the token at position p (fed as an id into the position table). */
    m->cache_slots = o->seq - 1;
    int64_t d = C / o->heads;
    m->pos1 = dg_input_typed(g, "pos1", DG_I32, 1, (int64_t[]){1});
    m->mask1 = dg_input(g, "mask1", 4, (int64_t[]){1, 1, 1, m->cache_slots + 1});
    dg_node *pos_table = dg_graph_find(g, "pos.weight");
    dg_node *x1 = dg_add(g, dg_embedding(g, tok, m->tok1),
                         dg_reshape(g, dg_embedding(g, pos_table, m->pos1), 3,
                                    (int64_t[]){1, 1, C}));
    m->n_state = 2 * (int)o->blocks;
    for (int b = 0; b < o->blocks; b++) {
        snprintf(name, sizeof name, "kc%d", b);
        dg_node *kc = dg_input(g, name, 4, (int64_t[]){1, o->heads, m->cache_slots, d});
        snprintf(name, sizeof name, "vc%d", b);
        dg_node *vc = dg_input(g, name, 4, (int64_t[]){1, o->heads, m->cache_slots, d});
        snprintf(name, sizeof name, "block%d", b);
        x1 = dg_transformer_block_step(g, x1, kc, vc, m->mask1, &cfg, name,
                                       &m->state_out[2 * b], &m->state_out[2 * b + 1]);
        m->state_in[2 * b] = kc;
        m->state_in[2 * b + 1] = vc;
    }
    x1 = dg_layer_norm_layer(g, x1, 1e-5f, "ln_f");
    m->logits1 = head(g, x1, vocab, rng, &hw, &hb);
}

/* ---- sampling --------------------------------------------------------------------------- */

/* Draws from softmax(logits / temperature) restricted to the top_k largest (0: all). */
static int32_t sample(const float *logits, int64_t vocab, double temperature, int top_k,
                      dg_rng *rng)
{
    double p[1024];
    int64_t n = vocab < 1024 ? vocab : 1024;
    float cut = -INFINITY;
    if (top_k > 0 && top_k < n) { /* the k-th largest value */
        float best[1024];
        memcpy(best, logits, (size_t)n * sizeof *best);
        for (int k = 0; k < top_k; k++) {
            int64_t arg = k;
            for (int64_t j = k + 1; j < n; j++)
                if (best[j] > best[arg])
                    arg = j;
            float t = best[k];
            best[k] = best[arg];
            best[arg] = t;
        }
        cut = best[top_k - 1];
    }
    float top = -INFINITY;
    for (int64_t j = 0; j < n; j++)
        top = logits[j] > top ? logits[j] : top;
    double total = 0;
    for (int64_t j = 0; j < n; j++) {
        p[j] = logits[j] >= cut ? exp((logits[j] - top) / temperature) : 0.0;
        total += p[j];
    }
    double u = dg_rng_uniform_double(rng) * total;
    for (int64_t j = 0; j < n; j++) {
        u -= p[j];
        if (u < 0)
            return (int32_t)j;
    }
    return (int32_t)(n - 1);
}

/* Feeds one character at position `pos` (GPT) and runs the decode plan; copies the new
 * states into the host-side states (LSTM) or the caches at slot pos (GPT). */
static int decode_step(struct model *m, dg_plan *plan, int32_t token, int64_t pos, float **state,
                       const int64_t *state_len, float *mask, int64_t heads, int64_t d)
{
    dg_feed(plan, m->tok1, &token);
    for (int s = 0; s < m->n_state; s++)
        dg_feed(plan, m->state_in[s], state[s]);
    if (m->mask1 != NULL) {
        int32_t p32 = (int32_t)pos;
        dg_feed(plan, m->pos1, &p32);
        for (int64_t s = 0; s <= m->cache_slots; s++)
            mask[s] = (s < pos || s == m->cache_slots) ? 0.0f : -1e9f;
        dg_feed(plan, m->mask1, mask);
    }
    if (dg_run(plan) != DG_OK)
        return -1;
    for (int s = 0; s < m->n_state; s++) {
        const float *v = dg_data(plan, m->state_out[s]);
        if (m->mask1 == NULL) {
            memcpy(state[s], v, (size_t)state_len[s] * sizeof(float));
        } else if (pos < m->cache_slots) { /* [1, heads, 1, d] into slot pos of [1,heads,S,d] */
            for (int64_t h = 0; h < heads; h++)
                memcpy(state[s] + (h * m->cache_slots + pos) * d, v + h * d,
                       (size_t)d * sizeof(float));
        }
    }
    return 0;
}

static void generate(struct model *m, const struct options *o, const dg_text *text)
{
    dg_node *outs[17] = {m->logits1};
    memcpy(outs + 1, m->state_out, (size_t)m->n_state * sizeof *outs);
    dg_plan *plan = dg_compile(m->g, m->n_state + 1, outs);
    if (plan == NULL) {
        fprintf(stderr, "charlm: decode graph: %s\n", dg_graph_error(m->g));
        return;
    }
    dg_plan_set_threads(plan, o->threads);
    bool gpt = m->mask1 != NULL;
    int64_t heads = o->heads, d = o->width / o->heads;
    float *state[16];
    int64_t state_len[16];
    for (int s = 0; s < m->n_state; s++) {
        state_len[s] = gpt ? heads * m->cache_slots * d : o->hidden;
        state[s] = calloc((size_t)state_len[s], sizeof(float));
    }
    float *mask = gpt ? calloc((size_t)m->cache_slots + 1, sizeof(float)) : NULL;
    int32_t prompt[512];
    int64_t n_prompt = dg_text_encode(text, o->prompt, prompt, 512);
    if (n_prompt < 1 || n_prompt > 512) {
        fprintf(stderr, "charlm: the prompt is empty, too long or has characters outside "
                        "the vocabulary\n");
        n_prompt = 1;
        prompt[0] = 0;
    }
    int32_t *hist = malloc((size_t)(n_prompt + o->sample_len) * sizeof *hist);
    memcpy(hist, prompt, (size_t)n_prompt * sizeof *hist);
    dg_rng rng;
    dg_rng_seed(&rng, o->seed + 99);
    double start = now();
    int64_t pos = 0, n = n_prompt, steps = 0;
    int64_t keep = m->cache_slots / 2;
    /* Feed the prompt, then each sampled character. A full cache is refilled from the last
     * `keep` characters at positions 0.. (the learned positions end at the context). */
    for (int64_t i = 0; n < n_prompt + o->sample_len; i++) {
        if (gpt && pos > m->cache_slots) {
            pos = 0;
            for (int64_t j = i - keep; j < i; j++, pos++, steps++)
                decode_step(m, plan, hist[j], pos, state, state_len, mask, heads, d);
        }
        if (decode_step(m, plan, hist[i], pos, state, state_len, mask, heads, d) != 0) {
            fprintf(stderr, "charlm: decode: %s\n", dg_graph_error(m->g));
            break;
        }
        pos++;
        steps++;
        if (i + 1 < n)
            continue; /* still reading the prompt */
        hist[n++] = sample(dg_data(plan, m->logits1), text->vocab_size, o->temperature,
                           o->top_k, &rng);
    }
    double secs = now() - start;
    char *out = malloc((size_t)n * 4 + 1);
    dg_text_decode(text, hist, n, out, (size_t)n * 4 + 1);
    printf("--- sample (temperature %.2f, top-k %d, seed %llu) ---\n%s\n---\n", o->temperature,
           o->top_k, (unsigned long long)o->seed, out);
    printf("sampling_chars_per_s %.0f (%lld decode steps for %d sampled characters, %.3f s)\n",
           (double)o->sample_len / secs, (long long)steps, o->sample_len, secs);
    free(out);
    free(hist);
    free(mask);
    for (int s = 0; s < m->n_state; s++)
        free(state[s]);
    dg_plan_free(plan);
}

/* ---- training ---------------------------------------------------------------------------- */

static double validate(struct model *m, dg_plan *plan, const dg_text *text, int64_t lo,
                       int64_t hi, const struct options *o, int32_t *x, int32_t *y)
{
    dg_dropout_feed_key(plan, o->seed, 0, false);
    int64_t per_batch = o->batch * o->seq;
    int64_t batches = (hi - lo - 1) / per_batch;
    if (batches > o->val_batches)
        batches = o->val_batches;
    double total = 0;
    for (int64_t b = 0; b < batches; b++) {
        dg_text_windows(text, lo + b * per_batch, hi, o->batch, o->seq, NULL, x, y);
        dg_feed(plan, m->tokens, x);
        dg_feed(plan, m->targets, y);
        if (dg_run(plan) != DG_OK)
            return NAN;
        total += dg_data(plan, m->loss)[0];
    }
    return batches > 0 ? total / (double)batches : NAN;
}

int main(int argc, char **argv)
{
    struct options o;
    parse(argc, argv, &o);
    bool gpt = !strcmp(o.model, "gpt");
    dg_text text;
    if (dg_text_load(o.data, &text) != DG_OK) {
        fprintf(stderr, "charlm: %s\n(make the corpus with tools/kjv_text.sh %s)\n",
                dg_text_error(&text), o.data);
        return 1;
    }
    int64_t split = dg_text_split(&text, 0.05);
    printf("charlm: %s, %lld characters, vocabulary %d, train %lld / validation %lld\n", o.data,
           (long long)text.n_tokens, text.vocab_size, (long long)split,
           (long long)(text.n_tokens - split));

    struct model m = {0};
    m.g = dg_graph_new();
    dg_graph_set_threads(m.g, o.threads);
    m.tokens = dg_input_typed(m.g, "tokens", DG_I32, 2, (int64_t[]){o.batch, o.seq});
    m.targets = dg_input_typed(m.g, "targets", DG_I32, 2, (int64_t[]){o.batch, o.seq});
    m.tok1 = dg_input_typed(m.g, "tok1", DG_I32, 2, (int64_t[]){1, 1});
    dg_rng rng;
    dg_rng_seed(&rng, o.seed);
    if (gpt)
        build_gpt(&m, &o, text.vocab_size, &rng);
    else
        build_recurrent(&m, &o, text.vocab_size, &rng);
    dg_node *params[256], *grads[256];
    int n_params = 0;
    if (dg_graph_status(m.g) != DG_OK ||
        dg_grad_params(m.g, m.loss, 256, params, grads, &n_params) != DG_OK) {
        fprintf(stderr, "charlm: %s\n", dg_graph_error(m.g));
        return 1;
    }
    int64_t n_weights = 0;
    for (int i = 0; i < n_params; i++)
        n_weights += dg_node_numel(params[i]);
    dg_adam_config ac = gpt ? DG_ADAMW_DEFAULTS : DG_ADAM_DEFAULTS;
    ac.lr = o.lr;
    if (gpt)
        ac.weight_decay = 0.1;
    dg_optim *opt = gpt ? dg_optim_new_adamw(n_params, params, grads, &ac)
                        : dg_optim_new_adam(n_params, params, grads, &ac);
    if (gpt) {
        dg_schedule cos = dg_schedule_cosine(o.steps / 20, o.steps, o.lr / 10);
        dg_optim_set_schedule(opt, &cos);
    }
    dg_optim_set_clip_norm(opt, 1.0, 2.0);
    dg_optim_set_threads(opt, o.threads);
    dg_node *outs[258] = {m.loss};
    memcpy(outs + 1, grads, (size_t)n_params * sizeof *grads);
    dg_plan *train = dg_compile(m.g, n_params + 1, outs);
    dg_plan *eval = dg_compile(m.g, 1, &m.loss);
    if (train == NULL || eval == NULL || dg_optim_status(opt) != DG_OK) {
        fprintf(stderr, "charlm: %s %s\n", dg_graph_error(m.g), dg_optim_error(opt));
        return 1;
    }
    dg_plan_set_threads(train, o.threads);
    dg_plan_set_threads(eval, o.threads);
    printf("model %s: %lld parameters in %d tensors, batch %lld x %lld, %d steps, lr %g, "
           "%d thread(s)%s\n", o.model, (long long)n_weights, n_params, (long long)o.batch,
           (long long)o.seq, o.steps, o.lr, dg_plan_threads(train),
           dg_plan_threads_adaptive(train) ? " (adaptive: up to this many)" : "");

    FILE *csv = o.csv ? fopen(o.csv, "w") : NULL;
    if (csv)
        fprintf(csv, "step,seconds,train_loss,val_loss\n");
    int32_t *x = malloc((size_t)(o.batch * o.seq) * sizeof *x);
    int32_t *y = malloc((size_t)(o.batch * o.seq) * sizeof *y);
    dg_rng data_rng = dg_rng_split(&rng, 7);
    double train_seconds = 0, recent = 0, val = NAN;
    int recent_n = 0;
    double wall_start = now();
    int n_evals = 0;
    dg_epoch_stats *history = calloc((size_t)(o.steps / o.eval_every + 2), sizeof *history);
    const int profile_from = o.steps > 5 ? 6 : 1;
    double opt_seconds = 0;
    int steps_done = 0;
    bool reached = false;
    for (int step = 1; step <= o.steps && !reached; step++) {
        if (o.profile && step == profile_from)
            dg_plan_set_profile(train, true);
        double t0 = now();
        dg_text_windows(&text, 0, split, o.batch, o.seq, &data_rng, x, y);
        dg_feed(train, m.tokens, x);
        dg_feed(train, m.targets, y);
        dg_dropout_feed_key(train, o.seed, step, true);
        double t_opt = 0;
        if (dg_run(train) != DG_OK || (t_opt = now(), dg_optim_step(opt, train)) != DG_OK) {
            fprintf(stderr, "charlm: step %d: %s %s\n", step, dg_graph_error(m.g),
                    dg_optim_error(opt));
            return 1;
        }
        if (o.profile && step >= profile_from)
            opt_seconds += now() - t_opt;
        train_seconds += now() - t0;
        recent += dg_data(train, m.loss)[0];
        recent_n++;
        steps_done = step;
        if (step % o.eval_every == 0 || step == o.steps) {
            val = validate(&m, eval, &text, split, text.n_tokens, &o, x, y);
            printf("step %5d  train_loss %.4f  val_loss %.4f nats/char  %.0f tokens/s  "
                   "%.1f s\n", step, recent / recent_n, val,
                   (double)(o.batch * o.seq) * step / train_seconds, now() - wall_start);
            fflush(stdout);
            if (csv) {
                fprintf(csv, "%d,%.3f,%.5f,%.5f\n", step, now() - wall_start,
                        recent / recent_n, val);
                fflush(csv);
            }
            history[n_evals++] = (dg_epoch_stats){.epoch = step, .loss = recent / recent_n,
                                                  .val_loss = val, .accuracy = NAN,
                                                  .metric = NAN, .val_accuracy = NAN,
                                                  .val_metric = NAN, .lr = dg_optim_lr(opt)};
            recent = 0;
            recent_n = 0;
            if (o.target_loss > 0 && val <= o.target_loss) {
                reached = true;
                printf("steps_to_target %d\n", step);
                printf("seconds_to_target %.1f\n", now() - wall_start);
            }
        }
    }
    if (o.target_loss > 0 && !reached)
        printf("target_not_reached %g\n", o.target_loss);
    if (csv)
        fclose(csv);
    if (o.plot && dg_plot_history(history, n_evals, NULL, o.plot) != DG_OK)
        fprintf(stderr, "charlm: cannot write %s\n", o.plot);
    free(history);
    printf("val_loss %.4f\n", val);
    printf("train_tokens_per_s %.0f\n", (double)(o.batch * o.seq) * steps_done / train_seconds);
    if (o.profile && steps_done >= profile_from) {
        dg_plan_profile_report(train, stdout, 40);
        printf("optimizer step (clip + %s): %.3f ms per step\n", gpt ? "AdamW" : "Adam",
               1e3 * opt_seconds / (steps_done - profile_from + 1));
    }
    if (o.sample_len > 0)
        generate(&m, &o, &text);
    free(x);
    free(y);
    dg_plan_free(train);
    dg_plan_free(eval);
    dg_optim_free(opt);
    dg_graph_free(m.g);
    dg_text_free(&text);
    return 0;
}
