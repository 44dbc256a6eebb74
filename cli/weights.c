/* weights.c — a net's weights from a file, for the commands that run given weights (trace,
 * gradflow): a text file (one tensor a line, "layer.weight = 1,1; 1,-1"), JSON ({"layer.weight":
 * [[1,1],[1,-1]]}) or a checkpoint (a .safetensors file or a run folder); or the text or JSON
 * itself, given in place of a file. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli_impl.h"

int cli_is_checkpoint(const char *file)
{
    size_t fl = strlen(file);
    struct stat st;
    return (fl > 12 && !strcmp(file + fl - 12, ".safetensors")) || (!stat(file, &st) && S_ISDIR(st.st_mode));
}

static int flatten_json(const cJSON *v, float *out, int64_t cap, int64_t *n)
{
    if (cJSON_IsNumber(v)) {
        if (*n >= cap) return 1;
        out[(*n)++] = (float)v->valuedouble;
        return 0;
    }
    if (!cJSON_IsArray(v)) return 1;
    for (const cJSON *e = v->child; e; e = e->next)
        if (flatten_json(e, out, cap, n)) return 1;
    return 0;
}

/* sets tensor `name` of the net from values (n of them); errors name the file and line */
static int set_tensor(cn_ctx *ctx, cn_net *net, const char *file, int line, const char *name, const float *v, int64_t n,
                      char *given)
{
    cn_tensor x;
    if (cn_net_find_tensor(ctx, net, name, &x))
        return cli_error("%s:%d: the net has no tensor '%s' (its tensors are named layer.weight, layer.bias)", file, line, name);
    if (x.count != n)
        return cli_error("%s:%d: %s has %lld values, the net's %s has %lld", file, line, name, (long long)n, name,
                         (long long)x.count);
    for (int64_t k = 0; k < n; k++)
        if (!isfinite(v[k])) return cli_error("%s:%d: %s: value %lld is not a finite number", file, line, name, (long long)k + 1);
    memcpy(x.data, v, (size_t)n * sizeof *v);
    int idx = -1;
    for (int k = 0; k < cn_net_tensor_count(net); k++) {
        cn_tensor y;
        if (!cn_net_tensor(ctx, net, k, &y) && !strcmp(y.name, name)) idx = k;
    }
    if (idx >= 0) given[idx] = 1;
    return 0;
}

int cli_load_weights(cn_ctx *ctx, cn_net *net, const char *file, const char *cmd)
{
    int nt = cn_net_tensor_count(net), rc = 0;
    char *given = calloc((size_t)nt + 1, 1);
    if (!given) return cli_error("out of memory");
    size_t len = 0;
    if (cli_is_checkpoint(file)) {
        const char *ck_path = file;
        cn_checkpoint *ck = NULL;
        int copied = 0;
        char fresh[256] = "";
        if (cn_checkpoint_read(ctx, ck_path, &ck) ||
            cn_checkpoint_load_matching(ctx, ck, net, &copied, fresh, sizeof fresh))
            rc = cli_ctx_error(ctx);
        else if (fresh[0])
            rc = cli_error("%s: no weights for %s in this checkpoint (none of that name and shape)", ck_path, fresh);
        cn_checkpoint_destroy(ck);
        free(given);
        return rc;
    }
    /* the text itself where no such file is and it reads as weights (a worksheet's one command:
     * --weights 'hidden.weight = 1,1; 1,1'), named "--weights" in messages */
    struct stat sb;
    const char *lead = file + strspn(file, " \t\n");
    int inline_text = stat(file, &sb) != 0 && (strchr(file, '=') || *lead == '{');
    char *text = inline_text ? strdup(file) : cli_read_file(file, (size_t)64 << 20, &len, &rc);
    if (inline_text) len = strlen(file), file = "--weights", rc = text ? 0 : cli_error("out of memory");
    if (!text) return free(given), rc;
    const char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    float *vals = NULL;
    if (*p == '{') {
        cJSON *root = cJSON_ParseWithLength(text, len);
        if (!root || !cJSON_IsObject(root)) rc = cli_error("%s: not a JSON object of tensors", file);
        for (const cJSON *e = root ? root->child : NULL; !rc && e; e = e->next) {
            cn_tensor x;
            if (cn_net_find_tensor(ctx, net, e->string, &x)) {
                rc = cli_error("%s: the net has no tensor '%s'", file, e->string);
                break;
            }
            int64_t n = 0;
            free(vals);
            if (!(vals = malloc((size_t)x.count * sizeof *vals))) rc = cli_error("out of memory");
            else if (flatten_json(e, vals, x.count, &n))
                rc = cli_error("%s: %s: expected %lld numbers (in arrays, nested as you like)", file, e->string, (long long)x.count);
            else rc = set_tensor(ctx, net, file, 1, e->string, vals, n, given);
        }
        cJSON_Delete(root);
    } else {
        /* name = 1,1; 1,-1   (one tensor a line, rows split by ';', '#' comments) */
        int line = 0;
        for (char *ln = text; !rc && ln && *ln;) {
            char *next = strchr(ln, '\n');
            if (next) *next++ = '\0';
            line++;
            char *hash = strchr(ln, '#');
            if (hash) *hash = '\0';
            char *eq = strchr(ln, '=');
            char *name = ln;
            while (*name == ' ' || *name == '\t') name++;
            if (!*name || *name == '\r') {
                ln = next;
                continue;
            }
            if (!eq) {
                rc = cli_error("%s:%d: expected 'name = values' (as hidden.weight = 1,1; 1,-1)", file, line);
                break;
            }
            char *end = eq;
            while (end > name && (end[-1] == ' ' || end[-1] == '\t')) end--;
            *end = '\0';
            int64_t r, c;
            char what[600];
            snprintf(what, sizeof what, "%s:%d: %s", file, line, name);
            free(vals);
            vals = NULL;
            if ((rc = cli_parse_matrix(cmd, what, eq + 1, &vals, &r, &c))) break;
            rc = set_tensor(ctx, net, file, line, name, vals, r * c, given);
            ln = next;
        }
    }
    free(vals);
    free(text);
    /* every trainable tensor must be given: a worked example has no hidden random numbers */
    for (int k = 0; !rc && k < nt; k++) {
        cn_tensor x;
        if (cn_net_tensor(ctx, net, k, &x) || !x.trainable || given[k]) continue;
        char shape[96] = "";
        for (int d = 0; d < x.rank; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? "x" : "", (long long)x.shape[d]);
        rc = cli_error("%s: no values for %s (%s, %lld values)", file, x.name, shape, (long long)x.count);
    }
    free(given);
    return rc;
}
