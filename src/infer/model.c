/* model.c — the inference API (convnet.h, "inference"): a checkpoint made ready to classify
 * images from a file, PNG/JPEG bytes or pixels in memory, as `convnet predict` (built on it) does;
 * with test-time augmentation, the outputs averaged over views of each input (cn_model_set_tta).
 * The layer above io (checkpoints) and data (decoding, resizing); reaches them through the public
 * API and the decoders of data_impl.h. Covered by tests/test_model.c (values worked out by hand,
 * the views too, batches, separate models in threads) and tests/install_test.sh
 * (examples/classify.c beside `convnet predict`). */
#include <stdio.h>
#include <string.h>

#include "../data/batch_draw.h"
#include "../data/data_impl.h"

struct cn_model {
    cn_allocator alloc;    /* the loading context's, for cn_model_destroy */
    cn_checkpoint *ck;
    cn_net *net;
    int64_t c, h, w;       /* the input */
    int64_t classes;       /* outputs per image */
    int softmaxed;         /* the net ends in softmax: its output is the probabilities */
    int map;               /* its output is a map (a U-Net's): no classes to classify */
    cn_tta tta;            /* the views whose outputs are averaged (cn_model_set_tta) */
    cn_resize resize;      /* as its training images were resized (cn_checkpoint_resize) */
    float mean[4], std[4];
    char **names;          /* classes names: class_names' lines, else the numbers */
    float *x;              /* one image's input, for the classify calls */
    float *probs;          /* one image's probabilities, for the classify calls */
};

void cn_model_destroy(cn_model *m)
{
    if (!m) return;
    cn_ctx tmp = { .alloc = m->alloc };
    for (int64_t i = 0; m->names && i < m->classes; i++) cn_free(&tmp, m->names[i]);
    cn_free(&tmp, m->names);
    cn_free(&tmp, m->x);
    cn_free(&tmp, m->probs);
    cn_net_destroy(m->net);
    cn_checkpoint_destroy(m->ck);
    cn_free(&tmp, m);
}

/* names[k]: line k of the checkpoint's class_names when it has one, else k's digits */
static cn_status load_names(cn_ctx *ctx, cn_model *m)
{
    if (!(m->names = cn_calloc(ctx, (size_t)m->classes, sizeof *m->names))) return CN_E_NOMEM;
    const char *s = cn_checkpoint_meta(m->ck, "class_names");
    for (int64_t k = 0; k < m->classes; k++) {
        if (s && *s) {
            size_t len = strcspn(s, "\n");
            m->names[k] = cn_strndup(ctx, s, len);
            s += len + (s[len] == '\n');
        } else {
            char digits[24];
            snprintf(digits, sizeof digits, "%lld", (long long)k);
            m->names[k] = cn_strdup(ctx, digits);
        }
        if (!m->names[k]) return CN_E_NOMEM;
    }
    return CN_OK;
}

cn_status cn_model_load(cn_ctx *ctx, const char *path, cn_model **out)
{
    if (!ctx) return CN_E_ARG;
    if (!out || !path) return cn_fail(ctx, CN_E_ARG, "cn_model_load: NULL %s", out ? "path" : "output");
    *out = NULL;
    cn_model *m = cn_calloc(ctx, 1, sizeof *m);
    if (!m) return CN_E_NOMEM;
    m->alloc = ctx->alloc;
    cn_status st;
    cn_layer_info in, last;
    if ((st = cn_checkpoint_read(ctx, path, &m->ck)) || (st = cn_checkpoint_net(ctx, m->ck, &m->net)) ||
        (st = cn_checkpoint_norm(ctx, m->ck, m->mean, m->std)) || (st = cn_net_layer(ctx, m->net, 0, 1, &in)) ||
        (st = cn_net_layer(ctx, m->net, cn_net_layer_count(m->net) - 1, 1, &last)))
        goto fail;
    m->c = in.c, m->h = in.h, m->w = in.w;
    m->resize = cn_checkpoint_resize(m->ck);
    m->classes = last.c * last.h * last.w;
    m->softmaxed = !strcmp(last.type, "softmax");
    m->map = last.h * last.w != 1;
    /* a map's values are no classes: no names, no probabilities (a name a value of a 2800x2800
     * map cost 3 GB before the map was refused) */
    if ((!m->map && (st = load_names(ctx, m))) || (st = cn_net_hold_params(ctx, m->net, 1))) goto fail;
    if (!(m->x = cn_calloc(ctx, (size_t)(m->c * m->h * m->w), sizeof(float))) ||
        (!m->map && !(m->probs = cn_calloc(ctx, (size_t)m->classes, sizeof(float))))) {
        st = cn_ctx_status(ctx); /* out of memory, or a size that overflows */
        goto fail;
    }
    *out = m;
    return CN_OK;
fail:
    cn_model_destroy(m);
    return st;
}

void cn_model_input_shape(const cn_model *m, int64_t *c, int64_t *h, int64_t *w)
{
    if (c) *c = m ? m->c : 0;
    if (h) *h = m ? m->h : 0;
    if (w) *w = m ? m->w : 0;
}

int32_t cn_model_classes(const cn_model *m) { return m ? (int32_t)m->classes : 0; }

const char *cn_model_class_name(const cn_model *m, int32_t k)
{
    return m && m->names && k >= 0 && k < m->classes ? m->names[k] : NULL;
}

void cn_model_norm(const cn_model *m, float mean[4], float std[4])
{
    for (int i = 0; i < 4; i++) {
        if (mean) mean[i] = m ? m->mean[i] : 0;
        if (std) std[i] = m ? m->std[i] : 1;
    }
}

cn_net *cn_model_net(const cn_model *m) { return m ? m->net : NULL; }
const cn_checkpoint *cn_model_checkpoint(const cn_model *m) { return m ? m->ck : NULL; }

/* x (c, h, w) in [0, 1] -> (x - mean[c]) / std[c], as the training batches were made */
static void normalise(const cn_model *m, float *x)
{
    int64_t hw = m->h * m->w;
    for (int64_t j = 0; j < m->c * hw; j++) x[j] = (x[j] - m->mean[j / hw]) / m->std[j / hw];
}

/* x <- the decoded image px made the net's input (resized as the net was trained, converted,
 * normalised); px freed */
static cn_status input_of_pixels(cn_ctx *ctx, const cn_model *m, cn_pixels *px, float *x)
{
    cn_status st = cn_pixels_resize(ctx, px, m->resize, m->c, m->h, m->w, x);
    cn_pixels_free(ctx, px);
    if (!st) normalise(m, x);
    return st;
}

cn_status cn_model_input_file(cn_ctx *ctx, const cn_model *m, const char *path, float *x)
{
    if (!ctx) return CN_E_ARG;
    if (!m || !path || !x) return cn_fail(ctx, CN_E_ARG, "cn_model_input_file: NULL argument");
    return cn_model_input_file_info(ctx, m, path, x, NULL, NULL, NULL);
}

cn_status cn_model_input_file_info(cn_ctx *ctx, const cn_model *m, const char *path, float *x, int64_t *c, int64_t *h,
                                   int64_t *w)
{
    if (c) *c = 0;
    if (h) *h = 0;
    if (w) *w = 0;
    if (!ctx) return CN_E_ARG;
    if (!m || !path || !x) return cn_fail(ctx, CN_E_ARG, "cn_model_input_file_info: NULL argument");
    cn_pixels px;
    int draft = m->resize == CN_RESIZE_DRAFT; /* cn_image_load's steps, the file's size kept */
    cn_status st = cn_pixels_decode_for(ctx, path, draft ? m->h : 0, draft ? m->w : 0, &px);
    if (st) return st;
    if (c) *c = px.channels;
    if (h) *h = px.file_h;
    if (w) *w = px.file_w;
    return input_of_pixels(ctx, m, &px, x);
}

typedef struct file_inputs {
    const cn_model *m;
    const char *const *paths;
    float *x;
    int64_t *src;
    cn_status *status;
} file_inputs;

static cn_status input_one(cn_ctx *tc, int64_t i, void *arg)
{
    file_inputs *f = arg;
    int64_t *s = f->src ? f->src + 3 * i : NULL, chw = f->m->c * f->m->h * f->m->w;
    cn_status st = cn_model_input_file_info(tc, f->m, f->paths[i], f->x + i * chw, s, s ? s + 1 : NULL, s ? s + 2 : NULL);
    f->status[i] = st;
    return st;
}

cn_status cn_model_input_files(cn_ctx *ctx, const cn_model *m, const char *const *paths, int64_t n, float *x,
                               int64_t *src, cn_status *status)
{
    if (!ctx) return CN_E_ARG;
    if (!m || !paths || !x || !status || n < 0) return cn_fail(ctx, CN_E_ARG, "cn_model_input_files: NULL argument or n < 0");
    file_inputs f = { m, paths, x, src, status };
    for (int64_t i = 0; i < n; i++) status[i] = CN_E_ARG; /* until tried */
    cn_status st = cn_for_each_file(ctx, n, input_one, &f);
    if (!st) cn_ctx_clear(ctx); /* on one thread the files' failures were ctx's: they are status[] */
    return st;
}

cn_status cn_model_input_encoded(cn_ctx *ctx, const cn_model *m, const void *data, size_t size, const char *name,
                                 float *x)
{
    if (!ctx) return CN_E_ARG;
    if (!m || (!data && size) || !x) return cn_fail(ctx, CN_E_ARG, "cn_model_input_encoded: NULL argument");
    cn_pixels px;
    int draft = m->resize == CN_RESIZE_DRAFT; /* as a file's (cn_model_input_file_info) */
    cn_status st = cn_pixels_decode_memory_for(ctx, data, size, name ? name : "image", draft ? m->h : 0,
                                               draft ? m->w : 0, &px);
    if (st) return st;
    return input_of_pixels(ctx, m, &px, x);
}

cn_status cn_model_input_pixels(cn_ctx *ctx, const cn_model *m, const cn_image_view *img, float *x)
{
    if (!ctx) return CN_E_ARG;
    if (!m || !x) return cn_fail(ctx, CN_E_ARG, "cn_model_input_pixels: NULL argument");
    cn_status st = cn_image_view_check(ctx, "cn_model_input_pixels", img);
    if (!st) st = cn_image_view_resize(ctx, img, m->resize, m->c, m->h, m->w, x);
    if (!st) normalise(m, x);
    return st;
}

cn_status cn_model_set_tta(cn_ctx *ctx, cn_model *m, cn_tta tta)
{
    if (!ctx) return CN_E_ARG;
    if (!m) return cn_fail(ctx, CN_E_ARG, "cn_model_set_tta: NULL model");
    if (!cn_tta_count(tta))
        return cn_fail(ctx, CN_E_ARG, "cn_model_set_tta: unknown test-time augmentation %d", (int)tta);
    m->tta = tta;
    return CN_OK;
}

/* view v (cn_tta_draw) of n normalised inputs x into xv: a padded cell gets a 0 pixel's value */
static void make_view(const cn_model *m, const float *x, int64_t n, int v, float *xv)
{
    int64_t hw = m->h * m->w;
    cn_batch_draw d = cn_tta_draw(v, 0);
    for (int64_t p = 0; p < n * m->c; p++) { /* p: image p / c, channel p % c */
        int64_t c = p % m->c;
        float pad = -m->mean[c] / m->std[c];
        for (int64_t y = 0; y < m->h; y++)
            for (int64_t xo = 0; xo < m->w; xo++) {
                int64_t at = cn_batch_origin(m->h, m->w, 1, &d, y, xo);
                xv[p * hw + y * m->w + xo] = at < 0 ? pad : x[p * hw + at];
            }
    }
}

/* sum (n, classes) <- the net's outputs summed over the views of x after the first (whose
 * outputs sum already holds); xv: room for n inputs */
static cn_status add_views(cn_ctx *ctx, cn_model *m, const float *x, int64_t n, float *xv, float *sum)
{
    for (int v = 1; v < cn_tta_count(m->tta); v++) {
        make_view(m, x, n, v, xv);
        cn_status st = cn_net_forward(ctx, m->net, xv, n, 0);
        if (st) return st;
        const float *y = cn_net_output(m->net, NULL);
        for (int64_t i = 0; i < n * m->classes; i++) sum[i] += y[i];
    }
    return CN_OK;
}

cn_status cn_model_probabilities(cn_ctx *ctx, cn_model *m, const float *x, int64_t n, float *probs)
{
    if (!ctx) return CN_E_ARG;
    cn_status st = m && m->map ? cn_net_check_classes(ctx, m->net, 0) : CN_OK; /* says why a map is refused */
    if (st) return st;
    if (!m || !x || !probs) return cn_fail(ctx, CN_E_ARG, "cn_model_probabilities: NULL argument");
    if (n < 1) return cn_fail(ctx, CN_E_ARG, "cn_model_probabilities: %lld images", (long long)n);
    int views = cn_tta_count(m->tta);
    int64_t in_count, out_count;
    if (!cn_mul_ok(n, m->c * m->h * m->w, &in_count) || !cn_mul_ok(n, m->classes, &out_count))
        return cn_fail(ctx, CN_E_ARG, "cn_model_probabilities: %lld images are too many", (long long)n);
    float *sum = NULL, *xv = NULL;
    if (views > 1 && (!(sum = cn_calloc(ctx, (size_t)out_count, sizeof(float))) ||
                      !(xv = cn_calloc(ctx, (size_t)in_count, sizeof(float))))) {
        cn_free(ctx, sum);
        return cn_ctx_status(ctx);
    }
    st = cn_net_forward(ctx, m->net, x, n, 0);
    const float *y = st ? NULL : cn_net_output(m->net, NULL);
    if (y && sum) {
        memcpy(sum, y, (size_t)out_count * sizeof(float));
        if (!(st = add_views(ctx, m, x, n, xv, sum)))
            for (int64_t i = 0; i < out_count; i++) sum[i] /= (float)views;
        y = sum;
    }
    for (int64_t i = 0; !st && i < n; i++) {
        if (m->softmaxed) memcpy(probs + i * m->classes, y + i * m->classes, (size_t)m->classes * sizeof(float));
        else cn_softmax(y + i * m->classes, probs + i * m->classes, m->classes);
    }
    cn_free(ctx, xv);
    cn_free(ctx, sum);
    return st;
}

void cn_model_top(const cn_model *m, const float *probs, int k, cn_prediction *out)
{
    for (int t = 0; t < k; t++) {
        int64_t best = -1;
        /* the t-th: after the one before in the order (probability down, index up); NaN never */
        for (int64_t c = 0; c < m->classes; c++) {
            int after = t == 0 || probs[c] < out[t - 1].probability ||
                        (probs[c] == out[t - 1].probability && c > out[t - 1].index);
            after = after && probs[c] >= 0;
            if (after && (best < 0 || probs[c] > probs[best])) best = c;
        }
        out[t] = best < 0 ? (cn_prediction){ -1, NULL, 0 }
                          : (cn_prediction){ (int32_t)best, m->names ? m->names[best] : NULL, probs[best] };
    }
}

/* the top k of the input in m->x, whatever made it */
static cn_status classify_input(cn_ctx *ctx, cn_model *m, int k, cn_prediction *out)
{
    cn_status st = cn_model_probabilities(ctx, m, m->x, 1, m->probs);
    if (!st) cn_model_top(m, m->probs, k, out);
    return st;
}

static cn_status check_top(cn_ctx *ctx, const char *call, const cn_model *m, int k, const cn_prediction *out)
{
    if (!ctx) return CN_E_ARG;
    if (!m || !out) return cn_fail(ctx, CN_E_ARG, "%s: NULL argument", call);
    if (k < 1) return cn_fail(ctx, CN_E_ARG, "%s: k is %d (1 or more classes)", call, k);
    return CN_OK;
}

cn_status cn_model_classify_file(cn_ctx *ctx, cn_model *m, const char *path, int k, cn_prediction *out)
{
    cn_status st = check_top(ctx, "cn_model_classify_file", m, k, out);
    if (!st) st = cn_model_input_file(ctx, m, path, m->x);
    return st ? st : classify_input(ctx, m, k, out);
}

cn_status cn_model_classify_encoded(cn_ctx *ctx, cn_model *m, const void *data, size_t size, const char *name, int k,
                                    cn_prediction *out)
{
    cn_status st = check_top(ctx, "cn_model_classify_encoded", m, k, out);
    if (!st) st = cn_model_input_encoded(ctx, m, data, size, name, m->x);
    return st ? st : classify_input(ctx, m, k, out);
}

cn_status cn_model_classify_pixels(cn_ctx *ctx, cn_model *m, const cn_image_view *img, int k, cn_prediction *out)
{
    cn_status st = check_top(ctx, "cn_model_classify_pixels", m, k, out);
    if (!st) st = cn_model_input_pixels(ctx, m, img, m->x);
    return st ? st : classify_input(ctx, m, k, out);
}

cn_status cn_model_classify_batch(cn_ctx *ctx, cn_model *m, const cn_image_view *imgs, int64_t n, int k,
                                  cn_prediction *out)
{
    cn_status st = check_top(ctx, "cn_model_classify_batch", m, k, out);
    if (st) return st;
    if (!imgs || n < 1) return cn_fail(ctx, CN_E_ARG, "cn_model_classify_batch: %s", imgs ? "no images" : "NULL images");
    int64_t chw = m->c * m->h * m->w, chunk = n < CN_MODEL_BATCH ? n : CN_MODEL_BATCH;
    float *x = cn_calloc(ctx, (size_t)(chunk * chw), sizeof(float));
    float *probs = x ? cn_calloc(ctx, (size_t)(chunk * m->classes), sizeof(float)) : NULL;
    if (!probs) {
        cn_free(ctx, x);
        return cn_ctx_status(ctx);
    }
    for (int64_t at = 0; !st && at < n; at += chunk) {
        int64_t count = n - at < chunk ? n - at : chunk;
        for (int64_t i = 0; !st && i < count; i++) {
            char what[64];
            snprintf(what, sizeof what, "image %lld", (long long)(at + i));
            if (!(st = cn_image_view_check(ctx, what, &imgs[at + i])) &&
                !(st = cn_image_view_resize(ctx, &imgs[at + i], m->resize, m->c, m->h, m->w, x + i * chw)))
                normalise(m, x + i * chw);
        }
        if (!st) st = cn_model_probabilities(ctx, m, x, count, probs);
        for (int64_t i = 0; !st && i < count; i++) cn_model_top(m, probs + i * m->classes, k, out + (at + i) * k);
    }
    cn_free(ctx, probs);
    cn_free(ctx, x);
    return st;
}
