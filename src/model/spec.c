/* spec.c — the spec language: statements (one per line or separated by ';', '#' comments),
 * `TYPE positional... key=value... [from NAME] [as NAME]`, checked against each op's key
 * table. Every error names FILE:LINE:COL. The limits of model_impl.h (layers, words, bytes in
 * a word, inputs) are refused where the parser meets them, so parsing costs time in proportion
 * to the text. Covered by tests/test_spec_errors.c and fuzz/. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"

typedef struct {
    const char *s;
    int len, line, col;
} token;

typedef struct {
    cn_ctx *ctx;
    const char *file;
} parser;

static int tok_is(const token *t, const char *word) { return (size_t)t->len == strlen(word) && !memcmp(t->s, word, (size_t)t->len); }

static cn_status fail(parser *p, int line, int col, cn_status st, const char *fmt, ...) CN_PRINTF(5, 6);
static cn_status fail(parser *p, int line, int col, cn_status st, const char *fmt, ...)
{
    char msg[CN_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cn_fail_at(p->ctx, st, p->file, line, col, "%s", msg);
}

/* ---- values ---------------------------------------------------------------------------- */

/* Whole number of 1..18 digits; 0 on anything else. */
static int parse_whole(const char *s, int len, int64_t *v)
{
    if (len < 1 || len > 18) return 0;
    int64_t x = 0;
    for (int i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return 1;
}

/* "3" or "3x5" (also "3X5"); parts must lie in [lo, hi]. Returns the number of parts or 0. */
static int parse_dims(const char *s, int len, int64_t *v, int max_parts, double lo, double hi)
{
    int parts = 0, start = 0;
    for (int i = 0; i <= len; i++) {
        if (i == len || s[i] == 'x' || s[i] == 'X') {
            if (parts == max_parts) return 0;
            if (!parse_whole(s + start, i - start, &v[parts])) return 0;
            if ((double)v[parts] < lo || (double)v[parts] > hi) return 0;
            parts++;
            start = i + 1;
        }
    }
    return parts;
}

static cn_status parse_value(parser *p, const cn_op *op, const cn_key *k, const token *t, cn_attrs *a)
{
    char *field = (char *)a + k->offset;
    int64_t v[3];
    char buf[64];
    switch (k->type) {
    case CN_KT_INT:
        if (parse_dims(t->s, t->len, v, 1, k->lo, k->hi) == 1) {
            *(int64_t *)field = v[0];
            return CN_OK;
        }
        return fail(p, t->line, t->col, CN_E_PARSE, "%s: %s must be a whole number from %.0f to %.0f, got '%.*s'",
                    op->name, k->name, k->lo, k->hi, t->len, t->s);
    case CN_KT_PAIR: {
        int n = parse_dims(t->s, t->len, v, 2, k->lo, k->hi);
        if (n) {
            *(cn_pair *)field = (cn_pair){ v[0], n == 2 ? v[1] : v[0] };
            return CN_OK;
        }
        return fail(p, t->line, t->col, CN_E_PARSE, "%s: %s must be N or NxM with whole numbers from %.0f to %.0f, got '%.*s'",
                    op->name, k->name, k->lo, k->hi, t->len, t->s);
    }
    case CN_KT_PAD: {
        cn_pad *pad = (cn_pad *)field;
        if (tok_is(t, "same") || tok_is(t, "valid")) {
            *pad = (cn_pad){ tok_is(t, "same") ? CN_PAD_SAME : CN_PAD_VALID, 0, 0 };
            return CN_OK;
        }
        int n = parse_dims(t->s, t->len, v, 2, k->lo, k->hi);
        if (n) {
            *pad = (cn_pad){ CN_PAD_EXPLICIT, v[0], n == 2 ? v[1] : v[0] };
            return CN_OK;
        }
        return fail(p, t->line, t->col, CN_E_PARSE, "%s: %s must be same, valid, N or NxM (whole numbers from 0), got '%.*s'",
                    op->name, k->name, t->len, t->s);
    }
    case CN_KT_FLOAT: {
        double d = NAN;
        char *end = NULL;
        if (t->len < (int)sizeof buf) {
            memcpy(buf, t->s, (size_t)t->len);
            buf[t->len] = '\0';
            d = strtod(buf, &end);
        }
        int ok = end && end == buf + t->len && t->len > 0 && isfinite(d) && !isspace((unsigned char)buf[0]);
        int lo_ok = (k->flags & CN_KEY_LO_OPEN) ? d > k->lo : d >= k->lo;
        if (ok && lo_ok && d <= k->hi) {
            *(double *)field = d;
            return CN_OK;
        }
        if (!ok)
            return fail(p, t->line, t->col, CN_E_PARSE, "%s: %s must be a number, got '%.*s'", op->name, k->name,
                        t->len, t->s);
        return fail(p, t->line, t->col, CN_E_PARSE, "%s: %s must be %s %g and <= %g, got %.*s", op->name, k->name,
                    (k->flags & CN_KEY_LO_OPEN) ? ">" : ">=", k->lo, k->hi, t->len, t->s);
    }
    case CN_KT_BOOL:
        if (tok_is(t, "yes") || tok_is(t, "true") || tok_is(t, "on") || tok_is(t, "1")) {
            *(int *)field = 1;
            return CN_OK;
        }
        if (tok_is(t, "no") || tok_is(t, "false") || tok_is(t, "off") || tok_is(t, "0")) {
            *(int *)field = 0;
            return CN_OK;
        }
        return fail(p, t->line, t->col, CN_E_PARSE, "%s: %s must be yes or no, got '%.*s'", op->name, k->name,
                    t->len, t->s);
    case CN_KT_SHAPE: {
        int n = parse_dims(t->s, t->len, v, 3, k->lo, k->hi);
        if (n >= 2) {
            *(cn_dims *)field = (cn_dims){ n == 3 ? v[2] : 1, v[0], v[1] };
            return CN_OK;
        }
        return fail(p, t->line, t->col, CN_E_PARSE,
                    "%s: shape must be HxWxC (as 28x28x1) with whole numbers from 1 to %.0f, got '%.*s'", op->name,
                    k->hi, t->len, t->s);
    }
    case CN_KT_CHOICE: {
        char list[128];
        cn_strbuf sb;
        cn_sb_init(&sb, list, sizeof list);
        for (int i = 0; k->choices[i]; i++) {
            if (tok_is(t, k->choices[i])) {
                *(int *)field = i;
                return CN_OK;
            }
            cn_sb_printf(&sb, "%s%s", i ? ", " : "", k->choices[i]);
        }
        return fail(p, t->line, t->col, CN_E_PARSE, "%s: %s must be one of %s, got '%.*s'", op->name, k->name, list,
                    t->len, t->s);
    }
    case CN_KT_NAMES: break;
    }
    return fail(p, t->line, t->col, CN_E_PARSE, "%s: %s cannot be written as key=value", op->name, k->name);
}

/* ---- statements -------------------------------------------------------------------------- */

static int valid_name(const token *t)
{
    if (!(isalpha((unsigned char)t->s[0]) || t->s[0] == '_')) return 0;
    for (int i = 1; i < t->len; i++)
        if (!(isalnum((unsigned char)t->s[i]) || t->s[i] == '_' || t->s[i] == '.' || t->s[i] == '-')) return 0;
    return !tok_is(t, "from") && !tok_is(t, "as");
}

static cn_status check_name(parser *p, const token *t, const char *what)
{
    if (valid_name(t)) return CN_OK;
    return fail(p, t->line, t->col, CN_E_PARSE,
                "'%.*s' is not a valid %s (a letter or _, then letters, digits, _ . or -)", t->len, t->s, what);
}

static void key_list(char *buf, size_t cap, const cn_op *op)
{
    cn_strbuf sb;
    cn_sb_init(&sb, buf, cap);
    int n = 0;
    for (const cn_key *k = op->keys; k->name; k++)
        if (k->type != CN_KT_NAMES) cn_sb_printf(&sb, "%s%s", n++ ? ", " : "", k->name);
    if (!n) cn_sb_printf(&sb, "none");
}

static cn_status unknown_layer(parser *p, const token *t)
{
    const char *names[CN_OP_COUNT];
    char word[64];
    int len = t->len < 63 ? t->len : 63;
    memcpy(word, t->s, (size_t)len);
    word[len] = '\0';
    char list[512];
    cn_strbuf sb;
    cn_sb_init(&sb, list, sizeof list);
    for (int i = 0; i < CN_OP_COUNT; i++) {
        names[i] = cn_ops[i]->name;
        cn_sb_printf(&sb, "%s%s", i ? ", " : "", names[i]);
    }
    const char *s = cn_suggest(word, names, CN_OP_COUNT);
    if (s) return fail(p, t->line, t->col, CN_E_PARSE, "unknown layer '%.*s' (did you mean '%s'?)", t->len, t->s, s);
    return fail(p, t->line, t->col, CN_E_PARSE, "unknown layer '%.*s'; layers are %s", t->len, t->s, list);
}

static cn_status unknown_key(parser *p, const cn_op *op, const token *t, int klen)
{
    const char *names[CN_MAX_KEYS + 2];
    char word[64], keys[256];
    int n = 0, len = klen < 63 ? klen : 63;
    memcpy(word, t->s, (size_t)len);
    word[len] = '\0';
    for (const cn_key *k = op->keys; k->name && n < CN_MAX_KEYS; k++)
        if (k->type != CN_KT_NAMES) names[n++] = k->name;
    const char *s = cn_suggest(word, names, n);
    if (s) return fail(p, t->line, t->col, CN_E_PARSE, "%s: unknown key '%s' (did you mean '%s'?)", op->name, word, s);
    key_list(keys, sizeof keys, op);
    return fail(p, t->line, t->col, CN_E_PARSE, "%s: unknown key '%s'; its keys are: %s", op->name, word, keys);
}

static cn_status add_input_name(parser *p, cn_node *n, const token *t)
{
    cn_status st = check_name(p, t, "layer name");
    if (st) return st;
    if (n->n_in == CN_MAX_INPUTS)
        return fail(p, t->line, t->col, CN_E_PARSE, "%s: reads more than %d layers (the limit)", n->op->name,
                    CN_MAX_INPUTS);
    int *cols = cn_realloc(p->ctx, n->in_cols, sizeof(int) * (size_t)(n->n_in + 1));
    if (!cols) return CN_E_NOMEM;
    n->in_cols = cols;
    char **names = cn_realloc(p->ctx, n->in_names, sizeof(char *) * (size_t)(n->n_in + 1));
    if (!names) return CN_E_NOMEM;
    n->in_names = names;
    if (!(names[n->n_in] = cn_strndup(p->ctx, t->s, (size_t)t->len))) return CN_E_NOMEM;
    cols[n->n_in++] = t->col;
    return CN_OK;
}

static cn_status parse_statement(parser *p, const token *t, int nt, cn_node *n)
{
    cn_status st;
    int id = -1;
    char word[32];
    if (t[0].len < (int)sizeof word) {
        memcpy(word, t[0].s, (size_t)t[0].len);
        word[t[0].len] = '\0';
        id = cn_op_find(word);
    }
    if (id < 0) return unknown_layer(p, &t[0]);
    const cn_op *op = cn_ops[id];
    n->op = op;
    n->id = (cn_op_id)id;
    n->line = t[0].line;
    n->col = t[0].col;
    int given = 0, have_from = 0;
    for (int i = 1; i < nt; i++) {
        const token *tk = &t[i];
        if (tok_is(tk, "as") || tok_is(tk, "from")) {
            int is_as = tok_is(tk, "as");
            if (i + 1 >= nt)
                return fail(p, tk->line, tk->col + tk->len, CN_E_PARSE, "%s: '%s' needs a layer name after it",
                            op->name, is_as ? "as" : "from");
            const token *nm = &t[++i];
            if (is_as) {
                if (n->name)
                    return fail(p, tk->line, tk->col, CN_E_PARSE, "%s: 'as' given twice", op->name);
                if ((st = check_name(p, nm, "layer name"))) return st;
                if (!(n->name = cn_strndup(p->ctx, nm->s, (size_t)nm->len))) return CN_E_NOMEM;
                n->name_col = nm->col;
            } else {
                if (op->inputs == 0)
                    return fail(p, tk->line, tk->col, CN_E_PARSE, "input: the input reads no layer ('from' not allowed)");
                if (op->inputs < 0)
                    return fail(p, tk->line, tk->col, CN_E_PARSE, "%s: write the layers it reads as names: %s",
                                op->name, op->usage);
                if (have_from) return fail(p, tk->line, tk->col, CN_E_PARSE, "%s: 'from' given twice", op->name);
                have_from = 1;
                if ((st = add_input_name(p, n, nm))) return st;
            }
            continue;
        }
        const char *eq = memchr(tk->s, '=', (size_t)tk->len);
        int ki = -1;
        token val = *tk;
        if (eq) {
            int klen = (int)(eq - tk->s);
            char key[32];
            if (klen > 0 && klen < (int)sizeof key) {
                memcpy(key, tk->s, (size_t)klen);
                key[klen] = '\0';
                ki = cn_op_key_index(op, key);
            }
            if (klen == 0)
                return fail(p, tk->line, tk->col, CN_E_PARSE, "%s: '%.*s' has no key name before '='", op->name, tk->len,
                            tk->s);
            if (ki < 0 || op->keys[ki].type == CN_KT_NAMES) return unknown_key(p, op, tk, klen);
            val = (token){ eq + 1, tk->len - klen - 1, tk->line, tk->col + klen + 1 };
            if (val.len == 0)
                return fail(p, tk->line, val.col, CN_E_PARSE, "%s: %s= needs a value", op->name, op->keys[ki].name);
            if (given & (1 << ki))
                return fail(p, tk->line, tk->col, CN_E_PARSE, "%s: %s given twice (first at column %d)", op->name,
                            op->keys[ki].name, n->key_col[ki]);
        } else {
            for (int k = 0; op->keys[k].name; k++)
                if ((op->keys[k].flags & CN_KEY_POS) && (!(given & (1 << k)) || op->keys[k].type == CN_KT_NAMES)) {
                    ki = k;
                    break;
                }
            /* a bare value where a required key is still missing (dropout 0.5): that key named */
            for (int k = 0; ki < 0 && op->keys[k].name; k++)
                if ((op->keys[k].flags & CN_KEY_REQ) && !(given & (1 << k)) && op->keys[k].type != CN_KT_NAMES)
                    return fail(p, tk->line, tk->col, CN_E_PARSE,
                                "%s: unexpected '%.*s': did you mean %s=%.*s (%s)? (usage: %s)", op->name, tk->len,
                                tk->s, op->keys[k].name, tk->len, tk->s, op->keys[k].doc, op->usage);
            if (ki < 0)
                return fail(p, tk->line, tk->col, CN_E_PARSE, "%s: unexpected '%.*s' (usage: %s)", op->name, tk->len,
                            tk->s, op->usage);
        }
        if (!(given & (1 << ki))) n->key_col[ki] = tk->col;
        given |= 1 << ki;
        if (op->keys[ki].type == CN_KT_NAMES) st = add_input_name(p, n, &val);
        else st = parse_value(p, op, &op->keys[ki], &val, &n->a);
        if (st) return st;
    }
    for (int k = 0; op->keys[k].name; k++) {
        const cn_key *key = &op->keys[k];
        if (given & (1 << k)) continue;
        if (key->flags & CN_KEY_REQ)
            return fail(p, n->line, t[nt - 1].col + t[nt - 1].len, CN_E_PARSE, "%s: missing %s: %s (usage: %s)",
                        op->name, key->name, key->doc, op->usage);
        if (key->def) {
            token d = { key->def, (int)strlen(key->def), n->line, n->col };
            if ((st = parse_value(p, op, key, &d, &n->a))) return st;
        }
    }
    if (op->inputs < 0 && n->n_in < 2)
        return fail(p, n->line, n->col, CN_E_PARSE, "%s: needs two or more layer names (usage: %s)", op->name, op->usage);
    return CN_OK;
}

void cn_nodes_free(cn_ctx *ctx, cn_node *nodes, int count)
{
    if (!nodes) return;
    for (int i = 0; i < count; i++) {
        cn_node *n = &nodes[i];
        for (int j = 0; j < n->n_in; j++)
            if (n->in_names) cn_free(ctx, n->in_names[j]);
        cn_free(ctx, n->in_names);
        cn_free(ctx, n->in_cols);
        cn_free(ctx, n->in);
        cn_free(ctx, n->name);
    }
    cn_free(ctx, nodes);
}

cn_status cn_spec_parse(cn_ctx *ctx, const char *text, size_t len, const char *file, cn_node **out, int *count)
{
    parser p = { ctx, file };
    cn_node *nodes = NULL;
    token *toks = NULL;
    int nn = 0, cap = 0, nt = 0, tcap = 0, line = 1, col = 1;
    cn_status st = CN_OK;
    *out = NULL;
    *count = 0;
    if (len >= INT_MAX) /* lines and columns are ints */
        return cn_fail(ctx, CN_E_PARSE, "%s: a spec of %zu bytes is longer than %d (the limit)", file, len,
                       INT_MAX - 1);
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? text[i] : '\n';
        if (c == '#') { /* comment to the end of the line */
            while (i + 1 < len && text[i + 1] != '\n') i++;
            col++;
            continue;
        }
        if (c == '\n' || c == ';') {
            if (nt > 0) {
                if (nn == cap) {
                    int ncap = cap ? 2 * cap : 16;
                    cn_node *grown = cn_realloc(ctx, nodes, sizeof *nodes * (size_t)ncap);
                    if (!grown) { st = CN_E_NOMEM; goto done; }
                    memset(grown + cap, 0, sizeof *nodes * (size_t)(ncap - cap));
                    nodes = grown;
                    cap = ncap;
                }
                nn++;
                if ((st = parse_statement(&p, toks, nt, &nodes[nn - 1]))) goto done;
                nt = 0;
            }
            if (c == '\n') line++, col = 1;
            else col++;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\r') {
            col++;
            continue;
        }
        /* a word starts here: refuse a layer or a word past the limit before reading it */
        if (nt == 0 && nn == CN_MAX_LAYERS) {
            st = fail(&p, line, col, CN_E_PARSE, "more than %d layers (the limit)", CN_MAX_LAYERS);
            goto done;
        }
        if (nt == CN_MAX_WORDS) {
            st = fail(&p, line, col, CN_E_PARSE, "more than %d words in one statement (the limit)", CN_MAX_WORDS);
            goto done;
        }
        if ((unsigned char)c < 32 || c == 127) {
            st = fail(&p, line, col, CN_E_PARSE, "unexpected control character 0x%02x", (unsigned char)c);
            goto done;
        }
        size_t j = i;
        while (j < len && text[j] != ' ' && text[j] != '\t' && text[j] != '\r' && text[j] != '\n' && text[j] != ';' &&
               text[j] != '#' && (unsigned char)text[j] >= 32 && text[j] != 127)
            j++;
        if (j - i > CN_MAX_WORD) {
            st = fail(&p, line, col, CN_E_PARSE, "word of %zu characters is longer than %d (the limit)", j - i,
                      CN_MAX_WORD);
            goto done;
        }
        if (nt == tcap) {
            int ncap = tcap ? 2 * tcap : 16;
            token *grown = cn_realloc(ctx, toks, sizeof *toks * (size_t)ncap);
            if (!grown) { st = CN_E_NOMEM; goto done; }
            toks = grown;
            tcap = ncap;
        }
        toks[nt++] = (token){ text + i, (int)(j - i), line, col };
        col += (int)(j - i);
        i = j - 1;
    }
    if (nn == 0) {
        int last_line = 1; /* the file's last line, whether or not it ends in a newline */
        for (size_t i = 0; i + 1 < len; i++) last_line += text[i] == '\n';
        st = fail(&p, last_line, 1, CN_E_PARSE, "empty spec: it needs at least 'input HxWxC'");
    }
done:
    cn_free(ctx, toks);
    if (st) {
        cn_nodes_free(ctx, nodes, nn);
        return st;
    }
    *out = nodes;
    *count = nn;
    return CN_OK;
}
