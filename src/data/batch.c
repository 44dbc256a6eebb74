/* batch.c — shuffling, per-channel statistics and batches with augmentation.
 * Covered by tests/test_batch.c.
 *
 * cn_make_batch follows torchvision's usual training pipeline, RandomCrop(size, padding=pad)
 * and RandomHorizontalFlip() on the raw image, then Normalize(mean, std): the image is padded
 * with raw zeros, cropped, flipped, and only then normalised, so a padded pixel becomes
 * (0 - mean) / std, not 0. The draws, in sample order and only for what is enabled: the crop's
 * row offset cn_rng_below(2*pad+1), its column offset likewise, then the flip cn_rng_below(2)
 * (1 = flip). With pad = 0 and flip = 0 nothing is drawn (rng may be NULL) and the batch is
 * exactly the normalised images. A std of 0 (a constant channel) divides by 1 instead. */
#include <math.h>
#include <string.h>

#include "../core/core_impl.h"
#include "batch_draw.h"
#include "data_impl.h"

void cn_shuffle(cn_rng *rng, int64_t *perm, int64_t n)
{
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    /* Fisher-Yates: position i takes a uniform pick from the i+1 not yet placed */
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)cn_rng_below(rng, (uint64_t)i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
}

/* a channel's std as the normalisation divides by it: 1 for a channel that does not vary */
static float usable_std(double sq, double n)
{
    double s = n > 0 ? sqrt(sq / n) : 0.0;
    return s < CN_NORM_STD_MIN ? 1.0f : (float)s;
}

/* mean = sum x / N; std = sqrt(sum (x - mean)^2 / N), two passes in double */
void cn_dataset_stats(const cn_dataset *ds, float *mean, float *std)
{
    int64_t plane = ds->h * ds->w, n = ds->count * plane;
    if (!ds->images) { /* decoded on demand: cn_dataset_stats_part reads them, with a context */
        for (int64_t c = 0; c < ds->c; c++) mean[c] = 0, std[c] = 1;
        return;
    }
    for (int64_t c = 0; c < ds->c; c++) {
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < ds->count; i++) {
            const float *p = ds->images + (i * ds->c + c) * plane;
            for (int64_t j = 0; j < plane; j++) sum += p[j];
        }
        double m = n > 0 ? sum / (double)n : 0;
        for (int64_t i = 0; i < ds->count; i++) {
            const float *p = ds->images + (i * ds->c + c) * plane;
            for (int64_t j = 0; j < plane; j++) sq += ((double)p[j] - m) * ((double)p[j] - m);
        }
        mean[c] = (float)m;
        std[c] = usable_std(sq, (double)n);
    }
}

void cn_make_batch(const cn_dataset *ds, const int64_t *idx, int64_t n, const float *mean, const float *std,
                   int64_t pad, int flip, cn_rng *rng, float *x, int32_t *labels)
{
    cn_ctx quiet; /* the images are in memory: nothing can fail */
    memset(&quiet, 0, sizeof quiet);
    cn_make_batch_rows(&quiet, ds, idx, n, 0, n, mean, std, pad, flip, rng, x, labels);
}

/* image i of ds: in memory, or converted from the IDX bytes or decoded from its file into buf */
static cn_status image_of(cn_ctx *ctx, const cn_dataset *ds, int64_t i, float *buf, const float **out)
{
    int64_t per = ds->c * ds->h * ds->w;
    if (ds->images) {
        *out = ds->images + i * per;
        return CN_OK;
    }
    *out = buf;
    if (ds->pixels) {
        for (int64_t j = 0; j < per; j++) buf[j] = (float)ds->pixels[i * per + j] / 255.0f; /* as the loader */
        return CN_OK;
    }
    return cn_image_load(ctx, ds->paths[i], ds->c, ds->h, ds->w, buf);
}

static cn_batch_draw draw_one(cn_rng *rng, int64_t index, int64_t pad, int flip)
{
    cn_batch_draw d = { index, (int32_t)pad, (int32_t)pad, 0, 0 }; /* pad, pad: the original image */
    if (pad > 0) {
        d.dy = (int32_t)cn_rng_below(rng, (uint64_t)(2 * pad + 1));
        d.dx = (int32_t)cn_rng_below(rng, (uint64_t)(2 * pad + 1));
    }
    if (flip) d.mirror = cn_rng_below(rng, 2) == 1;
    return d;
}

void cn_batch_draws(cn_rng *rng, const int64_t *idx, int64_t n, int64_t pad, int flip, cn_batch_draw *out)
{
    for (int64_t i = 0; i < n; i++) out[i] = draw_one(rng, idx[i], pad < 0 ? 0 : pad, flip);
}

/* The views of test-time augmentation, each (mirrored, row shift, column shift), the image itself
 * first: CN_TTA_FLIP takes the first two, CN_TTA_FLIP_SHIFT all ten (the image and its four
 * shifts by a pixel, zero-padded as --crop pads, each also mirrored). */
static const int tta_views[10][3] = { { 0, 0, 0 }, { 1, 0, 0 },  { 0, -1, 0 }, { 0, 1, 0 }, { 0, 0, -1 },
                                      { 0, 0, 1 }, { 1, -1, 0 }, { 1, 1, 0 },  { 1, 0, -1 }, { 1, 0, 1 } };

int cn_tta_count(cn_tta tta)
{
    return tta == CN_TTA_FLIP_SHIFT ? 10 : tta == CN_TTA_FLIP ? 2 : tta == CN_TTA_NONE ? 1 : 0;
}

cn_batch_draw cn_tta_draw(int v, int64_t index)
{
    /* (1, 1) is the image in its one-pixel padding */
    return (cn_batch_draw){ index, 1 + tta_views[v][1], 1 + tta_views[v][2], tta_views[v][0], 0 };
}

/* the batch row of draw d of the image src into dst (c x h x w) */
static void write_row(const cn_dataset *ds, const cn_batch_draw *d, int64_t pad, const float *mean, const float *std,
                      const float *src, float *dst)
{
    int64_t C = ds->c, H = ds->h, W = ds->w, plane = H * W;
    for (int64_t c = 0; c < C; c++) {
        float m = mean[c], s = std[c] != 0 ? std[c] : 1.0f;
        for (int64_t y = 0; y < H; y++)
            for (int64_t xo = 0; xo < W; xo++)
                dst[c * plane + y * W + xo] = cn_batch_value(src + c * plane, NULL, H, W, pad, d, y, xo, m, s);
    }
}

/* the same of the image d names; buf: room for an image not in memory */
static cn_status make_row(cn_ctx *ctx, const cn_dataset *ds, const cn_batch_draw *d, int64_t pad, const float *mean,
                          const float *std, float *buf, float *dst)
{
    const float *src;
    cn_status st = image_of(ctx, ds, d->index, buf, &src);
    if (!st) write_row(ds, d, pad, mean, std, src, dst);
    return st;
}

cn_status cn_make_batch_rows(cn_ctx *ctx, const cn_dataset *ds, const int64_t *idx, int64_t n, int64_t lo, int64_t hi,
                             const float *mean, const float *std, int64_t pad, int flip, cn_rng *rng, float *x,
                             int32_t *labels)
{
    int64_t per = ds->c * ds->h * ds->w;
    if (pad < 0) pad = 0;
    /* files: this process's rows decoded first, on the threads (block); other images one by one */
    float *block = ds->paths && hi > lo ? cn_malloc(ctx, (size_t)((hi - lo) * per) * sizeof(float)) : NULL;
    float *buf = ds->images || ds->paths ? NULL : cn_malloc(ctx, (size_t)per * sizeof(float));
    if ((ds->paths && hi > lo && !block) || (!ds->images && !ds->paths && !buf)) return CN_E_NOMEM;
    cn_status st = block ? cn_load_files(ctx, ds->paths, idx + lo, hi - lo, ds->c, ds->h, ds->w, block, NULL) : CN_OK;
    for (int64_t i = 0; i < n; i++) {
        cn_batch_draw d = draw_one(rng, idx[i], pad, flip);
        if (i < lo || i >= hi || st) continue; /* another process's row (or a failed batch): its draws only */
        if (block) write_row(ds, &d, pad, mean, std, block + (i - lo) * per, x + (i - lo) * per);
        else if ((st = make_row(ctx, ds, &d, pad, mean, std, buf, x + (i - lo) * per))) continue;
        if (labels) labels[i - lo] = ds->labels[idx[i]];
    }
    cn_free(ctx, block);
    cn_free(ctx, buf);
    return st;
}

cn_status cn_make_batch_drawn(cn_ctx *ctx, const cn_dataset *ds, const cn_batch_draw *draws, int64_t n, int64_t pad,
                              const float *mean, const float *std, float *x)
{
    int64_t per = ds->c * ds->h * ds->w;
    float *buf = ds->images ? NULL : cn_malloc(ctx, (size_t)per * sizeof(float));
    if (!ds->images && !buf) return CN_E_NOMEM;
    cn_status st = CN_OK;
    for (int64_t i = 0; i < n && !st; i++) st = make_row(ctx, ds, &draws[i], pad, mean, std, buf, x + i * per);
    cn_free(ctx, buf);
    return st;
}

cn_status cn_dataset_stats_part(cn_ctx *ctx, const cn_dataset *ds, int64_t first, int64_t count, double part[12])
{
    int64_t plane = ds->h * ds->w, per = ds->c * plane;
    memset(part, 0, 12 * sizeof(double));
    float *block = ds->images ? NULL : cn_malloc(ctx, (size_t)((count ? count : 1) * per) * sizeof(float));
    if (!ds->images && !block) return CN_E_NOMEM;
    cn_status st = ds->paths ? cn_load_files(ctx, ds->paths + first, NULL, count, ds->c, ds->h, ds->w, block, NULL)
                             : CN_OK; /* on the threads */
    for (int64_t i = 0; !ds->paths && block && !st && i < count; i++) {
        const float *img;
        st = image_of(ctx, ds, first + i, block + i * per, &img);
    }
    if (st) {
        cn_free(ctx, block);
        return st;
    }
    const float *img = block ? block : ds->images + first * per;
    for (int64_t c = 0; c < ds->c && c < 4; c++) {
        double sum = 0, sq = 0, n = (double)(count * plane);
        for (int64_t i = 0; i < count; i++)
            for (int64_t j = 0; j < plane; j++) sum += img[i * per + c * plane + j];
        double m = n > 0 ? sum / n : 0;
        for (int64_t i = 0; i < count; i++)
            for (int64_t j = 0; j < plane; j++) {
                double d = (double)img[i * per + c * plane + j] - m;
                sq += d * d;
            }
        part[c] = n, part[4 + c] = m, part[8 + c] = sq;
    }
    cn_free(ctx, block);
    return CN_OK;
}

void cn_dataset_stats_merge(const double *parts, int64_t n_parts, int64_t channels, float *mean, float *std)
{
    for (int64_t c = 0; c < channels && c < 4; c++) {
        double n = 0, m = 0, sq = 0; /* Chan, Golub and LeVeque's pairwise update, part by part */
        for (int64_t k = 0; k < n_parts; k++) {
            const double *p = parts + 12 * k;
            double pn = p[c], total = n + pn, delta = p[4 + c] - m;
            if (total > 0) m += delta * pn / total, sq += p[8 + c] + delta * delta * n * pn / total;
            n = total;
        }
        mean[c] = (float)m;
        std[c] = usable_std(sq, n);
    }
}
