/*
 * Graphviz DOT writer. Ids are node indices, so two dumps of the same graph are identical.
 * Inputs are green ellipses, parameters orange boxes, constants grey plaintext; op nodes are
 * rounded boxes; backward nodes are drawn blue inside a "backward" cluster and labelled with
 * the forward node whose gradient they help compute.
 */
#include "graph_internal.h"

#include <errno.h>
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

static void write_node(FILE *out, const dg_node *n, const char *indent)
{
    char shape[128], extra[128] = "";
    dg__shape_str(&n->shape, shape, sizeof shape);
    const char *dtype = n->shape.dtype == DG_I32 ? " i32" : "";
    fprintf(out, "%sn%d [label=\"", indent, n->index);
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

dg_status dg_graph_dump_dot(dg_graph *g, FILE *out)
{
    if (g == NULL)
        return DG_ERR_INVALID_ARG;
    if (out == NULL) {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "dump_dot: output stream is NULL");
        return DG_ERR_INVALID_ARG;
    }
    fputs("digraph dagrad {\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=10];\n", out);
    bool any_backward = false;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i]->is_backward)
            any_backward = true;
        else
            write_node(out, g->nodes[i], "  ");
    }
    if (any_backward) {
        fputs("  subgraph cluster_backward {\n    label=\"backward\";\n    style=dashed;\n"
              "    color=\"#3182bd\";\n", out);
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i]->is_backward)
                write_node(out, g->nodes[i], "    ");
        fputs("  }\n", out);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const dg_node *n = g->nodes[i];
        const struct dg_op_def *def = n->kind == DG_NODE_OP ? n->def : NULL;
        for (int k = 0; k < n->n_inputs; k++)
            fprintf(out, "  n%d -> n%d%s;\n", n->inputs[k]->index, n->index,
                    (def != NULL && dg__input_shape_only(def, k))
                        ? " [style=dotted, arrowhead=odot]" : "");
    }
    fputs("}\n", out);
    if (ferror(out)) {
        dg_graph_set_error(g, DG_ERR_IO, "dump_dot: write failed");
        return DG_ERR_IO;
    }
    return DG_OK;
}

dg_status dg_graph_dump_dot_file(dg_graph *g, const char *path)
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
    dg_status st = dg_graph_dump_dot(g, f);
    if (fclose(f) != 0 && st == DG_OK) {
        dg_graph_set_error(g, DG_ERR_IO, "dump_dot: cannot write '%s': %s", path, strerror(errno));
        st = DG_ERR_IO;
    }
    return st;
}
