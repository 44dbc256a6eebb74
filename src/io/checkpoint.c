/* checkpoint.c — the convnet checkpoint, a safetensors file (src/io/safetensors.c): the net's
 * tensors (slab order), then the optimizer's state tensors as the optimizer names them
 * ("<tensor>.<state>", cn_optim_tensor), and in "__metadata__" the format, the spec and its hash,
 * the optimizer's kind and step count, and the caller's keys (convnet train's run settings).
 * Reading checks, after the safetensors layer's checks, the format, the checksums (the metadata's
 * is required from convnet-2 on), the values of the keys convnet train writes (finite
 * normalisation with std > 0, printable class names, ...), the spec hash, every tensor against
 * the spec's shapes, and that every restored value is finite. The net is reached through the
 * public tensor API (cn_net_tensor...), the optimizer through cn_optim_tensor.
 * Covered by tests/test_checkpoint.c (round trip, every malformed case, atomic writes, PyTorch
 * reading the file), fuzz/fuzz_safetensors.c and fuzz/fuzz_ckmeta.c (corpora replayed by the
 * tests). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../backend/kernel.h"
#include "checkpoint_impl.h"
#include "safetensors.h"

#define CK_FORMAT "convnet-2"     /* convnet-1 and a checksum of the metadata ("meta_crc32") */
#define CK_FORMAT_V1 "convnet-1"  /* still read: the metadata checksum is checked when present */

struct cn_checkpoint {
    cn_allocator alloc; /* to free it without the context that read it */
    cn_st *file;
    int verified;       /* checksums checked; the spec hash is checked when 1 */
};

#define bad cn_st_fail

/* ---- small helpers ------------------------------------------------------------------------ */

/* FNV-1a, 64 bits */
static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

/* A decimal integer 0 .. INT64_MAX, digits only. */
static int parse_count(const char *s, int64_t *v)
{
    int64_t r = 0;
    if (!*s) return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || !cn_mul_ok(r, 10, &r) || !cn_add_ok(r, *s - '0', &r)) return 0;
    }
    *v = r;
    return 1;
}

/* "<tensor>.<state>": the name a checkpoint gives an optimizer state tensor (NULL: no memory) */
static char *state_name(cn_ctx *ctx, const char *param, const char *state)
{
    size_t len = strlen(param) + strlen(state) + 2;
    char *name = cn_malloc(ctx, len);
    if (name) snprintf(name, len, "%s.%s", param, state);
    return name;
}

/* ---- writing -------------------------------------------------------------------------------- */

static int reserved_key(const char *k)
{
    static const char *const keys[] = { "format", "spec", "spec_hash", "optimizer", "optimizer_steps" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(k, keys[i])) return 1;
    return cn_st_reserved_key(k);
}

static cn_status check_caller_meta(cn_ctx *ctx, const char *path, const cn_kv *meta, int n_meta)
{
    for (int i = 0; i < n_meta; i++) {
        const char *k = meta[i].key, *v = meta[i].value;
        if (!k || !v) return cn_fail(ctx, CN_E_ARG, "checkpoint %s: metadata entry %d has a NULL key or value", path, i);
        if (!*k) return cn_fail(ctx, CN_E_ARG, "checkpoint %s: metadata entry %d has an empty key", path, i);
        if (reserved_key(k))
            return cn_fail(ctx, CN_E_ARG, "checkpoint %s: metadata key '%s' is reserved for convnet", path, k);
        if (!cn_st_utf8_ok((const unsigned char *)k, strlen(k), 0) || !cn_st_utf8_ok((const unsigned char *)v, strlen(v), 0))
            return cn_fail(ctx, CN_E_ARG, "checkpoint %s: metadata entry %d is not valid UTF-8", path, i);
        for (int j = 0; j < i; j++)
            if (!strcmp(meta[j].key, k))
                return cn_fail(ctx, CN_E_ARG, "checkpoint %s: metadata key '%s' given twice", path, k);
    }
    return CN_OK;
}

/* The metadata: format, spec, spec_hash, optimizer and optimizer_steps (with an optimizer),
 * then the caller's entries; the safetensors layer adds the checksums. */
static cn_status write_file(cn_ctx *ctx, const char *path, const cn_net *net, const cn_optim *opt, const cn_kv *meta,
                            int n_meta, const cn_st_out *t, int n)
{
    char hash[32], steps[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)fnv1a64(cn_net_spec_text(net)));
    snprintf(steps, sizeof steps, "%lld", opt ? (long long)cn_optim_steps(opt) : 0LL);
    cn_kv *all = cn_calloc(ctx, (size_t)n_meta + 5, sizeof *all);
    if (!all) return CN_E_NOMEM;
    int k = 0;
    all[k++] = (cn_kv){ "format", CK_FORMAT };
    all[k++] = (cn_kv){ "spec", cn_net_spec_text(net) };
    all[k++] = (cn_kv){ "spec_hash", hash };
    if (opt) {
        all[k++] = (cn_kv){ "optimizer", cn_optim_kind_name(cn_optim_get_config(opt)->kind) };
        all[k++] = (cn_kv){ "optimizer_steps", steps };
    }
    for (int i = 0; i < n_meta; i++) all[k++] = meta[i];
    cn_status st = cn_st_write(ctx, "checkpoint", path, all, k, t, n);
    cn_free(ctx, all);
    return st;
}

cn_status cn_checkpoint_write(cn_ctx *ctx, const char *path, const cn_net *net, const cn_optim *opt,
                              const cn_kv *meta, int n_meta)
{
    if (!ctx) return CN_E_ARG;
    if (!path || !*path || !net || n_meta < 0 || (n_meta > 0 && !meta))
        return cn_fail(ctx, CN_E_ARG, "cn_checkpoint_write: bad arguments");
    int64_t n_trainable;
    if (!cn_net_params(net, &n_trainable, NULL))
        return cn_fail(ctx, CN_E_ARG, "checkpoint %s: the net has no parameters yet (cn_net_init_params)", path);
    if (opt) {
        const char *names[CN_OPTIM_MAX_STATES];
        int64_t count, need = n_trainable * cn_optim_state_names(cn_optim_get_config(opt)->kind, names);
        cn_optim_state((cn_optim *)opt, &count); /* read only */
        if (count != need)
            return cn_fail(ctx, CN_E_ARG, "checkpoint %s: the optimizer was made for another net (%lld state values, "
                                          "the net needs %lld)", path, (long long)count, (long long)need);
    }
    cn_status st = check_caller_meta(ctx, path, meta, n_meta);
    if (st) return st;
    const char *spec = cn_net_spec_text(net);
    if (!cn_st_utf8_ok((const unsigned char *)spec, strlen(spec), 0))
        return cn_fail(ctx, CN_E_ARG, "checkpoint %s: the spec text is not valid UTF-8", path);

    /* the net's tensors, then the optimizer's state tensors (in slab order: all of the first
     * state, then all of the second) */
    int n_net = cn_net_tensor_count(net), n = n_net + (opt ? cn_optim_tensor_count(opt, net) : 0), k = 0;
    cn_st_out *t = cn_calloc(ctx, (size_t)(n ? n : 1), sizeof *t);
    if (!t) return CN_E_NOMEM;
    for (; k < n_net; k++) {
        cn_tensor x;
        if ((st = cn_net_tensor(ctx, net, k, &x))) goto done;
        t[k] = (cn_st_out){ .name = (char *)x.name, .rank = x.rank, .count = x.count, .data = x.data };
        memcpy(t[k].shape, x.shape, sizeof x.shape);
    }
    for (; k < n; k++) {
        cn_optim_state_tensor x;
        if ((st = cn_optim_tensor(ctx, opt, net, k - n_net, &x))) goto done;
        if (!(t[k].name = state_name(ctx, x.param, x.state))) {
            st = CN_E_NOMEM;
            goto done;
        }
        t[k].rank = x.rank, t[k].count = x.count, t[k].data = x.data;
        memcpy(t[k].shape, x.shape, sizeof x.shape);
    }
    st = write_file(ctx, path, net, opt, meta, n_meta, t, n);
done:
    for (int i = n_net; i < k; i++) cn_free(ctx, (char *)t[i].name);
    cn_free(ctx, t);
    return st;
}

/* ---- reading -------------------------------------------------------------------------------- */

void cn_checkpoint_destroy(cn_checkpoint *ck)
{
    if (!ck) return;
    cn_ctx tmp = { .alloc = ck->alloc };
    cn_st_free(ck->file);
    cn_free(&tmp, ck);
}

void cn_checkpoint_free(cn_checkpoint *ck) { cn_checkpoint_destroy(ck); }

const char *cn_checkpoint_meta(const cn_checkpoint *ck, const char *key)
{
    return ck && key ? cn_st_meta(ck->file, key) : NULL;
}

/* format, and the checksums: the metadata's (required from convnet-2 on) and every tensor's */
static cn_status check_format(cn_ctx *ctx, const cn_st *f, int verify)
{
    const char *path = cn_st_path(f), *fmt = cn_st_meta(f, "format");
    if (!fmt) return bad(ctx, CN_E_FORMAT, path, "no \"format\" in __metadata__: not a convnet checkpoint");
    if (strcmp(fmt, CK_FORMAT) && strcmp(fmt, CK_FORMAT_V1))
        return bad(ctx, CN_E_UNSUPPORTED, path, "format '%.40s'; this version of convnet reads %s and %s", fmt, CK_FORMAT,
                   CK_FORMAT_V1);
    return cn_st_check_sums(ctx, f, !strcmp(fmt, CK_FORMAT), verify);
}

/* ---- the values convnet train stores ---------------------------------------------------------- */

/* n comma-separated finite floats; std: each > 0 too. Returns the 1-based index of the first
 * bad value (0: all good; n + 1: wrong count or junk). */
static int parse_floats(const char *s, float *v, int n, int positive)
{
    for (int i = 0; i < n; i++) {
        char *end;
        if (!*s || *s == ',' || *s == ' ') return i + 1;
        v[i] = strtof(s, &end);
        if (end == s || !isfinite(v[i]) || (positive && !(v[i] >= (float)CN_NORM_STD_MIN))) return i + 1;
        s = end;
        if (i + 1 < n && *s++ != ',') return n + 1;
    }
    return *s ? n + 1 : 0;
}

/* cn_text_printable, and with lines: newline-separated entries, none of them empty */
static int printable(const char *s, int lines) { return lines ? cn_text_printable_lines(s) : cn_text_printable(s); }

static int ok_count(const char *v) { int64_t n; return parse_count(v, &n); }
static int ok_rng(const char *v)
{
    uint64_t part, any = 0;
    if (strlen(v) != 64) return 0;
    for (int i = 0; i < 4; i++) {
        char p[17];
        memcpy(p, v + 16 * i, 16);
        p[16] = '\0';
        if (!cn_st_parse_hex(p, 16, &part)) return 0;
        any |= part;
    }
    return any != 0; /* xoshiro's all-zero state repeats zeros forever */
}
static int ok_fraction(const char *v) /* "nan" (no validation) or a number in [-1, 1] */
{
    char *end;
    double d = strtod(v, &end);
    return end != v && !*end && (isnan(d) ? !strcmp(v, "nan") || !strcmp(v, "-nan") : d >= -1 && d <= 1);
}
static int ok_loss(const char *v) /* "nan" (no epoch yet) or a finite number >= 0 */
{
    char *end;
    double d = strtod(v, &end);
    return end != v && !*end && (isnan(d) ? !strcmp(v, "nan") || !strcmp(v, "-nan") : isfinite(d) && d >= 0);
}

/* The keys convnet train writes (src/train/trainer.c, cli/train.c) and what their values must be. */
static cn_status check_train_meta(cn_ctx *ctx, const cn_checkpoint *ck)
{
    static const struct {
        const char *key, *want;
        int (*ok)(const char *);
    } counts[] = {
        { "epoch", "a whole number", ok_count },   { "step", "a whole number", ok_count },
        { "best_epoch", "a whole number", ok_count }, { "seed", "a whole number", ok_count },
        { "classes", "a whole number", ok_count }, { "train_images", "a whole number", ok_count },
        { "data_rng", "64 hex digits, not all zero", ok_rng }, { "net_rng", "64 hex digits, not all zero", ok_rng },
        { "val_acc", "nan or a number in [-1, 1]", ok_fraction },
        { "best_val_acc", "nan or a number in [-1, 1]", ok_fraction },
        { "best_val_loss", "nan or a finite number >= 0", ok_loss },
    };
    const char *path = cn_st_path(ck->file), *v;
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if ((v = cn_checkpoint_meta(ck, counts[i].key)) && !counts[i].ok(v))
            return bad(ctx, CN_E_FORMAT, path, "metadata %s is '%.40s', not %s", counts[i].key, v, counts[i].want);
    float f[4];
    int at;
    if ((v = cn_checkpoint_meta(ck, "norm_mean")) && (at = parse_floats(v, f, 4, 0)))
        return bad(ctx, CN_E_FORMAT, path, "metadata norm_mean is '%.60s': %s", v,
                   at > 4 ? "not 4 numbers separated by commas" : "a value is not a finite number");
    if ((v = cn_checkpoint_meta(ck, "norm_std")) && (at = parse_floats(v, f, 4, 1)))
        return bad(ctx, CN_E_FORMAT, path, "metadata norm_std is '%.60s': %s", v,
                   at > 4 ? "not 4 numbers separated by commas" : "a standard deviation must be a finite number >= 1e-06");
    const char *names = cn_checkpoint_meta(ck, "class_names"), *classes = cn_checkpoint_meta(ck, "classes");
    if (names && !printable(names, 1))
        return bad(ctx, CN_E_FORMAT, path, "metadata class_names: a name is empty or holds a control character (or is over 1024 bytes)");
    if (names && classes) {
        int64_t lines = 1, want = 0;
        for (const char *p = names; *p; p++) lines += *p == '\n';
        parse_count(classes, &want);
        if (lines != want)
            return bad(ctx, CN_E_FORMAT, path, "metadata class_names has %lld names for %lld classes", (long long)lines,
                       (long long)want);
    }
    cn_resize mode;
    if ((v = cn_checkpoint_meta(ck, "resize")) && !cn_resize_parse(v, &mode))
        return bad(ctx, CN_E_FORMAT, path, "metadata resize is '%.40s', not bilinear, antialias or draft", v);
    if ((v = cn_checkpoint_meta(ck, "monitor")) && strcmp(v, "accuracy") && strcmp(v, "loss"))
        return bad(ctx, CN_E_FORMAT, path, "metadata monitor is '%.40s', not accuracy or loss", v);
    if ((v = cn_checkpoint_meta(ck, "data")) && !printable(v, 0))
        return bad(ctx, CN_E_FORMAT, path, "metadata data holds a control character");
    if ((v = cn_checkpoint_meta(ck, "test_data")) && !printable(v, 0))
        return bad(ctx, CN_E_FORMAT, path, "metadata test_data holds a control character");
    return CN_OK;
}

cn_resize cn_checkpoint_resize(const cn_checkpoint *ck)
{
    cn_resize mode = CN_RESIZE_BILINEAR; /* no key: written before convnet stored it */
    if (ck) cn_resize_parse(cn_checkpoint_meta(ck, "resize"), &mode); /* checked when read */
    return mode;
}

cn_status cn_checkpoint_norm(cn_ctx *ctx, const cn_checkpoint *ck, float mean[4], float std[4])
{
    if (!ctx) return CN_E_ARG;
    if (!ck || !mean || !std) return cn_fail(ctx, CN_E_ARG, "cn_checkpoint_norm: NULL argument");
    const char *m = cn_checkpoint_meta(ck, "norm_mean"), *s = cn_checkpoint_meta(ck, "norm_std");
    if (!m || !s)
        return bad(ctx, CN_E_FORMAT, cn_st_path(ck->file), "no input normalisation (norm_mean, norm_std) in the metadata: "
                   "not written by convnet train");
    float mv[4], sv[4];
    if (parse_floats(m, mv, 4, 0) || parse_floats(s, sv, 4, 1)) /* checked when read: only a bug gets here */
        return bad(ctx, CN_E_FORMAT, cn_st_path(ck->file), "malformed norm_mean or norm_std");
    memcpy(mean, mv, sizeof mv);
    memcpy(std, sv, sizeof sv);
    return CN_OK;
}

/* The checkpoint over a safetensors file read (taken over, freed on failure). */
static cn_status open_checkpoint(cn_ctx *ctx, cn_st *f, int verify, cn_checkpoint **out)
{
    cn_checkpoint *ck = cn_calloc(ctx, 1, sizeof *ck);
    if (!ck) {
        cn_st_free(f);
        return CN_E_NOMEM;
    }
    *ck = (cn_checkpoint){ .alloc = ctx->alloc, .file = f, .verified = verify };
    cn_status st = check_format(ctx, f, verify);
    if (!st) st = check_train_meta(ctx, ck);
    if (st) cn_checkpoint_destroy(ck);
    else *out = ck;
    return st;
}

cn_status cn_checkpoint_read_memory(cn_ctx *ctx, const void *data, size_t size, const char *name, int verify,
                                    cn_checkpoint **out)
{
    if (!ctx) return CN_E_ARG;
    if (!out || !name || (!data && size)) return cn_fail(ctx, CN_E_ARG, "cn_checkpoint_read_memory: bad arguments");
    *out = NULL;
    cn_ctx_clear(ctx);
    cn_st *f;
    cn_status st = cn_st_read_memory(ctx, data, size, name, &f);
    return st ? st : open_checkpoint(ctx, f, verify, out);
}

cn_status cn_checkpoint_read(cn_ctx *ctx, const char *path, cn_checkpoint **out)
{
    if (!ctx) return CN_E_ARG;
    if (!path || !out) return cn_fail(ctx, CN_E_ARG, "cn_checkpoint_read: NULL argument");
    *out = NULL;
    cn_ctx_clear(ctx);
    /* a run folder: its best checkpoint, as the CLI reads it */
    struct stat sb;
    char *inside = NULL;
    if (!stat(path, &sb) && S_ISDIR(sb.st_mode)) {
        size_t len = strlen(path);
        if (!(inside = cn_malloc(ctx, len + sizeof "/model.safetensors"))) return CN_E_NOMEM;
        memcpy(inside, path, len);
        memcpy(inside + len, "/model.safetensors", sizeof "/model.safetensors");
        if (stat(inside, &sb) && errno == ENOENT) { /* say what the folder is, or is not */
            memcpy(inside + len, "/run.json", sizeof "/run.json");
            int run = !stat(inside, &sb);
            cn_free(ctx, inside);
            return run ? cn_fail(ctx, CN_E_IO, "%s: the run has no model.safetensors yet (its first epoch writes it)", path)
                       : cn_fail(ctx, CN_E_IO, "%s: a folder without model.safetensors: not a run folder (give a "
                                 "run's folder or a .safetensors file)", path);
        }
    }
    cn_st *f;
    cn_status st = cn_st_read(ctx, inside ? inside : path, &f);
    cn_free(ctx, inside);
    if (st == CN_E_FORMAT && cn_path_is_onnx(path))
        return cn_fail(ctx, CN_E_FORMAT, CN_ONNX_HINT, path, "checkpoint", path);
    return st ? st : open_checkpoint(ctx, f, 1, out);
}

/* ---- restoring ---------------------------------------------------------------------------- */

/* The stored tensor `name` with the given shape, marked as used; fails naming it. */
static cn_status take_tensor(cn_ctx *ctx, const cn_st *f, const char *name, int rank, const int64_t *shape,
                             unsigned char *used, const cn_st_tensor **out)
{
    char a[200], b[200];
    const cn_st_tensor *t = cn_st_find(f, name);
    if (!t)
        return bad(ctx, CN_E_FORMAT, cn_st_path(f), "tensor '%s' is missing (the spec gives it shape %s)", name,
                   cn_st_shape_text(shape, rank, b, sizeof b));
    int same = t->rank == rank;
    for (int d = 0; same && d < rank; d++) same = t->shape[d] == shape[d];
    if (!same)
        return bad(ctx, CN_E_SHAPE, cn_st_path(f), "tensor '%s' has shape %s in the file, the spec gives %s", name,
                   cn_st_shape_text(t->shape, t->rank, a, sizeof a), cn_st_shape_text(shape, rank, b, sizeof b));
    used[t->index] = 1;
    *out = t;
    return CN_OK;
}

/* Fails naming t when one of its values is not finite. */
static cn_status check_finite(cn_ctx *ctx, const cn_st *f, const cn_st_tensor *t)
{
    int64_t at = cn_st_first_nonfinite(t);
    if (at >= 0)
        return bad(ctx, CN_E_FORMAT, cn_st_path(f), "tensor '%s' holds a value that is not finite (at index %lld)", t->name,
                   (long long)at);
    return CN_OK;
}

/* Builds the stored net and fills it; *kind and *n_states describe the stored optimizer state
 * (every state tensor checked too). */
static cn_status restore_net(cn_ctx *ctx, const cn_checkpoint *ck, cn_net **out, cn_optim_kind *kind, int *n_states)
{
    const cn_st *f = ck->file;
    const char *path = cn_st_path(f), *spec = cn_st_meta(f, "spec"), *hash = cn_st_meta(f, "spec_hash");
    const char *opt_name = cn_st_meta(f, "optimizer"), *suffix[CN_OPTIM_MAX_STATES];
    *out = NULL;
    *n_states = 0;
    *kind = CN_OPTIM_SGD;
    if (!spec) return bad(ctx, CN_E_FORMAT, path, "no \"spec\" in __metadata__");
    if (!hash) return bad(ctx, CN_E_FORMAT, path, "no \"spec_hash\" in __metadata__");
    uint64_t want;
    if (!cn_st_parse_hex(hash, 16, &want)) return bad(ctx, CN_E_FORMAT, path, "spec_hash '%.40s' is not 16 hex digits", hash);
    if (ck->verified && fnv1a64(spec) != want)
        return bad(ctx, CN_E_FORMAT, path, "spec_hash %016llx does not match the stored spec (whose hash is %016llx)",
                   (unsigned long long)want, (unsigned long long)fnv1a64(spec));
    if (opt_name) {
        if (!cn_optim_kind_from_name(opt_name, kind)) return bad(ctx, CN_E_FORMAT, path, "unknown optimizer '%.40s'", opt_name);
        *n_states = cn_optim_state_names(*kind, suffix);
    }

    cn_net *net = NULL;
    unsigned char *used = NULL;
    char *spec_file = NULL, *name = NULL;
    size_t plen = strlen(path) + 8;
    int n_file = cn_st_count(f);
    cn_status st = CN_E_NOMEM;
    if (!(spec_file = cn_malloc(ctx, plen))) goto done;
    snprintf(spec_file, plen, "%s:spec", path);
    if ((st = cn_net_parse(ctx, spec, strlen(spec), spec_file, &net))) goto done;
    /* the classes it was trained on are among the net's outputs (fewer is a net larger than its
     * data; more would name classes the net cannot score) */
    const char *classes = cn_st_meta(f, "classes");
    cn_layer_info last;
    int64_t n_classes;
    if (classes && parse_count(classes, &n_classes) && !cn_net_layer(ctx, net, cn_net_layer_count(net) - 1, 1, &last) &&
        n_classes > last.c * last.h * last.w) {
        st = bad(ctx, CN_E_FORMAT, path, "metadata classes is %lld, but the net's output (%s) has %lld values",
                 (long long)n_classes, last.name, (long long)(last.c * last.h * last.w));
        goto done;
    }
    /* every tensor the spec gives must be in the file with its shape, before the slab is
     * allocated: a spec asking for gigabytes cannot pass unless the file holds them */
    st = CN_E_NOMEM;
    if (!(used = cn_calloc(ctx, (size_t)(n_file ? n_file : 1), 1))) goto done;
    for (int i = 0; i < cn_net_layer_count(net); i++) {
        cn_param_info p[CN_MAX_LAYER_TENSORS];
        int k = cn_net_layer_params(net, i, p);
        for (int j = 0; j < k; j++)
            for (int s = -1; s < (p[j].trainable ? *n_states : 0); s++) {
                const char *sfx = s < 0 ? "" : suffix[s];
                size_t len = strlen(p[j].layer) + strlen(p[j].name) + strlen(sfx) + 3;
                const cn_st_tensor *t;
                st = CN_E_NOMEM;
                if (!(name = cn_malloc(ctx, len))) goto done;
                snprintf(name, len, "%s.%s%s%s", p[j].layer, p[j].name, s < 0 ? "" : ".", sfx);
                if ((st = take_tensor(ctx, f, name, p[j].rank, p[j].shape, used, &t))) goto done;
                cn_free(ctx, name), name = NULL;
            }
    }
    for (int i = 0; i < n_file; i++)
        if (!used[i]) {
            st = bad(ctx, CN_E_FORMAT, path, "unknown tensor '%s': the spec has no such tensor%s", cn_st_at(f, i)->name,
                     opt_name ? "" : " (and no optimizer state is saved)");
            goto done;
        }
    if ((st = cn_net_init_params(ctx, net, CN_INIT_KAIMING_NORMAL, 0))) goto done;
    for (int i = 0; i < cn_net_tensor_count(net); i++) {
        cn_tensor x;
        if ((st = cn_net_tensor(ctx, net, i, &x))) goto done;
        const cn_st_tensor *t = cn_st_find(f, x.name);
        if (!t) { /* the net names its tensors as cn_net_layer_params does: found above */
            st = bad(ctx, CN_E_FORMAT, path, "tensor '%s' is missing", x.name);
            goto done;
        }
        if ((st = check_finite(ctx, f, t))) goto done;
        memcpy(x.data, t->bytes, (size_t)t->count * sizeof(float));
    }
    *out = net, net = NULL;
    st = CN_OK;
done:
    cn_net_destroy(net);
    cn_free(ctx, used);
    cn_free(ctx, name);
    cn_free(ctx, spec_file);
    return st;
}

/* the layer of tensor "<layer>.<param>": its name's length up to the last dot */
static int layer_len(const char *tensor)
{
    const char *dot = strrchr(tensor, '.');
    return dot ? (int)(dot - tensor) : (int)strlen(tensor);
}

cn_status cn_checkpoint_load_matching(cn_ctx *ctx, const cn_checkpoint *ck, cn_net *net, int *copied, char *fresh,
                                      size_t cap)
{
    if (!ctx) return CN_E_ARG;
    if (!ck || !net || !copied) return cn_fail(ctx, CN_E_ARG, "cn_checkpoint_load_matching: NULL argument");
    if (!cn_net_params(net, NULL, NULL))
        return cn_fail(ctx, CN_E_ARG, "cn_checkpoint_load_matching: call cn_net_init_params first");
    const cn_st *f = ck->file;
    *copied = 0;
    cn_strbuf sb;
    char none[1];
    cn_sb_init(&sb, fresh && cap ? fresh : none, fresh && cap ? cap : sizeof none);
    const char *last_fresh = NULL; /* the tensor before, when it was left as initialised */
    int n = cn_net_tensor_count(net);
    for (int i = 0; i < n; i++) {
        cn_tensor x;
        cn_status st = cn_net_tensor(ctx, net, i, &x);
        if (st) return st;
        const cn_st_tensor *t = cn_st_find(f, x.name);
        int same = t && t->rank == x.rank;
        for (int d = 0; same && d < t->rank; d++) same = t->shape[d] == x.shape[d];
        if (!same) {
            int len = layer_len(x.name);
            if (!last_fresh || layer_len(last_fresh) != len || strncmp(last_fresh, x.name, (size_t)len))
                cn_sb_printf(&sb, "%s%.*s", sb.len ? ", " : "", len, x.name);
            last_fresh = x.name;
            continue;
        }
        last_fresh = NULL;
        if ((st = check_finite(ctx, f, t))) return st;
        memcpy(x.data, t->bytes, (size_t)t->count * sizeof(float));
        ++*copied;
    }
    cn_net_params_changed(net);
    if (!*copied && n) {
        cn_tensor x;
        cn_net_tensor(ctx, net, 0, &x);
        return bad(ctx, CN_E_SHAPE, cn_st_path(f), "no tensor of it has a name and shape of this net's (%s, ...): "
                   "not a run of a net like this one", x.name);
    }
    return CN_OK;
}

cn_status cn_checkpoint_net(cn_ctx *ctx, const cn_checkpoint *ck, cn_net **net)
{
    if (!ctx) return CN_E_ARG;
    if (!ck || !net) return cn_fail(ctx, CN_E_ARG, "cn_checkpoint_net: NULL argument");
    cn_optim_kind kind;
    int n_states;
    return restore_net(ctx, ck, net, &kind, &n_states);
}

cn_status cn_checkpoint_optim(cn_ctx *ctx, const cn_checkpoint *ck, cn_optim *opt)
{
    if (!ctx) return CN_E_ARG;
    if (!ck || !opt) return cn_fail(ctx, CN_E_ARG, "cn_checkpoint_optim: NULL argument");
    const cn_st *f = ck->file;
    const char *path = cn_st_path(f);
    cn_optim_kind want = cn_optim_get_config(opt)->kind, kind;
    const char *name = cn_st_meta(f, "optimizer"), *steps_text = cn_st_meta(f, "optimizer_steps");
    int64_t steps;
    if (!name) return bad(ctx, CN_E_ARG, path, "holds no optimizer state");
    if (!steps_text) return bad(ctx, CN_E_FORMAT, path, "no \"optimizer_steps\" in __metadata__");
    if (!parse_count(steps_text, &steps))
        return bad(ctx, CN_E_FORMAT, path, "optimizer_steps '%.40s' is not a whole number", steps_text);
    cn_net *net = NULL;
    const cn_st_tensor **found = NULL;
    char *key = NULL;
    int n_states;
    cn_status st = restore_net(ctx, ck, &net, &kind, &n_states);
    if (st) return st;
    if (kind != want) {
        st = bad(ctx, CN_E_ARG, path, "holds %s state; the optimizer is %s", cn_optim_kind_name(kind),
                 cn_optim_kind_name(want));
        goto done;
    }
    int64_t count, trainable;
    cn_net_params(net, &trainable, NULL);
    cn_optim_state(opt, &count);
    if (count != trainable * n_states) {
        st = bad(ctx, CN_E_ARG, path, "the optimizer was made for another net (%lld state values, the checkpoint's "
                 "net needs %lld)", (long long)count, (long long)(trainable * n_states));
        goto done;
    }
    /* restore_net found every state tensor with its shape; find them again, check them, then
     * copy, so that a failure leaves the optimizer as it was */
    int n = cn_optim_tensor_count(opt, net);
    cn_optim_state_tensor x;
    st = CN_E_NOMEM;
    if (!(found = cn_calloc(ctx, (size_t)n + 1, sizeof *found))) goto done;
    for (int i = 0; i < n; i++) {
        if ((st = cn_optim_tensor(ctx, opt, net, i, &x))) goto done;
        st = CN_E_NOMEM;
        if (!(key = state_name(ctx, x.param, x.state))) goto done;
        found[i] = cn_st_find(f, key);
        cn_free(ctx, key), key = NULL;
    }
    for (int i = 0; i < n; i++)
        if (found[i] && (st = check_finite(ctx, f, found[i]))) goto done;
    for (int i = 0; i < n; i++)
        if (found[i] && cn_optim_tensor(ctx, opt, net, i, &x) == CN_OK)
            memcpy(x.data, found[i]->bytes, (size_t)found[i]->count * sizeof(float));
    cn_optim_set_steps(opt, steps);
    st = CN_OK;
done:
    cn_free(ctx, found);
    cn_free(ctx, key);
    cn_net_destroy(net);
    return st;
}
