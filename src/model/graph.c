/* graph.c — from parsed statements to a DAG: layer names (given with 'as' or made from the
 * type and a counter), inputs ('from', names, else the previous line), a topological order
 * (cycles rejected), every layer feeding the output (the last line), then shape inference
 * in that order. Each step is linear in the layers and inputs (names through a hash table, the
 * order through a heap, a log factor): 10,000 layers take milliseconds. Covered by
 * tests/test_spec_errors.c and tests/test_shapes.c. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "model_impl.h"

/* ---- names -------------------------------------------------------------------------------------
 * An open-addressing hash table from layer names to node indices: checking the names for
 * duplicates, making the automatic ones and resolving 'from NAME' cost O(1) a name, not a scan
 * of every layer (a 10,000-layer spec would take 50 million comparisons). Names made to collide
 * on purpose can only bring that back, as 64-bit compares, and CN_MAX_LAYERS bounds it. */

typedef struct {
    int *node;      /* per slot: the node whose name it holds, -1 when empty */
    uint64_t *hash; /* per slot: that name's hash, compared before the bytes */
    size_t mask;    /* slots - 1; slots is a power of two, at least twice the layers */
} name_index;

/* FNV-1a, 64 bits */
static uint64_t name_hash(const char *s)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (; *s; s++) h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    return h;
}

static cn_status name_index_init(cn_ctx *ctx, name_index *ix, int count)
{
    size_t slots = 16;
    while (slots < 2 * (size_t)count) slots *= 2;
    ix->mask = slots - 1;
    ix->node = cn_malloc(ctx, slots * sizeof *ix->node);
    ix->hash = cn_malloc(ctx, slots * sizeof *ix->hash);
    if (!ix->node || !ix->hash) return CN_E_NOMEM;
    memset(ix->node, 0xff, slots * sizeof *ix->node); /* every slot -1 */
    return CN_OK;
}

static void name_index_free(cn_ctx *ctx, name_index *ix)
{
    cn_free(ctx, ix->node);
    cn_free(ctx, ix->hash);
}

/* The slot holding `name` (hash h), else the empty slot where it would go. */
static size_t name_slot(const name_index *ix, const cn_node *nodes, const char *name, uint64_t h)
{
    size_t s = (size_t)(h ^ (h >> 32)) & ix->mask;
    while (ix->node[s] >= 0 && !(ix->hash[s] == h && strcmp(nodes[ix->node[s]].name, name) == 0))
        s = (s + 1) & ix->mask;
    return s;
}

static int name_find(const name_index *ix, const cn_node *nodes, const char *name)
{
    return ix->node[name_slot(ix, nodes, name, name_hash(name))];
}

/* Enters node i under its name; returns the node that already has that name, else -1. */
static int name_add(name_index *ix, const cn_node *nodes, int i)
{
    uint64_t h = name_hash(nodes[i].name);
    size_t s = name_slot(ix, nodes, nodes[i].name, h);
    if (ix->node[s] >= 0) return ix->node[s];
    ix->node[s] = i;
    ix->hash[s] = h;
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

/* Names given with 'as' first (the first repeat is an error naming both lines), then the
 * automatic ones: "input", else the type and a counter that skips every name already taken; a
 * type ending in a digit takes a '_' before its counter ("relu6_1", not "relu61"). */
static cn_status name_layers(cn_ctx *ctx, const char *file, cn_node *nodes, int count, name_index *ix)
{
    for (int i = 0; i < count; i++) {
        if (!nodes[i].name) continue;
        int j = name_add(ix, nodes, i);
        if (j >= 0)
            return cn_fail_at(ctx, CN_E_PARSE, file, nodes[i].line, nodes[i].name_col,
                              "name '%s' already used at line %d", nodes[i].name, nodes[j].line);
    }
    int counter[CN_OP_COUNT] = { 0 };
    for (int i = 0; i < count; i++) {
        cn_node *n = &nodes[i];
        if (n->name) continue;
        int id = n->id;
        char buf[48];
        if (id == CN_OP_INPUT && name_find(ix, nodes, "input") < 0) {
            snprintf(buf, sizeof buf, "input");
        } else {
            const char *type = n->op->name;
            const char *sep = isdigit((unsigned char)type[strlen(type) - 1]) ? "_" : "";
            do snprintf(buf, sizeof buf, "%s%s%d", type, sep, ++counter[id]);
            while (name_find(ix, nodes, buf) >= 0);
        }
        if (!(n->name = cn_strdup(ctx, buf))) return CN_E_NOMEM;
        name_add(ix, nodes, i);
    }
    return CN_OK;
}

/* The automatic name of an older convnet, "relu61" for what is now "relu6_1" (a type ending in a
 * digit, then the counter): the new spelling into buf; 0 when name is no such one. Specs that
 * read 'from relu61' keep working. */
static int old_automatic_name(const char *name, char *buf, size_t cap)
{
    for (int id = 0; id < CN_OP_COUNT; id++) {
        const char *type = cn_ops[id]->name;
        size_t len = strlen(type);
        if (!isdigit((unsigned char)type[len - 1]) || strncmp(name, type, len) || !name[len]) continue;
        if (strspn(name + len, "0123456789") != strlen(name + len) || name[len] == '0') continue;
        return snprintf(buf, cap, "%s_%s", type, name + len) < (int)cap;
    }
    return 0;
}

static cn_status resolve_inputs(cn_ctx *ctx, const char *file, cn_node *nodes, int count, const name_index *ix)
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
            int k = name_find(ix, nodes, n->in_names[j]);
            char old[64];
            if (k < 0 && old_automatic_name(n->in_names[j], old, sizeof old)) k = name_find(ix, nodes, old);
            if (k < 0) return undefined_name(ctx, file, nodes, count, n, j);
            n->in[j] = k;
        }
    }
    return CN_OK;
}

/* ---- order ------------------------------------------------------------------------------------- */

/* Every unplaced layer reads an unplaced one (else it would be ready), so walking back from the
 * first unplaced layer along unplaced inputs repeats a layer within `count` steps: that closes
 * the cycle reported. */
static cn_status report_cycle(cn_ctx *ctx, const char *file, const cn_node *nodes, int count, const char *placed)
{
    int *path = cn_malloc(ctx, sizeof(int) * (size_t)count); /* the walk, from the first unplaced layer */
    int *step = cn_malloc(ctx, sizeof(int) * (size_t)count); /* per layer: its place in path, -1 if not on it */
    if (!path || !step) {
        cn_free(ctx, path);
        cn_free(ctx, step);
        return CN_E_NOMEM;
    }
    memset(step, 0xff, sizeof(int) * (size_t)count);
    int len = 0, u = 0;
    while (placed[u]) u++;
    while (step[u] < 0) {
        step[u] = len;
        path[len++] = u;
        int next = -1;
        for (int j = 0; j < nodes[u].n_in && next < 0; j++)
            if (!placed[nodes[u].in[j]]) next = nodes[u].in[j];
        u = next; /* never -1: see above */
    }
    /* path[first] = u reads path[first+1] ... reads path[len-1], which reads u: data flows the other way */
    enum { CYCLE_SHOWN = 8 }; /* layers of a cycle named in the message */
    int first = step[u], shown = 0;
    char msg[512];
    cn_strbuf sb;
    cn_sb_init(&sb, msg, sizeof msg);
    cn_sb_printf(&sb, "%s -> ", nodes[u].name);
    for (int k = len - 1; k > first; k--, shown++) {
        if (shown == CYCLE_SHOWN && k > first + 1) { /* a long cycle: its first layers, then how many more */
            cn_sb_printf(&sb, "... (%d more) -> ", k - first);
            break;
        }
        cn_sb_printf(&sb, "%s -> ", nodes[path[k]].name);
    }
    cn_sb_printf(&sb, "%s", nodes[u].name);
    cn_free(ctx, path);
    cn_free(ctx, step);
    return cn_fail_at(ctx, CN_E_PARSE, file, nodes[u].line, nodes[u].col,
                      "cycle: %s (a layer cannot read its own output)", msg);
}

/* min-heap of node indices: the ready layers, the earliest line on top */
static void heap_push(int *heap, int *size, int v)
{
    int i = (*size)++;
    while (i > 0 && heap[(i - 1) / 2] > v) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = v;
}

static int heap_pop(int *heap, int *size)
{
    int top = heap[0], v = heap[--*size], i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *size) break;
        if (c + 1 < *size && heap[c + 1] < heap[c]) c++;
        if (heap[c] >= v) break;
        heap[i] = heap[c];
        i = c;
    }
    if (*size > 0) heap[i] = v;
    return top;
}

/* Kahn's algorithm, always taking the earliest line that is ready (a chain keeps its order):
 * O((layers + inputs) log layers). Then every layer must lead to the output, the last line. */
static cn_status order_layers(cn_ctx *ctx, const char *file, cn_node *nodes, int count, int *order)
{
    cn_status st = CN_OK;
    int edges = 0;
    for (int i = 0; i < count; i++) edges += nodes[i].n_in;
    char *placed = cn_calloc(ctx, (size_t)count, 1);
    int *waiting = cn_calloc(ctx, (size_t)count, sizeof(int));         /* inputs not yet placed */
    int *first = cn_calloc(ctx, (size_t)count + 1, sizeof(int));       /* readers of i: reader[first[i]..first[i+1]) */
    int *reader = cn_malloc(ctx, sizeof(int) * (size_t)(edges ? edges : 1));
    int *heap = cn_malloc(ctx, sizeof(int) * (size_t)count);
    if (!placed || !waiting || !first || !reader || !heap) {
        st = CN_E_NOMEM;
        goto done;
    }
    for (int i = 0; i < count; i++)
        for (int j = 0; j < nodes[i].n_in; j++) first[nodes[i].in[j] + 1]++;
    for (int i = 0; i < count; i++) first[i + 1] += first[i];
    for (int i = 0; i < count; i++) /* waiting[] counts the readers placed so far while filling */
        for (int j = 0; j < nodes[i].n_in; j++) {
            int v = nodes[i].in[j];
            reader[first[v] + waiting[v]++] = i;
        }
    int size = 0;
    for (int i = 0; i < count; i++) {
        waiting[i] = nodes[i].n_in; /* an input read twice ('add a a') counts twice, and is released twice */
        if (!waiting[i]) heap_push(heap, &size, i);
    }
    int k = 0;
    while (size > 0) {
        int pick = heap_pop(heap, &size);
        placed[pick] = 1;
        order[k++] = pick;
        for (int e = first[pick]; e < first[pick + 1]; e++)
            if (--waiting[reader[e]] == 0) heap_push(heap, &size, reader[e]);
    }
    if (k < count) {
        st = report_cycle(ctx, file, nodes, count, placed);
        goto done;
    }
    /* the output is the last line; every other layer must feed it */
    memset(placed, 0, (size_t)count);
    placed[count - 1] = 1;
    for (k = count - 1; k >= 0; k--) {
        int i = order[k];
        if (!placed[i]) continue;
        for (int j = 0; j < nodes[i].n_in; j++) placed[nodes[i].in[j]] = 1;
    }
    for (int i = 0; i < count; i++)
        if (!placed[i]) {
            st = cn_fail_at(ctx, CN_E_PARSE, file, nodes[i].line, nodes[i].col,
                            "'%s' is never used: the output is the last line ('%s') and nothing leading to it "
                            "reads '%s'",
                            nodes[i].name, nodes[count - 1].name, nodes[i].name);
            break;
        }
done:
    cn_free(ctx, placed);
    cn_free(ctx, waiting);
    cn_free(ctx, first);
    cn_free(ctx, reader);
    cn_free(ctx, heap);
    return st;
}

cn_status cn_graph_build(cn_ctx *ctx, const char *file, cn_node *nodes, int count)
{
    if (count < 1) return cn_fail(ctx, CN_E_ARG, "no layers");
    name_index ix = { 0 };
    int *order = NULL, *where = NULL;
    cn_node *sorted = NULL;
    cn_status st = name_index_init(ctx, &ix, count);
    if (!st) st = name_layers(ctx, file, nodes, count, &ix);
    if (!st) st = resolve_inputs(ctx, file, nodes, count, &ix);
    if (st) goto done;
    order = cn_malloc(ctx, sizeof(int) * (size_t)count);
    where = cn_malloc(ctx, sizeof(int) * (size_t)count);
    sorted = cn_calloc(ctx, (size_t)count, sizeof *sorted);
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
        const cn_node *in[CN_MAX_INPUTS];
        if (n->n_in > CN_MAX_INPUTS) { /* the parser refuses more */
            st = cn_fail_at(ctx, CN_E_PARSE, file, n->line, n->col, "%s: reads more than %d layers (the limit)",
                            n->op->name, CN_MAX_INPUTS);
            goto done;
        }
        for (int j = 0; j < n->n_in; j++) in[j] = &nodes[n->in[j]];
        if ((st = n->op->infer(ctx, file, n, in))) goto done;
        if (!n->span_h) n->span_h = n->out.h, n->span_w = n->out.w;
        if (!n->den_h) n->den_h = n->n_in ? in[0]->den_h : 1;
        if (!n->den_w) n->den_w = n->n_in ? in[0]->den_w : 1;
    }
done:
    name_index_free(ctx, &ix);
    cn_free(ctx, order);
    cn_free(ctx, where);
    cn_free(ctx, sorted);
    return st;
}
