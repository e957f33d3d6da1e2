/*
 * A graph's parameters and state (batch-norm running statistics), an optimizer's state, the
 * training loop's position and a generator, saved to and loaded from a dg_checkpoint by name.
 * Loading checks everything first and then writes, so a failed load changes nothing. Errors
 * stick to the graph.
 */
#include "dagrad.h"
#include "alloc.h"
#include "safetensors_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPTIM_PREFIX "optimizer."

static dg_status graph_fail_from(dg_graph *g, const dg_checkpoint *ck)
{
    dg_status st = dg_checkpoint_status(ck);
    dg_graph_set_error(g, st, "%s", dg_checkpoint_error(ck));
    return st;
}

static const char *label_of(const dg_checkpoint *ck)
{
    return ck->label ? ck->label : "(memory)";
}

/* The graph's parameters in creation order; *count receives how many. NULL with the error
 * on the graph when out of memory. */
static dg_node **graph_params(dg_graph *g, int *count, const char *what)
{
    int n = dg_graph_params(g, 0, NULL);
    dg_node **params = dg__malloc((size_t)(n > 0 ? n : 1) * sizeof *params);
    if (params == NULL) {
        dg_graph_set_error(g, DG_ERR_NOMEM, "%s: out of memory", what);
        return NULL;
    }
    dg_graph_params(g, n, params);
    *count = n;
    return params;
}

/* A parameter's name ("" for none, which then matches nothing). */
static const char *param_name(const dg_node *n)
{
    const char *name = dg_node_name(n);
    return name ? name : "";
}

static void node_shape(const dg_node *n, int64_t *shape)
{
    for (int i = 0; i < dg_node_ndim(n); i++)
        shape[i] = dg_node_dim(n, i);
}

/* ---- State: batch-norm running statistics -------------------------------------------------- */

#define STATE_NAME_LEN 512

/* A state tensor of the graph and the name it is saved under. */
struct state {
    dg_node *node;
    char name[STATE_NAME_LEN];
};

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The name of running statistic `which` ("running_mean" or "running_var") of batch_norm node
 * `bn`: the constant's own name (dg_name) when it has one; else "<layer>.<which>" when the
 * node's gamma is a parameter "<layer>.weight" (as dg_batch_norm_layer makes them: PyTorch's
 * state_dict names); else "batch_norm.<node index>.<which>". */
static void state_name(const dg_node *bn, const dg_node *stat, const char *which, char *out,
                       size_t len)
{
    const dg_node *gamma = dg_node_input(bn, 4);
    const char *gname = gamma != NULL && dg_node_kind_of(gamma) == DG_NODE_PARAM
                            ? dg_node_name(gamma) : NULL;
    if (dg_node_name(stat) != NULL)
        snprintf(out, len, "%s", dg_node_name(stat));
    else if (gname != NULL && ends_with(gname, ".weight"))
        snprintf(out, len, "%.*s.%s", (int)(strlen(gname) - strlen(".weight")), gname, which);
    else
        snprintf(out, len, "batch_norm.%d.%s", dg_node_index(bn), which);
}

/* The graph's state: the running statistics of every batch_norm node (its inputs 1 and 2,
 * constants that training runs update in place), each once, in node order, with its name.
 * *count receives how many. NULL with the error on the graph when out of memory. */
static struct state *graph_state(dg_graph *g, int *count, const char *what)
{
    int n_nodes = dg_graph_node_count(g), cap = 0;
    for (int i = 0; i < n_nodes; i++) {
        const dg_node *n = dg_graph_node(g, i);
        cap += dg_node_kind_of(n) == DG_NODE_OP && strcmp(dg_node_op_name(n), "batch_norm") == 0
                   ? 2 : 0;
    }
    struct state *states = dg__malloc((size_t)(cap > 0 ? cap : 1) * sizeof *states);
    if (states == NULL) {
        dg_graph_set_error(g, DG_ERR_NOMEM, "%s: out of memory", what);
        return NULL;
    }
    static const char *const which[2] = {"running_mean", "running_var"};
    int found = 0;
    for (int i = 0; i < n_nodes; i++) {
        const dg_node *bn = dg_graph_node(g, i);
        if (dg_node_kind_of(bn) != DG_NODE_OP || strcmp(dg_node_op_name(bn), "batch_norm") != 0)
            continue;
        for (int w = 0; w < 2; w++) {
            dg_node *stat = dg_node_input(bn, 1 + w);
            bool seen = stat == NULL || dg_node_kind_of(stat) != DG_NODE_CONSTANT;
            for (int k = 0; !seen && k < found; k++)
                seen = states[k].node == stat; /* one layer applied twice */
            if (seen)
                continue;
            states[found].node = stat;
            state_name(bn, stat, which[w], states[found].name, sizeof states[found].name);
            found++;
        }
    }
    *count = found;
    return states;
}

/* ---- Saving ------------------------------------------------------------------------------- */

static void set_meta_i64(dg_checkpoint *ck, const char *key, long long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    dg_checkpoint_set_metadata(ck, key, buf);
}

static void set_meta_double(dg_checkpoint *ck, const char *key, double v)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", v); /* strtod reads back the same double */
    dg_checkpoint_set_metadata(ck, key, buf);
}

static void add_optimizer(dg_checkpoint *ck, dg_optim *opt, bool transpose_2d,
                          const char *prefix)
{
    if (dg_optim_status(opt) != DG_OK) {
        dg__ck_fail(ck, DG_ERR_INVALID_ARG, "save: the optimizer is unusable: %s",
                    dg_optim_error(opt));
        return;
    }
    int n = dg_optim_param_count(opt);
    dg_checkpoint_set_metadata(ck, "optimizer", dg_optim_name(opt));
    set_meta_i64(ck, "optimizer.param_count", n);
    set_meta_i64(ck, "optimizer.step", (long long)dg_optim_step_count(opt));
    set_meta_double(ck, "optimizer.base_lr", dg_optim_base_lr(opt));
    set_meta_double(ck, "optimizer.lr", dg_optim_lr(opt));
    char key[96];
    for (int i = 0; i < n; i++) {
        dg_node *param = dg_optim_param_node(opt, i);
        snprintf(key, sizeof key, "optimizer.param.%d", i);
        /* The name the parameter has in the file, prefix included. */
        const char *pname = param ? dg_node_name(param) : NULL;
        char stored[512];
        snprintf(stored, sizeof stored, "%s%s", pname && prefix ? prefix : "",
                 pname ? pname : "");
        dg_checkpoint_set_metadata(ck, key, stored);
        for (int s = 0; s < dg_optim_state_count(opt); s++) {
            const char *slot = dg_optim_state_name(opt, s);
            int64_t numel = 0;
            const float *data = dg_optim_state(opt, i, slot, &numel);
            snprintf(key, sizeof key, "optimizer.state.%d.%s", i, slot);
            int64_t shape[DG_MAX_DIMS];
            int ndim = 1;
            shape[0] = numel;
            if (param != NULL && dg_node_numel(param) == numel) {
                ndim = dg_node_ndim(param);
                node_shape(param, shape);
            }
            dg_checkpoint_add_f32(ck, key, ndim, shape, data, transpose_2d && ndim == 2);
        }
    }
}

static void add_fit_state(dg_checkpoint *ck, const dg_fit_state *fit)
{
    set_meta_i64(ck, "fit.epoch", fit->epoch);
    set_meta_i64(ck, "fit.step", (long long)fit->step);
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, fit->seed);
    dg_checkpoint_set_metadata(ck, "fit.seed", buf);
    set_meta_double(ck, "fit.best_loss", fit->best_loss);
    set_meta_i64(ck, "fit.best_epoch", fit->best_epoch);
    set_meta_i64(ck, "fit.epochs_without_improvement", fit->epochs_without_improvement);
}

static void add_rng(dg_checkpoint *ck, const dg_rng *rng)
{
    char buf[4 * 16 + 1];
    for (int i = 0; i < 4; i++)
        snprintf(buf + 16 * i, 17, "%016" PRIx64, rng->s[i]);
    dg_checkpoint_set_metadata(ck, "rng", buf);
}

dg_status dg_save_checkpoint(dg_graph *g, const char *path, const dg_save_options *opts)
{
    if (g == NULL)
        return DG_ERR_INVALID_ARG;
    dg_save_options defaults = DG_SAVE_DEFAULTS;
    if (opts == NULL)
        opts = &defaults;
    if (path == NULL) {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "save: path is NULL");
        return DG_ERR_INVALID_ARG;
    }
    dg_checkpoint *ck = dg_checkpoint_new();
    if (ck == NULL) {
        dg_graph_set_error(g, DG_ERR_NOMEM, "save: %s: out of memory", path);
        return DG_ERR_NOMEM;
    }
    dg__free(ck->label);
    ck->label = dg__malloc(strlen(path) + 1);
    if (ck->label)
        strcpy(ck->label, path);
    dg_checkpoint_set_metadata(ck, "format", opts->transpose_2d ? "pt" : "dagrad");
    dg_checkpoint_set_metadata(ck, "dagrad.layout", opts->transpose_2d ? "torch" : "dagrad");
    int n_params = 0;
    dg_node **params = opts->params ? graph_params(g, &n_params, "save") : NULL;
    if (opts->params && params == NULL) {
        dg_checkpoint_free(ck);
        return DG_ERR_NOMEM;
    }
    char name[512];
    for (int i = 0; i < n_params; i++) {
        dg_node *p = params[i];
        const char *pname = param_name(p);
        snprintf(name, sizeof name, "%s%s", opts->prefix ? opts->prefix : "", pname);
        if (strncmp(name, OPTIM_PREFIX, strlen(OPTIM_PREFIX)) == 0 && opts->optimizer) {
            dg__ck_fail(ck, DG_ERR_INVALID_ARG, "save: parameter '%s': names starting with "
                        "'optimizer.' are reserved for optimizer state", name);
            break;
        }
        int64_t shape[DG_MAX_DIMS];
        node_shape(p, shape);
        dg_checkpoint_add_f32(ck, name, dg_node_ndim(p), shape, dg_param_data(p),
                              opts->transpose_2d && dg_node_ndim(p) == 2);
    }
    dg__free(params);
    int n_states = 0;
    struct state *states = opts->params ? graph_state(g, &n_states, "save") : NULL;
    if (opts->params && states == NULL) {
        dg_checkpoint_free(ck);
        return DG_ERR_NOMEM;
    }
    for (int i = 0; i < n_states; i++) {
        snprintf(name, sizeof name, "%s%s", opts->prefix ? opts->prefix : "", states[i].name);
        dg_checkpoint_add_f32(ck, name, 1, (int64_t[]){dg_node_numel(states[i].node)},
                              dg_param_data(states[i].node), false);
    }
    dg__free(states);
    if (opts->optimizer)
        add_optimizer(ck, opts->optimizer, opts->transpose_2d, opts->prefix);
    if (opts->fit)
        add_fit_state(ck, opts->fit);
    if (opts->rng)
        add_rng(ck, opts->rng);
    dg_status st = dg_checkpoint_save(ck, path);
    if (st != DG_OK)
        graph_fail_from(g, ck);
    dg_checkpoint_free(ck);
    return st;
}

/* ---- Loading ------------------------------------------------------------------------------ */

/* Parses metadata `key` as a decimal integer in [lo, hi]; false with the error on the graph. */
static bool meta_i64(dg_graph *g, const dg_checkpoint *ck, const char *key, long long lo,
                     long long hi, long long *out)
{
    const char *v = dg_checkpoint_metadata(ck, key);
    if (v == NULL) {
        dg_graph_set_error(g, DG_ERR_NOT_FOUND, "load: %s: metadata '%s' is missing",
                           label_of(ck), key);
        return false;
    }
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < lo || x > hi) {
        dg_graph_set_error(g, DG_ERR_FORMAT, "load: %s: metadata '%s' = '%.40s' is not an "
                           "integer in [%lld, %lld]", label_of(ck), key, v, lo, hi);
        return false;
    }
    *out = x;
    return true;
}

static bool parse_fit_state(dg_graph *g, const dg_checkpoint *ck, dg_fit_state *out)
{
    long long epoch, step, best_epoch, waiting;
    if (!meta_i64(g, ck, "fit.epoch", 0, INT32_MAX, &epoch) ||
        !meta_i64(g, ck, "fit.step", 0, INT64_MAX, &step) ||
        !meta_i64(g, ck, "fit.best_epoch", 0, INT32_MAX, &best_epoch) ||
        !meta_i64(g, ck, "fit.epochs_without_improvement", 0, INT32_MAX, &waiting))
        return false;
    const char *seed = dg_checkpoint_metadata(ck, "fit.seed");
    const char *best = dg_checkpoint_metadata(ck, "fit.best_loss");
    char *end1 = NULL, *end2 = NULL;
    errno = 0;
    uint64_t seed_value = seed ? strtoull(seed, &end1, 10) : 0;
    double best_value = best ? strtod(best, &end2) : 0;
    if (seed == NULL || best == NULL || errno != 0 || *end1 != '\0' || end1 == seed ||
        *end2 != '\0' || end2 == best || seed[0] == '-') {
        dg_graph_set_error(g, DG_ERR_FORMAT, "load: %s: metadata fit.seed / fit.best_loss "
                           "missing or malformed", label_of(ck));
        return false;
    }
    *out = (dg_fit_state){.epoch = (int)epoch, .step = step, .seed = seed_value,
                          .best_loss = best_value, .best_epoch = (int)best_epoch,
                          .epochs_without_improvement = (int)waiting};
    return true;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static bool parse_rng(dg_graph *g, const dg_checkpoint *ck, dg_rng *out)
{
    const char *v = dg_checkpoint_metadata(ck, "rng");
    bool ok = v != NULL && strlen(v) == 64;
    dg_rng r = {{0}};
    for (int i = 0; ok && i < 64; i++) {
        int d = hex_digit(v[i]);
        ok = d >= 0;
        r.s[i / 16] = (r.s[i / 16] << 4) | (uint64_t)(d < 0 ? 0 : d);
    }
    if (ok && (r.s[0] | r.s[1] | r.s[2] | r.s[3]) == 0)
        ok = false;
    if (!ok) {
        dg_graph_set_error(g, v ? DG_ERR_FORMAT : DG_ERR_NOT_FOUND, "load: %s: metadata 'rng' "
                           "is %s", label_of(ck), v ? "not 64 hex digits of a non-zero state"
                                                    : "missing");
        return false;
    }
    *out = r;
    return true;
}

/* Does file tensor `t` fit a destination of shape (ndim, shape)? Reports on the graph. */
static bool tensor_fits(dg_graph *g, const dg_checkpoint *ck, const struct dg__st_tensor *t,
                        const char *what, int ndim, const int64_t *shape, bool transpose,
                        bool numel_only)
{
    char a[160], b[160];
    if (!dg__st_dtype_to_f32(t->dtype)) {
        dg_graph_set_error(g, DG_ERR_DTYPE, "load: %s: tensor '%s': dtype %s cannot be loaded "
                           "into float32 %s (F32, F16, BF16 and F64 can)", label_of(ck),
                           t->name, dg__st_dtype_name(t->dtype), what);
        return false;
    }
    int64_t want[DG_MAX_DIMS], numel = 1;
    for (int i = 0; i < ndim; i++) {
        want[i] = shape[transpose && ndim == 2 ? 1 - i : i];
        numel *= shape[i];
    }
    bool same = numel_only ? t->numel == numel : t->ndim == ndim;
    for (int i = 0; same && !numel_only && i < ndim; i++)
        same = t->shape[i] == want[i];
    if (!same) {
        dg_graph_set_error(g, DG_ERR_SHAPE, "load: %s: tensor '%s': shape %s in the file, %s "
                           "%s%s", label_of(ck), t->name,
                           dg__st_shape_str(t->ndim, t->shape, a, sizeof a), what,
                           dg__st_shape_str(ndim, want, b, sizeof b),
                           transpose && ndim == 2 ? " (transposed)" : "");
        return false;
    }
    return true;
}

/* Converts t into dst (numel floats), transposing a 2-D [r, c] file tensor into [c, r]. */
static bool copy_tensor(const struct dg__st_tensor *t, float *dst, bool transpose)
{
    if (!transpose || t->ndim != 2) {
        dg__st_convert_f32(t, dst);
        return true;
    }
    float *tmp = dg__malloc((size_t)(t->numel > 0 ? t->numel : 1) * sizeof *tmp);
    if (tmp == NULL)
        return false;
    dg__st_convert_f32(t, tmp);
    int64_t rows = t->shape[0], cols = t->shape[1];
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            dst[c * rows + r] = tmp[r * cols + c];
    dg__free(tmp);
    return true;
}

/* The parameter a file name maps to, or -1. */
static int map_name(const char *file_name, const dg_load_options *o, dg_node **params,
                    int n_params, char *buf, size_t len)
{
    const char *rest = file_name;
    size_t strip = o->strip_prefix ? strlen(o->strip_prefix) : 0;
    if (strip > 0 && strncmp(file_name, o->strip_prefix, strip) == 0)
        rest = file_name + strip;
    int n = snprintf(buf, len, "%s%s", o->add_prefix ? o->add_prefix : "", rest);
    if (n < 0 || (size_t)n >= len)
        return -1;
    for (int i = 0; i < n_params; i++)
        if (strcmp(param_name(params[i]), buf) == 0)
            return i;
    return -1;
}

static bool is_optimizer_tensor(const char *name)
{
    return strncmp(name, OPTIM_PREFIX, strlen(OPTIM_PREFIX)) == 0;
}

static int find_state(const struct state *states, int n_states, const char *name)
{
    for (int i = 0; i < n_states; i++)
        if (strcmp(states[i].name, name) == 0)
            return i;
    return -1;
}

/* PyTorch's BatchNorm counter "<layer>.num_batches_tracked" beside a state "<layer>.
 * running_mean": dagrad has no use for it (its momentum is fixed), so it is skipped. */
static bool is_torch_bn_counter(const char *mapped, const struct state *states, int n_states)
{
    const char *suffix = ".num_batches_tracked";
    if (!ends_with(mapped, suffix))
        return false;
    char stem[STATE_NAME_LEN];
    snprintf(stem, sizeof stem, "%.*s.running_mean", (int)(strlen(mapped) - strlen(suffix)),
             mapped);
    return find_state(states, n_states, stem) >= 0;
}

/* Checks parameters and state: fills source[i] with the tensor index for parameter i, and
 * state_source[j] for state j (or -1). */
static bool check_params(dg_graph *g, const dg_checkpoint *ck, const dg_load_options *o,
                         dg_node **params, int n_params, int *source,
                         const struct state *states, int n_states, int *state_source)
{
    char mapped[512];
    for (int i = 0; i < n_params; i++)
        source[i] = -1;
    for (int j = 0; j < n_states; j++)
        state_source[j] = -1;
    for (int k = 0; k < ck->n_tensors; k++) {
        const struct dg__st_tensor *t = &ck->tensors[k];
        if (is_optimizer_tensor(t->name))
            continue;
        int i = map_name(t->name, o, params, n_params, mapped, sizeof mapped);
        int j = i < 0 ? find_state(states, n_states, mapped) : -1;
        if (j >= 0) {
            if (o->no_state)
                continue;
            if (state_source[j] >= 0) {
                dg_graph_set_error(g, DG_ERR_INVALID_ARG, "load: %s: tensors '%s' and '%s' "
                                   "both map to state '%s'", label_of(ck),
                                   ck->tensors[state_source[j]].name, t->name, mapped);
                return false;
            }
            char what[STATE_NAME_LEN + 64];
            snprintf(what, sizeof what, "state '%s'", states[j].name);
            if (!tensor_fits(g, ck, t, what, 1,
                             (int64_t[]){dg_node_numel(states[j].node)}, false, false))
                return false;
            state_source[j] = k;
            continue;
        }
        if (i < 0) {
            if (o->partial || is_torch_bn_counter(mapped, states, n_states))
                continue;
            dg_graph_set_error(g, DG_ERR_NOT_FOUND, "load: %s: tensor '%s' (as '%s') matches "
                               "no parameter of the graph (partial loads allow this)",
                               label_of(ck), t->name, mapped);
            return false;
        }
        if (source[i] >= 0) {
            dg_graph_set_error(g, DG_ERR_INVALID_ARG, "load: %s: tensors '%s' and '%s' both "
                               "map to parameter '%s'", label_of(ck),
                               ck->tensors[source[i]].name, t->name, mapped);
            return false;
        }
        int64_t shape[DG_MAX_DIMS];
        node_shape(params[i], shape);
        char what[300];
        snprintf(what, sizeof what, "parameter '%s'", param_name(params[i]));
        if (!tensor_fits(g, ck, t, what, dg_node_ndim(params[i]), shape, o->transpose_2d,
                         false))
            return false;
        source[i] = k;
    }
    for (int i = 0; !o->partial && i < n_params; i++) {
        if (source[i] < 0) {
            dg_graph_set_error(g, DG_ERR_NOT_FOUND, "load: %s: parameter '%s' is not in the "
                               "file (partial loads allow this)", label_of(ck),
                               param_name(params[i]));
            return false;
        }
    }
    for (int j = 0; !o->partial && !o->no_state && j < n_states; j++) {
        if (state_source[j] < 0) {
            dg_graph_set_error(g, DG_ERR_NOT_FOUND, "load: %s: state '%s' (batch-norm running "
                               "statistics) is not in the file (partial loads, or no_state, "
                               "allow this)", label_of(ck), states[j].name);
            return false;
        }
    }
    return true;
}

/* Checks the optimizer part; fills slot_source[i * n_slots + s]. */
static bool check_optimizer(dg_graph *g, const dg_checkpoint *ck, const dg_load_options *o,
                            int *slot_source, long long *step)
{
    dg_optim *opt = o->optimizer;
    bool transpose = o->transpose_2d;
    if (dg_optim_status(opt) != DG_OK) {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "load: the optimizer is unusable: %s",
                           dg_optim_error(opt));
        return false;
    }
    const char *kind = dg_checkpoint_metadata(ck, "optimizer");
    if (kind == NULL || strcmp(kind, dg_optim_name(opt)) != 0) {
        dg_graph_set_error(g, kind ? DG_ERR_INVALID_ARG : DG_ERR_NOT_FOUND,
                           "load: %s: %s optimizer state%s%s, loading into %s", label_of(ck),
                           kind ? "the file holds" : "no", kind ? " of " : " in the file",
                           kind ? kind : "", dg_optim_name(opt));
        return false;
    }
    long long count;
    int n = dg_optim_param_count(opt), n_slots = dg_optim_state_count(opt);
    if (!meta_i64(g, ck, "optimizer.step", 0, INT64_MAX, step) ||
        !meta_i64(g, ck, "optimizer.param_count", 0, INT32_MAX, &count))
        return false;
    if (count != n) {
        dg_graph_set_error(g, DG_ERR_SHAPE, "load: %s: optimizer state for %lld parameters, "
                           "the optimizer has %d", label_of(ck), count, n);
        return false;
    }
    char key[96], mapped[512];
    for (int i = 0; i < n; i++) {
        /* The state of parameter i must be that of the same parameter (by name, mapped like
         * the parameters), not of another one with as many elements. */
        snprintf(key, sizeof key, "optimizer.param.%d", i);
        const char *saved = dg_checkpoint_metadata(ck, key);
        dg_node *node = dg_optim_param_node(opt, i);
        if (saved != NULL && saved[0] != '\0' && node != NULL && dg_node_name(node) != NULL) {
            map_name(saved, o, NULL, 0, mapped, sizeof mapped);
            if (strcmp(mapped, dg_node_name(node)) != 0) {
                dg_graph_set_error(g, DG_ERR_INVALID_ARG, "load: %s: optimizer parameter %d is "
                                   "'%s' in the file but '%s' in the optimizer", label_of(ck),
                                   i, mapped, dg_node_name(node));
                return false;
            }
        }
        for (int s = 0; s < n_slots; s++) {
            const char *slot = dg_optim_state_name(opt, s);
            snprintf(key, sizeof key, "optimizer.state.%d.%s", i, slot);
            int k = dg_checkpoint_find(ck, key);
            if (k < 0) {
                dg_graph_set_error(g, DG_ERR_NOT_FOUND, "load: %s: tensor '%s' (optimizer "
                                   "state) is missing", label_of(ck), key);
                return false;
            }
            int64_t numel = 0;
            dg_optim_state(opt, i, slot, &numel);
            dg_node *param = dg_optim_param_node(opt, i);
            int64_t shape[DG_MAX_DIMS] = {numel};
            int ndim = 1;
            bool numel_only = true;
            if (param != NULL && transpose && dg_node_ndim(param) == 2) {
                ndim = 2;
                node_shape(param, shape);
                numel_only = false;
            }
            if (!tensor_fits(g, ck, &ck->tensors[k], "optimizer state", ndim, shape,
                             transpose, numel_only))
                return false;
            slot_source[i * n_slots + s] = k;
        }
    }
    return true;
}

dg_status dg_load_checkpoint_from(dg_graph *g, dg_checkpoint *ck, const dg_load_options *opts)
{
    if (g == NULL)
        return DG_ERR_INVALID_ARG;
    if (ck == NULL || ck->status != DG_OK)
        return graph_fail_from(g, ck);
    dg_load_options defaults = DG_LOAD_DEFAULTS;
    const dg_load_options *o = opts ? opts : &defaults;
    int n_params = 0, n_slots = o->optimizer ? dg_optim_state_count(o->optimizer) : 0;
    int n_opt = o->optimizer ? dg_optim_param_count(o->optimizer) : 0;
    int n_states = 0;
    dg_node **params = o->params ? graph_params(g, &n_params, "load") : NULL;
    struct state *states = o->params ? graph_state(g, &n_states, "load") : NULL;
    int *source = dg__malloc((size_t)(n_params + 1) * sizeof *source);
    int *state_source = dg__malloc((size_t)(n_states + 1) * sizeof *state_source);
    int *slot_source = dg__malloc((size_t)(n_opt * n_slots + 1) * sizeof *slot_source);
    if ((o->params && (params == NULL || states == NULL)) || source == NULL ||
        state_source == NULL || slot_source == NULL) {
        dg__free(params);
        dg__free(states);
        dg__free(source);
        dg__free(state_source);
        dg__free(slot_source);
        dg_graph_set_error(g, DG_ERR_NOMEM, "load: %s: out of memory", label_of(ck));
        return DG_ERR_NOMEM;
    }
    long long step = 0;
    dg_fit_state fit;
    dg_rng rng;
    bool ok = (!o->params || check_params(g, ck, o, params, n_params, source, states,
                                          n_states, state_source)) &&
              (!o->optimizer ||
               check_optimizer(g, ck, o, slot_source, &step)) &&
              (!o->fit || parse_fit_state(g, ck, &fit)) && (!o->rng || parse_rng(g, ck, &rng));
    int loaded = 0;
    /* Everything is checked: from here on only an allocation for a transpose can fail. */
    for (int i = 0; ok && i < n_params; i++) {
        if (source[i] < 0)
            continue;
        ok = copy_tensor(&ck->tensors[source[i]], dg_param_data(params[i]), o->transpose_2d);
        loaded++;
    }
    for (int j = 0; ok && j < n_states; j++)
        if (state_source[j] >= 0)
            dg__st_convert_f32(&ck->tensors[state_source[j]], dg_param_data(states[j].node));
    for (int i = 0; ok && i < n_opt; i++) {
        for (int s = 0; ok && s < n_slots; s++) {
            const struct dg__st_tensor *t = &ck->tensors[slot_source[i * n_slots + s]];
            float *dst = dg_optim_state(o->optimizer, i, dg_optim_state_name(o->optimizer, s),
                                        NULL);
            ok = copy_tensor(t, dst, o->transpose_2d);
        }
    }
    if (ok && o->optimizer)
        dg_optim_set_step_count(o->optimizer, step);
    if (ok && o->fit)
        *o->fit = fit;
    if (ok && o->rng)
        *o->rng = rng;
    if (!ok && dg_graph_status(g) == DG_OK)
        dg_graph_set_error(g, DG_ERR_NOMEM, "load: %s: out of memory", label_of(ck));
    if (o->n_loaded)
        *o->n_loaded = ok ? loaded : 0;
    dg__free(params);
    dg__free(states);
    dg__free(source);
    dg__free(state_source);
    dg__free(slot_source);
    return ok ? DG_OK : dg_graph_status(g);
}

dg_status dg_load_checkpoint(dg_graph *g, const char *path, const dg_load_options *opts)
{
    if (g == NULL)
        return DG_ERR_INVALID_ARG;
    dg_checkpoint *ck = dg_checkpoint_open(path);
    dg_status st = dg_load_checkpoint_from(g, ck, opts);
    dg_checkpoint_free(ck);
    return st;
}
