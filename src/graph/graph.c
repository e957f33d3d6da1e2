/* The graph: node storage, the sticky error, leaves (inputs, parameters, constants). */
#include "graph_internal.h"
#include "op.h" /* the node builders and accessors implemented here */
#include "alloc.h"
#include "threads.h"

#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[DG_STATUS_COUNT] = {
    [DG_OK] = "ok",
    [DG_ERR_INVALID_ARG] = "invalid argument",
    [DG_ERR_SHAPE] = "shape error",
    [DG_ERR_DTYPE] = "dtype error",
    [DG_ERR_NOMEM] = "out of memory",
    [DG_ERR_STATE] = "invalid state",
    [DG_ERR_FOREIGN_NODE] = "node of another graph",
    [DG_ERR_NOT_DIFFERENTIABLE] = "not differentiable",
    [DG_ERR_IO] = "I/O error",
    [DG_ERR_FORMAT] = "format error",
    [DG_ERR_NOT_FOUND] = "not found",
};

const char *dg_status_str(dg_status status)
{
    if (status < 0 || status >= DG_STATUS_COUNT)
        return "unknown status";
    return status_names[status];
}

dg_graph *dg_graph_new(void)
{
    return dg__calloc(1, sizeof(dg_graph));
}

static void node_free(dg_node *n)
{
    dg__free(n->inputs);
    dg__free(n->attrs);
    dg__free(n->name);
    dg__free(n->storage);
    dg__free(n);
}

void dg_graph_free(dg_graph *g)
{
    if (g == NULL)
        return;
    for (int i = 0; i < g->n_nodes; i++)
        node_free(g->nodes[i]);
    dg__free(g->nodes);
    dg__free(g->names);
    dg__scopes_free(g);
    dg__free(g);
}

/* ---- names: inputs and parameters are found by name in O(1) -------------------------- */

static uint64_t name_hash(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 0x100000001b3ull;
    return h;
}

static dg_node *lookup_name(const dg_graph *g, const char *name)
{
    if (g->name_cap == 0)
        return NULL;
    size_t mask = (size_t)g->name_cap - 1;
    for (size_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
        int slot = g->names[i];
        if (slot == 0)
            return NULL;
        if (strcmp(g->nodes[slot - 1]->name, name) == 0)
            return g->nodes[slot - 1];
    }
}

static void insert_name(int *table, int cap, const dg_node *n)
{
    size_t mask = (size_t)cap - 1;
    size_t i = name_hash(n->name) & mask;
    while (table[i] != 0)
        i = (i + 1) & mask;
    table[i] = n->index + 1;
}

/* Makes room for one more name (load factor at most 1/2). */
static bool reserve_name(dg_graph *g)
{
    if (2 * (g->n_named + 1) <= g->name_cap)
        return true;
    int cap = g->name_cap ? g->name_cap * 2 : 64;
    int *table = dg__calloc((size_t)cap, sizeof *table);
    if (table == NULL)
        return false;
    for (int i = 0; i < g->name_cap; i++)
        if (g->names[i] != 0)
            insert_name(table, cap, g->nodes[g->names[i] - 1]);
    dg__free(g->names);
    g->names = table;
    g->name_cap = cap;
    return true;
}

void dg__set_error_v(dg_graph *g, dg_status status, const char *fmt, va_list args)
{
    /* DG_OK is not an error: nothing to stick (else the graph would hold a message with an
     * OK status). A NULL format gives the status's own name as the message. */
    if (g == NULL || g->status != DG_OK || status == DG_OK)
        return;
    g->status = status;
    if (fmt == NULL)
        snprintf(g->error, sizeof g->error, "%s", dg_status_str(status));
    else
        vsnprintf(g->error, sizeof g->error, fmt, args);
}

void dg_graph_set_error(dg_graph *g, dg_status status, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    dg__set_error_v(g, status, fmt, args);
    va_end(args);
}

const char *dg__node_str(const dg_node *n, char *buf, size_t len)
{
    if (n->name != NULL)
        snprintf(buf, len, "node %d '%s' (%s)", n->index, n->name, dg_node_op_name(n));
    else
        snprintf(buf, len, "node %d (%s)", n->index, dg_node_op_name(n));
    return buf;
}

dg_node *dg__fail(dg_graph *g, dg_status status, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    dg__set_error_v(g, status, fmt, args);
    va_end(args);
    return NULL;
}

dg_status dg_graph_status(const dg_graph *g)
{
    return g == NULL ? DG_ERR_INVALID_ARG : g->status;
}

const char *dg_graph_error(const dg_graph *g)
{
    if (g == NULL)
        return "graph is NULL";
    return g->error;
}

void dg_graph_clear_error(dg_graph *g)
{
    if (g == NULL)
        return;
    g->status = DG_OK;
    g->error[0] = '\0';
}

int dg_graph_node_count(const dg_graph *g)
{
    return g == NULL ? 0 : g->n_nodes;
}

dg_node *dg_graph_node(const dg_graph *g, int index)
{
    if (g == NULL || index < 0 || index >= g->n_nodes)
        return NULL;
    return g->nodes[index];
}

dg_node *dg_graph_find(dg_graph *g, const char *name)
{
    if (g == NULL)
        return NULL;
    if (name == NULL)
        return dg__fail(g, DG_ERR_INVALID_ARG, "find: name is NULL");
    dg_node *found = lookup_name(g, name);
    if (found != NULL)
        return found;
    return dg__fail(g, DG_ERR_NOT_FOUND, "find: no input or parameter named '%s'", name);
}

int dg__default_threads(void)
{
    int env = dg__env_threads();
    if (env > 0)
        return env;
    int procs = omp_get_num_procs();
    return procs >= 1 ? procs : 1;
}

dg_status dg_graph_set_threads(dg_graph *g, int n_threads)
{
    if (g == NULL)
        return DG_ERR_INVALID_ARG;
    if (n_threads < 0 || n_threads > 1024) {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "set_threads: %d threads is out of range 0..1024",
                           n_threads);
        return DG_ERR_INVALID_ARG;
    }
    g->n_threads = n_threads;
    return DG_OK;
}

int dg_graph_threads(const dg_graph *g)
{
    if (g == NULL)
        return 0;
    return g->n_threads > 0 ? g->n_threads : dg__default_threads();
}

/* Appends a node (taking ownership) or frees it and reports out of memory. */
static dg_node *append_node(dg_graph *g, dg_node *n)
{
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        dg_node **grown = dg__realloc(g->nodes, (size_t)cap * sizeof *grown);
        if (grown == NULL) {
            node_free(n);
            return dg__fail(g, DG_ERR_NOMEM, "out of memory growing the graph to %d nodes", cap);
        }
        g->nodes = grown;
        g->cap_nodes = cap;
    }
    n->graph = g;
    n->index = g->n_nodes;
    n->scope = g->scope;
    g->nodes[g->n_nodes++] = n;
    return n;
}

/* Checks a user shape for a leaf; writes it into out. */
static bool leaf_shape(dg_graph *g, const char *what, const char *name, dg_dtype dtype,
                       int ndim, const int64_t *shape, struct dg_shape *out)
{
    if (ndim < 0 || ndim > DG_MAX_DIMS) {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "%s '%s': %d dimensions (0..%d allowed)", what,
                           name ? name : "", ndim, DG_MAX_DIMS);
        return false;
    }
    if (ndim > 0 && shape == NULL) {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "%s '%s': shape is NULL", what, name ? name : "");
        return false;
    }
    if (dtype != DG_F32 && dtype != DG_I32) {
        dg_graph_set_error(g, DG_ERR_DTYPE, "%s '%s': unknown dtype %d", what, name ? name : "",
                           (int)dtype);
        return false;
    }
    out->dtype = dtype;
    out->ndim = ndim;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0 || shape[i] > DG_MAX_NUMEL / numel) {
            dg_graph_set_error(g, DG_ERR_SHAPE, "%s '%s': dimension %d is %lld (must be > 0 "
                               "and the tensor at most 2^40 elements)", what, name ? name : "",
                               i, (long long)shape[i]);
            return false;
        }
        numel *= shape[i];
        out->dim[i] = shape[i];
    }
    return true;
}

static dg_node *new_leaf(dg_graph *g, dg_node_kind kind, const char *what, const char *name,
                         dg_dtype dtype, int ndim, const int64_t *shape)
{
    if (g == NULL)
        return NULL;
    if (g->status != DG_OK)
        return NULL; /* a pending error: keep the first message */
    if (kind != DG_NODE_CONSTANT) {
        if (name == NULL || *name == '\0')
            return dg__fail(g, DG_ERR_INVALID_ARG, "%s: name is NULL or empty", what);
        const dg_node *taken = lookup_name(g, name);
        if (taken != NULL)
            return dg__fail(g, DG_ERR_INVALID_ARG, "%s: name '%s' is already used by node %d",
                            what, name, taken->index);
        if (!reserve_name(g))
            return dg__fail(g, DG_ERR_NOMEM, "%s '%s': out of memory", what, name);
    }
    struct dg_shape s;
    if (!leaf_shape(g, what, name, dtype, ndim, shape, &s))
        return NULL;
    dg_node *n = dg__calloc(1, sizeof *n);
    if (n == NULL)
        return dg__fail(g, DG_ERR_NOMEM, "%s '%s': out of memory", what, name ? name : "");
    n->kind = kind;
    n->shape = s;
    /* dg_plan_set_input_shape may change any axis of an input; nothing else is a source. */
    n->dynamic_axes = kind == DG_NODE_INPUT ? (uint32_t)((1u << ndim) - 1) : 0;
    if (name != NULL && (n->name = dg__strdup(name)) == NULL) {
        dg__free(n);
        return dg__fail(g, DG_ERR_NOMEM, "%s '%s': out of memory", what, name);
    }
    if (kind == DG_NODE_PARAM || kind == DG_NODE_CONSTANT) {
        int64_t numel = dg__numel(&s);
        n->storage = dg__calloc((size_t)(numel > 0 ? numel : 1), sizeof(float));
        if (n->storage == NULL) {
            node_free(n);
            return dg__fail(g, DG_ERR_NOMEM, "%s '%s': out of memory for %lld floats", what,
                            name ? name : "", (long long)numel);
        }
    }
    n = append_node(g, n);
    if (n != NULL && n->name != NULL) {
        insert_name(g->names, g->name_cap, n);
        g->n_named++;
    }
    return n;
}

dg_node *dg_input_typed(dg_graph *g, const char *name, dg_dtype dtype, int ndim,
                        const int64_t *shape)
{
    return new_leaf(g, DG_NODE_INPUT, "input", name, dtype, ndim, shape);
}

dg_node *dg_input_static(dg_graph *g, const char *name, dg_dtype dtype, int ndim,
                         const int64_t *shape)
{
    dg_node *n = new_leaf(g, DG_NODE_INPUT, "input", name, dtype, ndim, shape);
    if (n != NULL)
        n->static_shape = true;
    return n;
}

dg_node *dg_input(dg_graph *g, const char *name, int ndim, const int64_t *shape)
{
    return new_leaf(g, DG_NODE_INPUT, "input", name, DG_F32, ndim, shape);
}

dg_node *dg_param(dg_graph *g, const char *name, int ndim, const int64_t *shape)
{
    return new_leaf(g, DG_NODE_PARAM, "param", name, DG_F32, ndim, shape);
}

dg_node *dg_constant(dg_graph *g, int ndim, const int64_t *shape, const float *data)
{
    if (g != NULL && g->status == DG_OK && data == NULL)
        return dg__fail(g, DG_ERR_INVALID_ARG, "constant: data is NULL");
    dg_node *n = new_leaf(g, DG_NODE_CONSTANT, "constant", NULL, DG_F32, ndim, shape);
    if (n != NULL)
        memcpy(n->storage, data, (size_t)dg__numel(&n->shape) * sizeof(float));
    return n;
}

dg_node *dg_scalar(dg_graph *g, float value)
{
    return dg_constant(g, 0, NULL, &value);
}

dg_node *dg__make_node(dg_graph *g, dg_op_id op, int n_inputs, dg_node *const *inputs,
                       const void *attrs)
{
    return dg__make_node_def(g, dg__op_def(op), n_inputs, inputs, attrs);
}

dg_node *dg__make_node_def(dg_graph *g, const struct dg_op_def *def, int n_inputs,
                           dg_node *const *inputs, const void *attrs)
{
    if (g == NULL)
        return NULL;
    bool pending = g->status != DG_OK;
    if (n_inputs < 1 || n_inputs > DG_MAX_NODE_INPUTS || inputs == NULL ||
        (def->n_inputs >= 0 && n_inputs != def->n_inputs)) {
        if (pending)
            return NULL;
        if (def->n_inputs < 0)
            return dg__fail(g, DG_ERR_INVALID_ARG, "%s: %d inputs given (1..%d expected)",
                            def->name, n_inputs, DG_MAX_NODE_INPUTS);
        return dg__fail(g, DG_ERR_INVALID_ARG, "%s: %d inputs given (%d expected)", def->name,
                        n_inputs, def->n_inputs);
    }
    for (int i = 0; i < n_inputs; i++) {
        if (inputs[i] == NULL) {
            if (pending)
                return NULL; /* pass the earlier failure through silently */
            return dg__fail(g, DG_ERR_INVALID_ARG, "%s: input %d is NULL", def->name, i + 1);
        }
        if (inputs[i]->graph != g)
            return dg__fail(g, DG_ERR_FOREIGN_NODE, "%s: input %d, %s, belongs to another "
                            "graph", def->name, i + 1,
                            dg__node_str(inputs[i], (char[160]){0}, 160));
    }
    if (pending)
        return NULL;
    /* n_inputs <= DG_MAX_NODE_INPUTS, so none of these byte counts overflows. */
    size_t n = (size_t)n_inputs;
    dg_node *node = dg__calloc(1, sizeof *node);
    dg_node **ins = dg__malloc(n * sizeof *ins);
    struct dg_shape *in_shapes = dg__malloc(n * sizeof *in_shapes);
    uint32_t *in_axes = dg__malloc(n * sizeof *in_axes);
    void *blob = def->attrs_size > 0 ? dg__calloc(1, def->attrs_size) : NULL;
    if (node == NULL || ins == NULL || in_shapes == NULL || in_axes == NULL ||
        (def->attrs_size > 0 && blob == NULL)) {
        dg__free(node);
        dg__free(ins);
        dg__free(in_shapes);
        dg__free(in_axes);
        dg__free(blob);
        return dg__fail(g, DG_ERR_NOMEM, "%s: out of memory for a node of %d inputs", def->name,
                        n_inputs);
    }
    if (blob != NULL && attrs != NULL)
        memcpy(blob, attrs, def->attrs_size);
    uint32_t any = 0;
    for (int i = 0; i < n_inputs; i++) {
        in_shapes[i] = inputs[i]->shape;
        any |= in_axes[i] = inputs[i]->dynamic_axes;
    }
    struct dg_shape out;
    memset(&out, 0, sizeof out);
    char msg[DG_ERROR_LEN] = "";
    dg_status st = def->infer(def, blob, n_inputs, in_shapes, &out, msg, sizeof msg);
    if (st == DG_OK && !dg__shape_fits(&out))
        st = dg__shape_error(msg, sizeof msg, DG_ERR_SHAPE, "%s: the result would have more "
                             "than 2^40 elements", def->name);
    if (st == DG_OK) {
        if (def->dynamic_axes != NULL)
            node->dynamic_axes = def->dynamic_axes(def, blob, n_inputs, in_shapes, in_axes, &out);
        else
            node->dynamic_axes = any ? (uint32_t)((1u << out.ndim) - 1) : 0;
    }
    dg__free(in_shapes);
    dg__free(in_axes);
    if (st != DG_OK) {
        dg__free(node);
        dg__free(ins);
        dg__free(blob);
        return dg__fail(g, st, "%s", msg[0] ? msg : def->name);
    }
    memcpy(ins, inputs, n * sizeof *ins);
    node->kind = DG_NODE_OP;
    node->def = def;
    node->n_inputs = n_inputs;
    node->inputs = ins;
    node->attrs = blob;
    node->shape = out;
    return append_node(g, node);
}

/* ---- accessors ----------------------------------------------------------------------- */

dg_node *dg__find_name(const dg_graph *g, const char *name)
{
    return (g == NULL || name == NULL) ? NULL : lookup_name(g, name);
}

dg_node *dg__input(const dg_node *node, int i)
{
    return (node != NULL && i >= 0 && i < node->n_inputs) ? node->inputs[i] : NULL;
}

const void *dg__attrs(const dg_node *node) { return node->attrs; }
const struct dg_op_def *dg__node_def(const dg_node *node) { return node->def; }

void dg__mark_backward(dg_graph *g, int first, const dg_node *grad_of)
{
    for (int i = first < 0 ? 0 : first; g != NULL && i < g->n_nodes; i++) {
        if (!g->nodes[i]->is_backward) {
            g->nodes[i]->is_backward = true;
            g->nodes[i]->grad_of = grad_of;
        }
    }
}

void dg__relabel_backward(dg_node *node, const dg_node *grad_of)
{
    node->grad_of = grad_of;
}

int dg__n_inputs(const dg_node *node) { return node != NULL ? node->n_inputs : 0; }
uint32_t dg__node_dynamic_axes(const dg_node *node) { return node->dynamic_axes; }
const struct dg_shape *dg__node_shape(const dg_node *node) { return &node->shape; }

int dg_node_index(const dg_node *n) { return n ? n->index : -1; }
dg_node_kind dg_node_kind_of(const dg_node *n) { return n ? n->kind : DG_NODE_OP; }
const char *dg_node_name(const dg_node *n) { return n ? n->name : NULL; }
dg_dtype dg_node_dtype(const dg_node *n) { return n ? n->shape.dtype : DG_F32; }
int dg_node_ndim(const dg_node *n) { return n ? n->shape.ndim : 0; }
dg_graph *dg_node_graph(const dg_node *n) { return n ? n->graph : NULL; }
int dg_node_input_count(const dg_node *n) { return n ? n->n_inputs : 0; }

dg_node *dg_node_input(const dg_node *n, int i)
{
    return n != NULL && i >= 0 && i < n->n_inputs ? n->inputs[i] : NULL;
}

const char *dg_node_op_name(const dg_node *n)
{
    if (n == NULL)
        return "";
    switch (n->kind) {
    case DG_NODE_INPUT: return "input";
    case DG_NODE_PARAM: return "param";
    case DG_NODE_CONSTANT: return "constant";
    case DG_NODE_OP: break;
    }
    return n->def->name;
}

int64_t dg_node_dim(const dg_node *n, int axis)
{
    if (n == NULL)
        return 0;
    if (axis < 0)
        axis += n->shape.ndim;
    return (axis >= 0 && axis < n->shape.ndim) ? n->shape.dim[axis] : 0;
}

int64_t dg_node_numel(const dg_node *n)
{
    return n ? dg__numel(&n->shape) : 0;
}

float *dg_param_data(dg_node *n)
{
    return n ? n->storage : NULL;
}
