/*
 * Graphviz DOT writer. Ids are node indices, so two dumps of the same graph are identical.
 *
 * Inputs are green ellipses, parameters orange boxes, constants grey plaintext; op nodes are
 * rounded boxes labelled "#index op" (and "name = " when dg_name gave one). Each name scope
 * (dg_scope_push; one per layer) is a cluster, nested like the scopes. Backward nodes are blue
 * and sit in a "backward" cluster, itself split per scope ("backward of dense1"), labelled
 * with the forward node whose gradient they help compute. Options leave the backward pass out,
 * or draw each scope's backward nodes as one box, which keeps a training graph of a few
 * hundred nodes readable.
 */
#include "graph_internal.h"
#include "alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Writes s with the characters DOT strings need escaped. */
static void write_escaped(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', out);
        fputc(*s, out);
    }
}

/* The last component of a scope path ("dense1" of "encoder/dense1"). */
static const char *scope_leaf(const dg_graph *g, int scope)
{
    const char *path = g->scope_paths[scope];
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void write_node(FILE *out, const dg_node *n, int depth)
{
    char shape[128], extra[128] = "";
    dg__shape_str(&n->shape, shape, sizeof shape);
    const char *dtype = n->shape.dtype == DG_I32 ? " i32" : "";
    fprintf(out, "%*sn%d [label=\"", 2 * depth, "", n->index);
    switch (n->kind) {
    case DG_NODE_INPUT:
        fputs("input ", out);
        write_escaped(out, n->name);
        fprintf(out, "\\n%s%s\", shape=ellipse, style=filled, fillcolor=\"#c7e9c0\"];\n", shape,
                dtype);
        return;
    case DG_NODE_PARAM:
        fputs("param ", out);
        write_escaped(out, n->name);
        fprintf(out, "\\n%s\", shape=box, style=filled, fillcolor=\"#fdd0a2\"];\n", shape);
        return;
    case DG_NODE_CONSTANT:
        if (n->name != NULL) {
            write_escaped(out, n->name);
            fputs("\\n", out);
        }
        if (n->shape.ndim == 0)
            fprintf(out, "%g\", shape=plaintext, fontcolor=\"#555555\"];\n", n->storage[0]);
        else
            fprintf(out, "constant\\n%s\", shape=plaintext, fontcolor=\"#555555\"];\n", shape);
        return;
    case DG_NODE_OP:
        break;
    }
    const struct dg_op_def *def = n->def;
    if (def->label)
        def->label(def, n->attrs, extra, sizeof extra);
    fprintf(out, "#%d ", n->index);
    if (n->name != NULL) {
        write_escaped(out, n->name);
        fputs(" = ", out);
    }
    fprintf(out, "%s%s%s", def->name, extra[0] ? " " : "", extra);
    if (n->is_backward && n->grad_of != NULL) {
        fputs("\\ngrad of ", out);
        if (n->grad_of->name)
            write_escaped(out, n->grad_of->name);
        else
            fprintf(out, "%s #%d", dg_node_op_name(n->grad_of), n->grad_of->index);
    }
    fprintf(out, "\\n%s%s\", shape=box, style=\"rounded,filled\", fillcolor=\"%s\"];\n", shape,
            dtype, n->is_backward ? "#c6dbef" : "#ffffff");
}

struct dot_writer {
    const dg_graph *g;
    FILE *out;
    const dg_dot_options *opt;
    int n_scopes;         /* at least 1 (the root) */
    int *backward_count;  /* per scope: backward nodes drawn in it */
};

/* Nodes of `scope` (forward when !backward), then the clusters of its child scopes. */
static void write_scope(const struct dot_writer *w, int scope, bool backward, int depth)
{
    const dg_graph *g = w->g;
    for (int i = 0; i < g->n_nodes; i++) {
        const dg_node *n = g->nodes[i];
        if (n->is_backward == backward && dg__node_scope_id(n) == scope)
            write_node(w->out, n, depth);
    }
    for (int child = 1; child < w->n_scopes; child++) {
        if (g->scope_parent[child] != scope)
            continue;
        /* Skip scopes with nothing to draw on this side. */
        bool any = false;
        for (int i = 0; i < g->n_nodes && !any; i++) {
            const dg_node *n = g->nodes[i];
            int s = dg__node_scope_id(n);
            while (s != 0 && s != child)
                s = g->scope_parent[s];
            any = s == child && n->is_backward == backward;
        }
        if (!any)
            continue;
        fprintf(w->out, "%*ssubgraph cluster_%s%d {\n%*slabel=\"", 2 * depth, "",
                backward ? "b" : "s", child, 2 * depth + 2, "");
        if (backward)
            fputs("backward of ", w->out);
        write_escaped(w->out, scope_leaf(g, child));
        fprintf(w->out, "\";\n%*sstyle=%s;\n%*scolor=\"%s\";\n", 2 * depth + 2, "",
                backward ? "dashed" : "rounded", 2 * depth + 2, "",
                backward ? "#3182bd" : "#636363");
        write_scope(w, child, backward, depth + 1);
        fprintf(w->out, "%*s}\n", 2 * depth, "");
    }
}

/* The id a node is drawn under: its own, or its scope's box when backward is collapsed. */
static void write_id(const struct dot_writer *w, const dg_node *n)
{
    if (n->is_backward && w->opt->collapse_backward)
        fprintf(w->out, "b%d", dg__node_scope_id(n));
    else
        fprintf(w->out, "n%d", n->index);
}

static bool drawn(const struct dot_writer *w, const dg_node *n)
{
    return !(n->is_backward && w->opt->forward_only);
}

static int compare_edges(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Edges into and out of collapsed boxes, each pair once (no self-loops). */
static dg_status write_collapsed_edges(const struct dot_writer *w)
{
    const dg_graph *g = w->g;
    size_t count = 0, cap = 0;
    for (int i = 0; i < g->n_nodes; i++)
        cap += (size_t)g->nodes[i]->n_inputs;
    uint64_t *edges = dg__malloc((cap ? cap : 1) * sizeof *edges);
    if (edges == NULL)
        return DG_ERR_NOMEM;
    /* Key: (from, to) with a box as -(scope + 1), each offset by 2^31 into 32 bits and packed
     * into one uint64 for sorting. */
    for (int i = 0; i < g->n_nodes; i++) {
        const dg_node *n = g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++) {
            const dg_node *from = n->inputs[k];
            if (!from->is_backward && !n->is_backward)
                continue; /* forward edges are written as usual */
            int64_t a = from->is_backward ? -(int64_t)dg__node_scope_id(from) - 1 : from->index;
            int64_t b = n->is_backward ? -(int64_t)dg__node_scope_id(n) - 1 : n->index;
            if (a == b)
                continue;
            edges[count++] = (uint64_t)(a + ((int64_t)1 << 31)) << 32 |
                             (uint64_t)(b + ((int64_t)1 << 31));
        }
    }
    qsort(edges, count, sizeof *edges, compare_edges);
    for (size_t e = 0; e < count; e++) {
        if (e > 0 && edges[e] == edges[e - 1])
            continue;
        int64_t a = (int64_t)(edges[e] >> 32) - ((int64_t)1 << 31);
        int64_t b = (int64_t)(edges[e] & 0xffffffffu) - ((int64_t)1 << 31);
        fprintf(w->out, "  %c%lld -> %c%lld [color=\"#6baed6\", constraint=false];\n",
                a < 0 ? 'b' : 'n',
                (long long)(a < 0 ? -a - 1 : a), b < 0 ? 'b' : 'n',
                (long long)(b < 0 ? -b - 1 : b));
    }
    dg__free(edges);
    return DG_OK;
}

dg_status dg_graph_dump_dot_ex(dg_graph *g, FILE *out, const dg_dot_options *options)
{
    if (g == NULL)
        return DG_ERR_INVALID_ARG;
    if (out == NULL) {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "dump_dot: output stream is NULL");
        return DG_ERR_INVALID_ARG;
    }
    const dg_dot_options defaults = {0};
    struct dot_writer w = {.g = g, .out = out, .opt = options ? options : &defaults,
                           .n_scopes = g->n_scopes > 0 ? g->n_scopes : 1};
    w.backward_count = dg__calloc((size_t)w.n_scopes, sizeof *w.backward_count);
    if (w.backward_count == NULL) {
        dg_graph_set_error(g, DG_ERR_NOMEM, "dump_dot: out of memory");
        return DG_ERR_NOMEM;
    }
    bool any_backward = false;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i]->is_backward) {
            any_backward = true;
            w.backward_count[dg__node_scope_id(g->nodes[i])]++;
        }
    }
    if (w.opt->forward_only)
        any_backward = false;
    fputs("digraph dagrad {\n  rankdir=TB;\n  newrank=true;\n"
          "  node [fontname=\"Helvetica\", fontsize=10];\n", out);
    write_scope(&w, 0, false, 1);
    if (any_backward && w.opt->collapse_backward) {
        for (int s = 0; s < w.n_scopes; s++) {
            if (w.backward_count[s] == 0)
                continue;
            fprintf(out, "  b%d [label=\"backward of ", s);
            write_escaped(out, s == 0 ? "the rest" : g->scope_paths[s]);
            fprintf(out, "\\n%d nodes\", shape=box3d, style=filled, fillcolor=\"#c6dbef\"];\n",
                    w.backward_count[s]);
            /* Beside the last forward node of its scope (the loss for the rest), so that
             * its edges stay short. */
            int last = -1;
            for (int i = 0; i < g->n_nodes; i++)
                if (!g->nodes[i]->is_backward && (s == 0 || g->nodes[i]->scope == s))
                    last = i;
            if (last >= 0)
                fprintf(out, "  { rank=same; b%d; n%d; }\n", s, last);
        }
    } else if (any_backward) {
        fputs("  subgraph cluster_backward {\n    label=\"backward\";\n    style=dashed;\n"
              "    color=\"#3182bd\";\n", out);
        write_scope(&w, 0, true, 2);
        fputs("  }\n", out);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const dg_node *n = g->nodes[i];
        if (!drawn(&w, n) || (n->is_backward && w.opt->collapse_backward))
            continue;
        const struct dg_op_def *def = n->kind == DG_NODE_OP ? n->def : NULL;
        for (int k = 0; k < n->n_inputs; k++) {
            const dg_node *from = n->inputs[k];
            if (!drawn(&w, from) || (from->is_backward && w.opt->collapse_backward))
                continue;
            fputs("  ", out);
            write_id(&w, from);
            fputs(" -> ", out);
            write_id(&w, n);
            fprintf(out, "%s;\n", (def != NULL && dg__input_shape_only(def, k))
                                      ? " [style=dotted, arrowhead=odot]" : "");
        }
    }
    dg_status st = DG_OK;
    if (any_backward && w.opt->collapse_backward && write_collapsed_edges(&w) != DG_OK) {
        dg_graph_set_error(g, DG_ERR_NOMEM, "dump_dot: out of memory");
        st = DG_ERR_NOMEM;
    }
    dg__free(w.backward_count);
    fputs("}\n", out);
    if (st == DG_OK && ferror(out)) {
        dg_graph_set_error(g, DG_ERR_IO, "dump_dot: write failed");
        return DG_ERR_IO;
    }
    return st;
}

dg_status dg_graph_dump_dot(dg_graph *g, FILE *out)
{
    return dg_graph_dump_dot_ex(g, out, NULL);
}

dg_status dg_graph_dump_dot_file_ex(dg_graph *g, const char *path, const dg_dot_options *options)
{
    if (g == NULL)
        return DG_ERR_INVALID_ARG;
    if (path == NULL) {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "dump_dot: path is NULL");
        return DG_ERR_INVALID_ARG;
    }
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        dg_graph_set_error(g, DG_ERR_IO, "dump_dot: cannot open '%s': %s", path, strerror(errno));
        return DG_ERR_IO;
    }
    dg_status st = dg_graph_dump_dot_ex(g, f, options);
    if (fclose(f) != 0 && st == DG_OK) {
        dg_graph_set_error(g, DG_ERR_IO, "dump_dot: cannot write '%s': %s", path, strerror(errno));
        st = DG_ERR_IO;
    }
    return st;
}

dg_status dg_graph_dump_dot_file(dg_graph *g, const char *path)
{
    return dg_graph_dump_dot_file_ex(g, path, NULL);
}
