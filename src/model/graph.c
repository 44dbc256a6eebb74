/* graph.c — from parsed statements to a DAG: layer names (given with 'as' or made from the
 * type and a counter), inputs ('from', names, else the previous line), a topological order
 * (cycles rejected), every layer feeding the output (the last line), then shape inference
 * in that order. Covered by tests/test_spec_errors.c and tests/test_shapes.c. */
#include <stdio.h>
#include <string.h>

#include "model_impl.h"

static int find_name(const cn_node *nodes, int count, const char *name)
{
    for (int i = 0; i < count; i++)
        if (nodes[i].name && strcmp(nodes[i].name, name) == 0) return i;
    return -1;
}

static cn_status undefined_name(cn_ctx *ctx, const char *file, const cn_node *nodes, int count, const cn_node *n,
                                int j)
{
    const char **names = cn_malloc(ctx, sizeof(char *) * (size_t)count);
    if (!names) return CN_E_NOMEM;
    for (int i = 0; i < count; i++) names[i] = nodes[i].name;
    const char *s = cn_suggest(n->in_names[j], names, count);
    cn_free(ctx, names);
    if (s)
        return cn_fail_at(ctx, CN_E_PARSE, file, n->line, n->in_cols[j], "%s: undefined name '%s' (did you mean '%s'?)",
                          n->op->name, n->in_names[j], s);
    return cn_fail_at(ctx, CN_E_PARSE, file, n->line, n->in_cols[j],
                      "%s: undefined name '%s' (name a layer with 'as %s' first)", n->op->name, n->in_names[j],
                      n->in_names[j]);
}

static cn_status name_layers(cn_ctx *ctx, const char *file, cn_node *nodes, int count)
{
    for (int i = 0; i < count; i++) {
        if (!nodes[i].name) continue;
        for (int j = 0; j < i; j++)
            if (nodes[j].name && strcmp(nodes[j].name, nodes[i].name) == 0)
                return cn_fail_at(ctx, CN_E_PARSE, file, nodes[i].line, nodes[i].name_col,
                                  "name '%s' already used at line %d", nodes[i].name, nodes[j].line);
    }
    int counter[CN_OP_COUNT] = { 0 };
    for (int i = 0; i < count; i++) {
        cn_node *n = &nodes[i];
        if (n->name) continue;
        int id = 0;
        while (cn_ops[id] != n->op) id++;
        char buf[48];
        if (n->op == cn_ops[CN_OP_INPUT] && find_name(nodes, count, "input") < 0) {
            snprintf(buf, sizeof buf, "input");
        } else {
            do snprintf(buf, sizeof buf, "%s%d", n->op->name, ++counter[id]);
            while (find_name(nodes, count, buf) >= 0);
        }
        if (!(n->name = cn_strdup(ctx, buf))) return CN_E_NOMEM;
    }
    return CN_OK;
}

static cn_status resolve_inputs(cn_ctx *ctx, const char *file, cn_node *nodes, int count)
{
    for (int i = 0; i < count; i++) {
        cn_node *n = &nodes[i];
        if (n->op->inputs == 0) {
            if (i > 0)
                return cn_fail_at(ctx, CN_E_PARSE, file, n->line, n->col,
                                  "only one input layer is supported (the first is at line %d)", nodes[0].line);
            continue;
        }
        if (i == 0)
            return cn_fail_at(ctx, CN_E_PARSE, file, n->line, n->col,
                              "the first layer must be 'input HxWxC' (e.g. input 28x28x1), not '%s'", n->op->name);
        int nin = n->n_in ? n->n_in : 1;
        if (!(n->in = cn_calloc(ctx, (size_t)nin, sizeof(int)))) return CN_E_NOMEM;
        if (!n->n_in) {
            n->in[0] = i - 1;
            n->n_in = 1;
            continue;
        }
        for (int j = 0; j < n->n_in; j++) {
            int k = find_name(nodes, count, n->in_names[j]);
            if (k < 0) return undefined_name(ctx, file, nodes, count, n, j);
            n->in[j] = k;
        }
    }
    return CN_OK;
}

static cn_status report_cycle(cn_ctx *ctx, const char *file, cn_node *nodes, int count, const char *placed)
{
    int start = 0;
    while (placed[start]) start++;
    /* walk backwards along unplaced inputs until a layer repeats */
    int path[64], len = 0, u = start;
    char seen_at[4096];
    int track = count <= (int)sizeof seen_at;
    if (track) memset(seen_at, 0, (size_t)count);
    for (int steps = 0; steps <= count; steps++) {
        if (track && seen_at[u]) break;
        if (track) seen_at[u] = 1;
        if (len < 64) path[len++] = u;
        int next = -1;
        for (int j = 0; j < nodes[u].n_in; j++)
            if (!placed[nodes[u].in[j]]) { next = nodes[u].in[j]; break; }
        if (next < 0) break;
        u = next;
    }
    int first = 0;
    while (first < len && path[first] != u) first++;
    char msg[512];
    cn_strbuf sb;
    cn_sb_init(&sb, msg, sizeof msg);
    /* path[first] = u reads path[first+1] ... reads path[len-1], which reads u: data flows the other way */
    cn_sb_printf(&sb, "%s -> ", nodes[u].name);
    for (int k = len - 1; k > first; k--) cn_sb_printf(&sb, "%s -> ", nodes[path[k]].name);
    cn_sb_printf(&sb, "%s", nodes[u].name);
    return cn_fail_at(ctx, CN_E_PARSE, file, nodes[u].line, nodes[u].col,
                      "cycle: %s (a layer cannot read its own output)", msg);
}

/* Kahn's algorithm, always taking the earliest line that is ready: a chain keeps its order. */
static cn_status order_layers(cn_ctx *ctx, const char *file, cn_node *nodes, int count, int *order)
{
    char *placed = cn_calloc(ctx, (size_t)count, 1);
    if (!placed) return CN_E_NOMEM;
    for (int k = 0; k < count; k++) {
        int pick = -1;
        for (int i = 0; i < count && pick < 0; i++) {
            if (placed[i]) continue;
            int ready = 1;
            for (int j = 0; j < nodes[i].n_in; j++) ready &= placed[nodes[i].in[j]];
            if (ready) pick = i;
        }
        if (pick < 0) {
            cn_status st = report_cycle(ctx, file, nodes, count, placed);
            cn_free(ctx, placed);
            return st;
        }
        placed[pick] = 1;
        order[k] = pick;
    }
    /* the output is the last line; every other layer must feed it */
    memset(placed, 0, (size_t)count);
    placed[count - 1] = 1;
    for (int k = count - 1; k >= 0; k--) {
        int i = order[k];
        if (!placed[i]) continue;
        for (int j = 0; j < nodes[i].n_in; j++) placed[nodes[i].in[j]] = 1;
    }
    for (int i = 0; i < count; i++)
        if (!placed[i]) {
            cn_free(ctx, placed);
            return cn_fail_at(ctx, CN_E_PARSE, file, nodes[i].line, nodes[i].col,
                              "'%s' is never used: the output is the last line ('%s') and nothing leading to it "
                              "reads '%s'",
                              nodes[i].name, nodes[count - 1].name, nodes[i].name);
        }
    cn_free(ctx, placed);
    return CN_OK;
}

cn_status cn_graph_build(cn_ctx *ctx, const char *file, cn_node *nodes, int count)
{
    cn_status st;
    if (count < 1) return cn_fail(ctx, CN_E_ARG, "no layers");
    if ((st = name_layers(ctx, file, nodes, count))) return st;
    if ((st = resolve_inputs(ctx, file, nodes, count))) return st;
    int *order = cn_malloc(ctx, sizeof(int) * (size_t)count);
    int *where = cn_malloc(ctx, sizeof(int) * (size_t)count);
    cn_node *sorted = cn_calloc(ctx, (size_t)count, sizeof *sorted);
    if (!order || !where || !sorted) {
        st = CN_E_NOMEM;
        goto done;
    }
    if ((st = order_layers(ctx, file, nodes, count, order))) goto done;
    for (int k = 0; k < count; k++) where[order[k]] = k;
    for (int k = 0; k < count; k++) sorted[k] = nodes[order[k]];
    for (int k = 0; k < count; k++)
        for (int j = 0; j < sorted[k].n_in; j++) sorted[k].in[j] = where[sorted[k].in[j]];
    memcpy(nodes, sorted, sizeof *nodes * (size_t)count);
    for (int k = 0; k < count; k++) {
        cn_node *n = &nodes[k];
        const cn_node *in[CN_MAX_KEYS * 8];
        if (n->n_in > (int)(sizeof in / sizeof in[0])) {
            st = cn_fail_at(ctx, CN_E_PARSE, file, n->line, n->col, "%s: reads %d layers; at most %d are supported",
                            n->op->name, n->n_in, (int)(sizeof in / sizeof in[0]));
            goto done;
        }
        for (int j = 0; j < n->n_in; j++) in[j] = &nodes[n->in[j]];
        if ((st = n->op->infer(ctx, file, n, in))) goto done;
        if (!n->span_h) n->span_h = n->out.h, n->span_w = n->out.w;
    }
done:
    cn_free(ctx, order);
    cn_free(ctx, where);
    cn_free(ctx, sorted);
    return st;
}
