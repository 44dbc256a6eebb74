/* onnx_fold.c — the import's constant folding of small int64 tensors: the arithmetic PyTorch
 * writes for F.pad's pads (ConstantOfShape, Concat, Reshape, Slice, Transpose, Cast of
 * constants) and for sizes read off a tensor (Shape of a layer's output, which the layers
 * before it give, then Gather, Unsqueeze, Add, Sub, Mul, Div: x.size(1) // 2, x.view(N, G, C //
 * G, H, W)) is computed, and its result is a constant the next node reads. A batch that the
 * graph leaves free is CN_ONNX_BATCH in it, which no arithmetic takes (the nodes that read a
 * shape know it). Only nodes whose inputs are all constants (a Shape's, a layer's output) and
 * whose values number at most CN_ONNX_FOLD_MAX are folded, so a file costs time and memory in
 * proportion to its size. Covered by tests/onnx_test.sh (PyTorch's exports with F.pad, and
 * ShuffleNetV2's) and tests/test_onnx.c. */
#include <string.h>

#include "../core/core_impl.h"
#include "onnx_impl.h"

#define FOLD_MAX 64 /* values of a folded tensor */
#define FOLD_RANK 4

typedef struct {
    int rank;
    int64_t dims[FOLD_RANK], n;
    int64_t v[FOLD_MAX];
} i64_tensor;

/* a constant int64 tensor (int64_data or raw little-endian bytes) of at most FOLD_MAX values */
static int read_i64(const Onnx__TensorProto *p, i64_tensor *t)
{
    if (!p || p->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || p->n_dims > FOLD_RANK) return 0;
    t->rank = (int)p->n_dims;
    t->n = 1;
    for (int d = 0; d < t->rank; d++) {
        if (p->dims[d] < 0 || p->dims[d] > FOLD_MAX) return 0;
        t->dims[d] = p->dims[d];
        t->n *= p->dims[d];
    }
    if (t->n > FOLD_MAX) return 0;
    if (p->n_int64_data) {
        if ((int64_t)p->n_int64_data != t->n) return 0;
        memcpy(t->v, p->int64_data, sizeof(int64_t) * (size_t)t->n);
        return 1;
    }
    if (!p->has_raw_data || p->raw_data.len != 8 * (size_t)t->n) return t->n == 0;
    for (int64_t j = 0; j < t->n; j++) {
        uint64_t u = 0;
        for (int b = 7; b >= 0; b--) u = u << 8 | p->raw_data.data[8 * j + b];
        t->v[j] = (int64_t)u;
    }
    return 1;
}

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *node, const char *name)
{
    for (size_t k = 0; k < node->n_attribute; k++)
        if (node->attribute[k]->name && !strcmp(node->attribute[k]->name, name)) return node->attribute[k];
    return NULL;
}

/* row-major strides */
static void strides_of(const i64_tensor *t, int64_t *s)
{
    int64_t m = 1;
    for (int d = t->rank - 1; d >= 0; d--) s[d] = m, m *= t->dims[d];
}

/* the result of node on constant inputs x[0..n); 0: not foldable */
static int fold(const Onnx__NodeProto *node, const i64_tensor *x, int n, i64_tensor *y)
{
    const char *op = node->op_type;
    const Onnx__AttributeProto *a;
    memset(y, 0, sizeof *y);
    if (!strcmp(op, "Cast")) { /* int64 to int64 */
        a = attr(node, "to");
        if (n != 1 || !a || a->i != ONNX__TENSOR_PROTO__DATA_TYPE__INT64) return 0;
        *y = x[0];
        return 1;
    }
    if (!strcmp(op, "ConstantOfShape")) { /* value: one int64 (0 when absent is a float: refused) */
        a = attr(node, "value");
        i64_tensor val;
        if (n != 1 || x[0].rank != 1 || x[0].n > FOLD_RANK || !a || !read_i64(a->t, &val) || val.n != 1) return 0;
        y->rank = (int)x[0].n, y->n = 1;
        for (int d = 0; d < y->rank; d++) {
            if (x[0].v[d] < 0 || x[0].v[d] > FOLD_MAX) return 0;
            y->dims[d] = x[0].v[d], y->n *= x[0].v[d];
        }
        if (y->n > FOLD_MAX) return 0;
        for (int64_t j = 0; j < y->n; j++) y->v[j] = val.v[0];
        return 1;
    }
    if (!strcmp(op, "Gather")) { /* of a vector, by a constant index or vector of them */
        a = attr(node, "axis");
        if (n != 2 || (a && a->i != 0) || x[0].rank != 1 || x[1].rank > 1) return 0;
        y->rank = x[1].rank, y->n = x[1].n, y->dims[0] = x[1].n;
        for (int64_t j = 0; j < y->n; j++) {
            int64_t k = x[1].v[j] < 0 ? x[1].v[j] + x[0].n : x[1].v[j];
            if (k < 0 || k >= x[0].n) return 0;
            y->v[j] = x[0].v[k];
        }
        return 1;
    }
    if (!strcmp(op, "Unsqueeze")) { /* axes: an input from opset 13, an attribute before */
        int64_t axes[FOLD_RANK];
        int m = 0;
        a = attr(node, "axes");
        if (n == 2 && x[1].rank <= 1 && x[1].n <= FOLD_RANK) {
            m = (int)x[1].n;
            for (int k = 0; k < m; k++) axes[k] = x[1].v[k];
        } else if (n == 1 && a && a->n_ints <= FOLD_RANK) {
            m = (int)a->n_ints;
            for (int k = 0; k < m; k++) axes[k] = a->ints[k];
        } else {
            return 0;
        }
        int rank = x[0].rank + m, d = 0, ones = 0;
        if (rank > FOLD_RANK) return 0;
        *y = x[0];
        y->rank = rank;
        for (int k = 0; k < rank; k++) { /* a 1 where an axis names k, else the next dim of x */
            int one = 0;
            for (int j = 0; j < m; j++) one |= axes[j] == k || axes[j] + rank == k;
            ones += one;
            y->dims[k] = one ? 1 : x[0].dims[d++];
        }
        return ones == m;
    }
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div")) {
        /* of equal shapes, or one of a single value; not of a free batch, nor dividing by 0 or
         * negative numbers (ONNX's integer division truncates, Python's floors) */
        if (n != 2) return 0;
        int big = x[1].n > x[0].n;
        if (x[!big].n != 1 && (x[0].rank != x[1].rank || x[0].n != x[1].n)) return 0;
        *y = x[big];
        for (int64_t j = 0; j < y->n; j++) {
            int64_t p = x[0].v[x[0].n == 1 ? 0 : j], q = x[1].v[x[1].n == 1 ? 0 : j], r;
            if (p == CN_ONNX_BATCH || q == CN_ONNX_BATCH) return 0;
            switch (op[0]) {
            case 'A': if (!cn_add_ok(p, q, &r)) return 0; break;
            case 'S': if (q == INT64_MIN || !cn_add_ok(p, -q, &r)) return 0; break;
            case 'M': if (!cn_mul_ok(p, q, &r)) return 0; break;
            default: if (q <= 0 || p < 0) return 0; r = p / q; break;
            }
            y->v[j] = r;
        }
        return 1;
    }
    if (!strcmp(op, "Concat")) { /* of vectors */
        a = attr(node, "axis");
        if (!a || (a->i != 0 && a->i != -1)) return 0;
        y->rank = 1;
        for (int k = 0; k < n; k++) {
            if (x[k].rank != 1 || y->n + x[k].n > FOLD_MAX) return 0;
            memcpy(y->v + y->n, x[k].v, sizeof(int64_t) * (size_t)x[k].n);
            y->n += x[k].n;
        }
        y->dims[0] = y->n;
        return 1;
    }
    if (!strcmp(op, "Reshape")) { /* 0 keeps a dim, -1 takes the rest */
        if (n != 2 || x[1].rank != 1 || x[1].n > FOLD_RANK) return 0;
        int64_t known = 1, free_at = -1;
        *y = x[0];
        y->rank = (int)x[1].n;
        for (int d = 0; d < y->rank; d++) {
            int64_t s = x[1].v[d];
            if (s == 0 && d < x[0].rank) s = x[0].dims[d];
            if (s == -1 && free_at < 0) free_at = d, s = 1;
            else if (s < 0 || s > FOLD_MAX) return 0;
            y->dims[d] = s, known *= s;
        }
        if (free_at >= 0 && known && x[0].n % known == 0) y->dims[free_at] = x[0].n / known, known = x[0].n;
        return known == x[0].n;
    }
    if (!strcmp(op, "Transpose")) {
        a = attr(node, "perm");
        if (n != 1) return 0;
        int64_t perm[FOLD_RANK], s[FOLD_RANK], idx[FOLD_RANK] = { 0 };
        for (int d = 0; d < x[0].rank; d++) perm[d] = x[0].rank - 1 - d;
        if (a && (int)a->n_ints != x[0].rank) return 0;
        for (int d = 0; a && d < x[0].rank; d++) perm[d] = a->ints[d];
        for (int d = 0; d < x[0].rank; d++) {
            if (perm[d] < 0 || perm[d] >= x[0].rank) return 0;
            for (int e = 0; e < d; e++)
                if (perm[e] == perm[d]) return 0;
        }
        strides_of(&x[0], s);
        y->rank = x[0].rank, y->n = x[0].n;
        for (int d = 0; d < y->rank; d++) y->dims[d] = x[0].dims[perm[d]];
        for (int64_t j = 0; j < y->n; j++) { /* idx: y's index of value j */
            int64_t off = 0;
            for (int d = 0; d < y->rank; d++) off += idx[d] * s[perm[d]];
            y->v[j] = x[0].v[off];
            for (int d = y->rank - 1; d >= 0 && ++idx[d] == y->dims[d]; d--) idx[d] = 0;
        }
        return 1;
    }
    if (!strcmp(op, "Slice")) { /* data, starts, ends[, axes[, steps]] */
        if (n < 3 || n > 5) return 0;
        int64_t b[FOLD_RANK], step[FOLD_RANK], s[FOLD_RANK], idx[FOLD_RANK] = { 0 };
        const i64_tensor *t = &x[0];
        for (int d = 0; d < t->rank; d++) b[d] = 0, step[d] = 1, y->dims[d] = t->dims[d];
        int64_t m = x[1].n;
        if (x[2].n != m || (n > 3 && x[3].n != m) || (n > 4 && x[4].n != m) || m > t->rank) return 0;
        for (int k = 0; k < m; k++) {
            int64_t ax = n > 3 ? x[3].v[k] : k, st = n > 4 ? x[4].v[k] : 1;
            if (ax < 0) ax += t->rank;
            if (ax < 0 || ax >= t->rank || st == 0) return 0;
            int64_t len = t->dims[ax], lo = x[1].v[k], hi = x[2].v[k];
            /* ONNX's clamping: [0, len] going forward, [-1, len - 1] going back */
            if (lo < 0) lo = lo < -len ? 0 : lo + len;
            if (hi < 0) hi = hi < -len ? -1 : hi + len;
            if (st > 0) {
                lo = lo > len ? len : lo, hi = hi > len ? len : hi;
                y->dims[ax] = hi > lo ? (hi - lo + st - 1) / st : 0;
            } else {
                lo = lo > len - 1 ? len - 1 : lo, hi = hi > len - 1 ? len - 1 : hi;
                y->dims[ax] = lo > hi ? (lo - hi - st - 1) / -st : 0;
            }
            b[ax] = lo, step[ax] = st;
        }
        strides_of(t, s);
        y->rank = t->rank, y->n = 1;
        for (int d = 0; d < y->rank; d++) y->n *= y->dims[d];
        for (int64_t j = 0; j < y->n; j++) {
            int64_t off = 0;
            for (int d = 0; d < y->rank; d++) off += (b[d] + idx[d] * step[d]) * s[d];
            y->v[j] = t->v[off];
            for (int d = y->rank - 1; d >= 0 && ++idx[d] == y->dims[d]; d--) idx[d] = 0;
        }
        return 1;
    }
    return 0;
}

/* Shape of a layer's output: (N, C, H, W), or (N, F) of a vector (whose layer is a 1x1 map of
 * F channels), N the graph's batch or CN_ONNX_BATCH; from opset 15 its dims start to end */
static cn_status shape_of(cn_onnx_in *in, const Onnx__NodeProto *node, i64_tensor *y)
{
    int64_t dims[3], full[4], start = 0, end = 4;
    cn_status st = cn_onnx_input_dims(in, node, dims);
    if (st) return st;
    int rank = cn_onnx_input_rank(in, node, 0);
    full[0] = cn_onnx_batch(in), full[1] = dims[0], full[2] = dims[1], full[3] = dims[2];
    if ((st = cn_onnx_get_int(in, node, "start", &start)) || (st = cn_onnx_get_int(in, node, "end", &end))) return st;
    start = start < 0 ? start + rank : start, end = end < 0 ? end + rank : end;
    start = start < 0 ? 0 : start > rank ? rank : start, end = end < start ? start : end > rank ? rank : end;
    memset(y, 0, sizeof *y);
    y->rank = 1, y->n = y->dims[0] = end - start;
    memcpy(y->v, full + start, sizeof(int64_t) * (size_t)y->n);
    return CN_OK;
}

cn_status cn_onnx_fold_node(cn_onnx_in *in, const Onnx__NodeProto *node, int *folded)
{
    i64_tensor x[5], y = { 0 };
    int n = (int)node->n_input;
    *folded = 0;
    if (n > 5 || node->n_output != 1 || !node->output[0][0]) return CN_OK;
    if (!strcmp(node->op_type, "Shape") && n == 1 && !cn_onnx_const_at(in, node->input[0])) {
        cn_status st = shape_of(in, node, &y);
        if (st) return st;
    } else {
        for (int k = 0; k < n; k++)
            if (!read_i64(cn_onnx_const_at(in, node->input[k]), &x[k])) return CN_OK;
        if (!fold(node, x, n, &y)) return CN_OK;
    }
    /* the result, as a tensor the context owns until the import ends */
    Onnx__TensorProto *t = cn_onnx_new_const(in, node, sizeof(int64_t) * (size_t)(y.n + y.rank));
    if (!t) return cn_onnx_in_status(in);
    int64_t *mem = (int64_t *)(t + 1);
    memcpy(mem, y.dims, sizeof(int64_t) * (size_t)y.rank);
    memcpy(mem + y.rank, y.v, sizeof(int64_t) * (size_t)y.n);
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    t->n_dims = (size_t)y.rank;
    t->dims = mem;
    t->n_int64_data = (size_t)y.n;
    t->int64_data = mem + y.rank;
    *folded = 1;
    return CN_OK;
}
