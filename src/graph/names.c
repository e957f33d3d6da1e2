/* Display names of nodes (dg_name) and name scopes (dg_scope_push / dg_scope_pop). */
#include "graph_internal.h"
#include "alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

dg_node *dg_name(dg_node *node, const char *name)
{
    if (node == NULL)
        return NULL; /* pass an earlier builder failure through */
    dg_graph *g = node->graph;
    if (name == NULL || *name == '\0')
        return dg__fail(g, DG_ERR_INVALID_ARG, "name: the name of node %d is NULL or empty",
                        node->index);
    if (node->kind == DG_NODE_INPUT || node->kind == DG_NODE_PARAM)
        return dg__fail(g, DG_ERR_INVALID_ARG, "name: node %d '%s' (%s) keeps the unique name "
                        "it was made with", node->index, node->name, dg_node_op_name(node));
    char *copy = dg__strdup(name);
    if (copy == NULL)
        return dg__fail(g, DG_ERR_NOMEM, "name: out of memory");
    dg__free(node->name);
    node->name = copy;
    return node;
}

void dg__scopes_free(dg_graph *g)
{
    for (int i = 0; i < g->n_scopes; i++)
        dg__free(g->scope_paths[i]);
    dg__free(g->scope_paths);
    dg__free(g->scope_parent);
}

/* Room for one more scope; entry 0 (the root, "") is made on first use. */
static bool reserve_scope(dg_graph *g)
{
    if (g->n_scopes + 1 < g->cap_scopes)
        return true;
    int cap = g->cap_scopes ? g->cap_scopes * 2 : 16;
    char **paths = dg__realloc(g->scope_paths, (size_t)cap * sizeof *paths);
    if (paths == NULL)
        return false;
    g->scope_paths = paths;
    int *parents = dg__realloc(g->scope_parent, (size_t)cap * sizeof *parents);
    if (parents == NULL)
        return false;
    g->scope_parent = parents;
    g->cap_scopes = cap;
    if (g->n_scopes == 0) {
        g->scope_paths[0] = dg__strdup("");
        if (g->scope_paths[0] == NULL)
            return false;
        g->scope_parent[0] = 0;
        g->n_scopes = 1;
    }
    return true;
}

dg_status dg_scope_push(dg_graph *g, const char *name)
{
    if (g == NULL)
        return DG_ERR_INVALID_ARG;
    if (name == NULL || *name == '\0') {
        dg_graph_set_error(g, DG_ERR_INVALID_ARG, "scope_push: name is NULL or empty");
        return DG_ERR_INVALID_ARG;
    }
    if (!reserve_scope(g)) {
        dg_graph_set_error(g, DG_ERR_NOMEM, "scope_push '%s': out of memory", name);
        return DG_ERR_NOMEM;
    }
    const char *outer = g->scope_paths[g->scope];
    size_t len = strlen(outer) + strlen(name) + 2;
    char *path = dg__malloc(len);
    if (path == NULL) {
        dg_graph_set_error(g, DG_ERR_NOMEM, "scope_push '%s': out of memory", name);
        return DG_ERR_NOMEM;
    }
    snprintf(path, len, "%s%s%s", outer, *outer ? "/" : "", name);
    g->scope_paths[g->n_scopes] = path;
    g->scope_parent[g->n_scopes] = g->scope;
    g->scope = g->n_scopes++;
    return DG_OK;
}

dg_status dg_scope_pop(dg_graph *g)
{
    if (g == NULL)
        return DG_ERR_INVALID_ARG;
    if (g->scope == 0) {
        dg_graph_set_error(g, DG_ERR_STATE, "scope_pop: no scope is open");
        return DG_ERR_STATE;
    }
    g->scope = g->scope_parent[g->scope];
    return DG_OK;
}

int dg__node_scope_id(const dg_node *node)
{
    if (node->is_backward && node->grad_of != NULL)
        return node->grad_of->scope;
    return node->scope;
}

const char *dg_node_scope(const dg_node *node)
{
    if (node == NULL)
        return "";
    int scope = dg__node_scope_id(node);
    return scope == 0 ? "" : node->graph->scope_paths[scope];
}
