/* ops.c — the CUDA kernel table's rows for the ops our own kernels compute (kernels.cu):
 * activations (prelu's learned slopes too), pooling (adaptive too), softmax, batch norm, layer,
 * group and instance norm, dropout, flatten, concat, add and mul, pad, crop and upsample,
 * shuffle and channels. Each reads its node's geometry as the reference kernel does and
 * launches on the backend's stream; input gradients honour cn_op_io.dx_fresh (store instead of
 * add). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../ops/aux_impl.h"
#include "../../ops/pool_ref.h"
#include "cuda_impl.h"

static int64_t count_of(const cn_op_io *io) { return io->n->out.c * io->n->out.h * io->n->out.w * io->batch; }
static int fresh_bit(const cn_op_io *io, int j) { return (io->dx_fresh >> j) & 1u; }

/* ---- activations ---- */

/* the kind's one parameter (act_forward's `param`): leakyrelu's slope, elu's alpha, gelu's form */
static double act_param(const cn_attrs *a, int kind)
{
    return kind == CN_CU_ELU ? a->alpha : kind == CN_CU_GELU ? a->approximate : a->slope;
}

static void act_forward(const cn_op_io *io, int kind)
{
    cn_cu_act x = cn_cu_x(io, 0), y = cn_cu_y(io);
    int64_t n = count_of(io);
    double param = act_param(&io->n->a, kind);
    void *args[] = { &kind, &x, &y, &n, &param };
    cn_cu_launch(CN_CU_K_act_forward, n, args);
}

static void act_backward(const cn_op_io *io, int kind)
{
    cn_cu_act x = cn_cu_x(io, 0), y = cn_cu_y(io), dy = cn_cu_dy(io), dx = cn_cu_dx(io, 0);
    int64_t n = count_of(io);
    double param = act_param(&io->n->a, kind);
    int fresh = fresh_bit(io, 0);
    void *args[] = { &kind, &x, &y, &dy, &dx, &n, &param, &fresh };
    if (dx.p) cn_cu_launch(CN_CU_K_act_backward, n, args);
}

#define ACT_ROW(op, kind)                                                                          \
    void cn_cuda_##op##_forward(const cn_op_io *io) { act_forward(io, kind); }                    \
    void cn_cuda_##op##_backward(const cn_op_io *io) { act_backward(io, kind); }
ACT_ROW(relu, CN_CU_RELU)
ACT_ROW(leakyrelu, CN_CU_LEAKY)
ACT_ROW(sigmoid, CN_CU_SIGMOID)
ACT_ROW(tanh, CN_CU_TANH)
ACT_ROW(relu6, CN_CU_RELU6)
ACT_ROW(hardsigmoid, CN_CU_HARDSIGMOID)
ACT_ROW(hardswish, CN_CU_HARDSWISH)
ACT_ROW(silu, CN_CU_SILU)
ACT_ROW(gelu, CN_CU_GELU)
ACT_ROW(elu, CN_CU_ELU)
#undef ACT_ROW

/* prelu and scale: a factor per channel, their weights (io->w, C values), its gradient io->dw
 * (always added) */
static int64_t plane_of(const cn_op_io *io) { return io->n->out.h * io->n->out.w; }

static void factor_forward(const cn_op_io *io, int prelu)
{
    cn_cu_act x = cn_cu_x(io, 0), y = cn_cu_y(io);
    const void *a = io->w;
    int64_t n = io->batch, c = io->n->out.c, hw = plane_of(io);
    void *args[] = { &x, &a, &y, &n, &c, &hw, &prelu };
    cn_cu_launch(CN_CU_K_factor_forward, n * c * hw, args);
}

static void factor_backward(const cn_op_io *io, int prelu)
{
    cn_cu_act x = cn_cu_x(io, 0), dy = cn_cu_dy(io), dx = cn_cu_dx(io, 0);
    const void *a = io->w;
    void *da = io->dw;
    int64_t n = io->batch, c = io->n->out.c, hw = plane_of(io);
    int fresh = fresh_bit(io, 0);
    void *args[] = { &x, &a, &dy, &dx, &da, &n, &c, &hw, &fresh, &prelu };
    cn_cu_launch_blocks(CN_CU_K_factor_backward, c, args);
}

void cn_cuda_prelu_forward(const cn_op_io *io) { factor_forward(io, 1); }
void cn_cuda_prelu_backward(const cn_op_io *io) { factor_backward(io, 1); }
void cn_cuda_scale_forward(const cn_op_io *io) { factor_forward(io, 0); }
void cn_cuda_scale_backward(const cn_op_io *io) { factor_backward(io, 0); }

/* ---- copies and sums: flatten, add, concat ---- */

/* dst = src, or dst + src, n values stored alike (kernels.cu's relayout, one place a value) */
static void copy_or_add(cn_cu_act src, cn_cu_act dst, int64_t n, int add)
{
    int64_t one = 1;
    void *args[] = { &src, &dst, &n, &one, &one, &add };
    cn_cu_launch(CN_CU_K_relayout, n, args);
}

/* dst (+)= src, both an (N, C, HW) map (flatten's input), each in its type and layout */
static void relayout(cn_cu_act src, cn_cu_act dst, const cn_node *map, int64_t n, int add)
{
    int64_t c = map->out.c, hw = map->out.h * map->out.w;
    void *args[] = { &src, &dst, &n, &c, &hw, &add };
    cn_cu_launch(CN_CU_K_relayout, n * c * hw, args);
}

/* flatten: the values in NCHW's order, from a map in either layout (an NHWC one is reordered) */
void cn_cuda_flatten_forward(const cn_op_io *io)
{
    cn_cu_act y = cn_cu_y(io);
    y.nhwc = 0; /* a vector: its order is NCHW's */
    relayout(cn_cu_x(io, 0), y, io->in[0], io->batch, 0);
}

void cn_cuda_flatten_backward(const cn_op_io *io)
{
    cn_cu_act dy = cn_cu_dy(io);
    dy.nhwc = 0;
    if (io->dx[0]) relayout(dy, cn_cu_dx(io, 0), io->in[0], io->batch, !fresh_bit(io, 0));
}

/* the plane size when input j is a 1x1 map broadcast over the output's planes (add's
 * broadcast), else 0; flatten, run as an add of one input, has the output's element count */
static int64_t spread_hw(const cn_op_io *io, int j)
{
    return cn_merge_spread(io->n, io->in[j]) ? io->n->out.h * io->n->out.w : 0;
}

/* y = x_0 + x_1 + ..., added in input order as the reference adds; a 1x1 input read once a
 * plane; relu: then relu(y), with the last input (a relu after the add in its pass) */
static void add_forward(const cn_op_io *io, int relu)
{
    int last = io->n->n_in - 1;
    for (int j = 0; j <= last; j++) {
        int64_t n = count_of(io), hw = spread_hw(io, j), c = io->n->out.c;
        cn_cu_act x = cn_cu_x(io, j), y = cn_cu_y(io);
        int add = j > 0, relu_here = relu && j == last;
        void *args[] = { &x, &y, &n, &c, &hw, &add, &relu_here };
        if (hw || relu_here) cn_cu_launch(CN_CU_K_spread_add, n, args);
        else copy_or_add(x, y, n, add);
    }
}

void cn_cuda_add_forward(const cn_op_io *io) { add_forward(io, 0); }
void cn_cuda_add_forward_relu(const cn_op_io *io) { add_forward(io, 1); }

/* dx_j (+)= dy for every input (flatten's one input too; an input twice adds twice); a 1x1
 * input gets the sums of its planes. relu_y: the output of a relu after the add, whose backward
 * this pass takes (cn_kernels.backward_relu_out: dy is the relu's output gradient) */
static void add_backward(const cn_op_io *io, cn_cu_act relu_y)
{
    for (int j = 0; j < io->n->n_in; j++) {
        if (!io->dx[j]) continue;
        int64_t n = count_of(io), hw = spread_hw(io, j), planes = hw ? n / hw : 0, c = io->n->out.c;
        cn_cu_act dy = cn_cu_dy(io), dx = cn_cu_dx(io, j);
        int add = !fresh_bit(io, j);
        if (!hw && !relu_y.p) {
            copy_or_add(dy, dx, n, add);
            continue;
        }
        void *args[] = { &dy, &relu_y, &dx, &n, &add };
        void *sargs[] = { &dy, &relu_y, &dx, &planes, &c, &hw, &add };
        if (hw) cn_cu_launch(CN_CU_K_plane_sum, planes, sargs);
        else cn_cu_launch(CN_CU_K_add_grad, n, args);
    }
}

void cn_cuda_add_backward(const cn_op_io *io) { add_backward(io, cn_cu_floats(NULL)); }
void cn_cuda_add_backward_relu(const cn_op_io *io) { add_backward(io, cn_cu_y(io)); }

/* mul: y = x_0 * x_1 * ..., in input order (up to CN_CU_MUL_MAX inputs: cuda_supports) */
static cn_cu_mul mul_inputs(const cn_op_io *io)
{
    cn_cu_mul m = { { { 0 } }, { 0 }, io->n->n_in, io->n->out.c, (io->half & CN_HALF_Y) != 0 };
    for (int j = 0; j < io->n->n_in && j < CN_CU_MUL_MAX; j++) {
        int64_t hw = spread_hw(io, j);
        m.x[j] = cn_cu_x(io, j), m.hw[j] = hw ? hw : 1;
    }
    return m;
}

void cn_cuda_mul_forward(const cn_op_io *io)
{
    cn_cu_mul m = mul_inputs(io);
    int64_t n = count_of(io);
    cn_cu_act y = cn_cu_y(io);
    void *args[] = { &m, &y, &n };
    cn_cu_launch(CN_CU_K_mul_forward, n, args);
}

/* dx_j (+)= dy times the other inputs, one input after another (an input twice: the second adds) */
void cn_cuda_mul_backward(const cn_op_io *io)
{
    cn_cu_mul m = mul_inputs(io);
    for (int j = 0; j < io->n->n_in; j++) {
        if (!io->dx[j]) continue;
        int64_t n = count_of(io);
        cn_cu_act dy = cn_cu_dy(io), dx = cn_cu_dx(io, j);
        int fresh = fresh_bit(io, j);
        void *args[] = { &m, &j, &dy, &dx, &n, &fresh };
        cn_cu_launch(CN_CU_K_mul_backward, n / m.hw[j], args);
    }
}

/* input j is a block of `block` values in every run of `ystride` of y, at offset off: per
 * sample in NCHW (its channels' planes), per pixel in NHWC (its channels) */
typedef struct concat_part { int64_t runs, block, ystride, off; } concat_part;
static concat_part concat_at(const cn_op_io *io, int j, int64_t off_c)
{
    int64_t hw = io->n->out.h * io->n->out.w, c = io->n->out.c, cj = io->in[j]->out.c;
    if (io->half & CN_HALF_Y) return (concat_part){ io->batch * hw, cj, c, off_c };
    return (concat_part){ io->batch, cj * hw, c * hw, off_c * hw };
}

void cn_cuda_concat_forward(const cn_op_io *io)
{
    int64_t off_c = 0;
    for (int j = 0; j < io->n->n_in; j++) {
        concat_part k = concat_at(io, j, off_c);
        cn_cu_act x = cn_cu_x(io, j), y = cn_cu_y(io);
        void *args[] = { &x, &y, &k.runs, &k.block, &k.ystride, &k.off };
        cn_cu_launch(CN_CU_K_concat_forward, k.runs * k.block, args);
        off_c += io->in[j]->out.c;
    }
}

void cn_cuda_concat_backward(const cn_op_io *io)
{
    int64_t off_c = 0;
    for (int j = 0; j < io->n->n_in; j++) {
        concat_part k = concat_at(io, j, off_c);
        cn_cu_act dy = cn_cu_dy(io), dx = cn_cu_dx(io, j);
        int fresh = fresh_bit(io, j);
        void *args[] = { &dy, &dx, &k.runs, &k.block, &k.ystride, &k.off, &fresh };
        if (dx.p) cn_cu_launch(CN_CU_K_concat_backward, k.runs * k.block, args);
        off_c += io->in[j]->out.c;
    }
}

/* ---- channels moved: shuffle, channels (kernels.cu; NCHW floats) ---- */

void cn_cuda_shuffle_forward(const cn_op_io *io)
{
    int64_t c = io->n->out.c, g = io->n->a.groups, hw = io->n->out.h * io->n->out.w, n = io->batch * c * hw;
    cn_cu_act x = cn_cu_x(io, 0), y = cn_cu_y(io);
    void *args[] = { &x, &y, &n, &c, &g, &hw };
    cn_cu_launch(CN_CU_K_shuffle_forward, n, args);
}

void cn_cuda_shuffle_backward(const cn_op_io *io)
{
    int64_t c = io->n->out.c, g = io->n->a.groups, hw = io->n->out.h * io->n->out.w, n = io->batch * c * hw;
    cn_cu_act dy = cn_cu_dy(io), dx = cn_cu_dx(io, 0);
    int fresh = fresh_bit(io, 0);
    void *args[] = { &dy, &dx, &n, &c, &g, &hw, &fresh };
    if (dx.p) cn_cu_launch(CN_CU_K_shuffle_backward, n, args);
}

/* the output, block values a sample, is channels first .. of the input's xstride */
void cn_cuda_channels_forward(const cn_op_io *io)
{
    int64_t hw = io->n->out.h * io->n->out.w, block = io->n->out.c * hw, xstride = io->in[0]->out.c * hw;
    int64_t off = io->n->a.first * hw, n = io->batch * block;
    cn_cu_act x = cn_cu_x(io, 0), y = cn_cu_y(io);
    void *args[] = { &x, &y, &n, &block, &xstride, &off };
    cn_cu_launch(CN_CU_K_channels_forward, n, args);
}

void cn_cuda_channels_backward(const cn_op_io *io)
{
    int64_t hw = io->n->out.h * io->n->out.w, block = io->n->out.c * hw, xstride = io->in[0]->out.c * hw;
    int64_t off = io->n->a.first * hw, n = io->batch * block;
    cn_cu_act dy = cn_cu_dy(io), dx = cn_cu_dx(io, 0);
    void *args[] = { &dy, &dx, &n, &block, &xstride, &off };
    if (dx.p) cn_cu_launch(CN_CU_K_channels_backward, n, args);
}

/* ---- pooling: the reference's geometry, argmax (int32 per output) in aux ---- */

static cn_cu_pool pool_geom(const cn_op_io *io, int global)
{
    return global ? cn_pool_geom_global(io->in[0], io->batch) : cn_pool_geom_of(io->n, io->in[0], io->batch);
}

/* relu: the pooling reads relu(x), a relu fused in front (cn_kernels.forward_relu_in) */
static void pool_forward(const cn_op_io *io, int kind, int global, int relu)
{
    cn_cu_pool g = pool_geom(io, global);
    cn_cu_act x = cn_cu_x(io, 0), y = cn_cu_y(io);
    void *argmax = kind == CN_CU_POOL_AVG ? NULL : io->aux;
    void *args[] = { &g, &kind, &x, &y, &argmax, &relu };
    cn_cu_launch(CN_CU_K_pool_forward, g.n * g.c * g.oh * g.ow, args);
}

/* relu: dx is the gradient of the fused relu's input x (cn_kernels.backward_relu_in), stored */
static void pool_backward(const cn_op_io *io, int kind, int global, int relu)
{
    cn_cu_pool g = pool_geom(io, global);
    cn_cu_act dy = cn_cu_dy(io), dx = cn_cu_dx(io, 0), relu_x = relu ? cn_cu_x(io, 0) : cn_cu_floats(NULL);
    const void *argmax = kind == CN_CU_POOL_AVG ? NULL : io->aux;
    int fresh = relu || fresh_bit(io, 0);
    void *args[] = { &g, &kind, &dy, &argmax, &dx, &fresh, &relu_x };
    if (dx.p) cn_cu_launch(CN_CU_K_pool_backward, g.n * g.c * g.h * g.w, args);
}

void cn_cuda_maxpool_forward(const cn_op_io *io) { pool_forward(io, CN_CU_POOL_MAX, 0, 0); }
void cn_cuda_maxpool_backward(const cn_op_io *io) { pool_backward(io, CN_CU_POOL_MAX, 0, 0); }
void cn_cuda_maxpool_relu_forward(const cn_op_io *io) { pool_forward(io, CN_CU_POOL_MAX, 0, 1); }
void cn_cuda_maxpool_relu_backward(const cn_op_io *io) { pool_backward(io, CN_CU_POOL_MAX, 0, 1); }
void cn_cuda_minpool_forward(const cn_op_io *io) { pool_forward(io, CN_CU_POOL_MIN, 0, 0); }
void cn_cuda_minpool_backward(const cn_op_io *io) { pool_backward(io, CN_CU_POOL_MIN, 0, 0); }
void cn_cuda_avgpool_forward(const cn_op_io *io) { pool_forward(io, CN_CU_POOL_AVG, 0, 0); }
void cn_cuda_avgpool_backward(const cn_op_io *io) { pool_backward(io, CN_CU_POOL_AVG, 0, 0); }
void cn_cuda_globalavgpool_forward(const cn_op_io *io) { pool_forward(io, CN_CU_POOL_AVG, 1, 0); }
void cn_cuda_globalavgpool_backward(const cn_op_io *io) { pool_backward(io, CN_CU_POOL_AVG, 1, 0); }
void cn_cuda_globalmaxpool_forward(const cn_op_io *io) { pool_forward(io, CN_CU_POOL_MAX, 1, 0); }
void cn_cuda_globalmaxpool_backward(const cn_op_io *io) { pool_backward(io, CN_CU_POOL_MAX, 1, 0); }

/* ---- maps of other maps' pixels: pad, crop, upsample, adaptiveavgpool ---- */

static cn_cu_maps maps_of(const cn_op_io *io, int64_t top, int64_t left, int64_t fill)
{
    const cn_dims *x = &io->in[0]->out, *o = &io->n->out;
    return (cn_cu_maps){ io->batch * o->c, o->c, x->h, x->w, o->h, o->w, top, left, fill };
}

static void maps_forward(const cn_op_io *io, int k, cn_cu_maps g)
{
    cn_cu_act x = cn_cu_x(io, 0), y = cn_cu_y(io);
    void *args[] = { &g, &x, &y };
    cn_cu_launch(k, g.planes * g.oh * g.ow, args);
}

static void maps_backward(const cn_op_io *io, int k, cn_cu_maps g)
{
    cn_cu_act dy = cn_cu_dy(io), dx = cn_cu_dx(io, 0);
    int fresh = fresh_bit(io, 0);
    void *args[] = { &g, &dy, &dx, &fresh };
    if (dx.p) cn_cu_launch(k, g.planes * g.h * g.w, args);
}

/* pad reads input (oy - top, ox - left) through its fill; crop the same at (oy + top, ox + left) */
static cn_cu_maps pad_maps(const cn_op_io *io) { return maps_of(io, io->n->pad_t, io->n->pad_l, io->n->a.mode); }
static cn_cu_maps crop_maps(const cn_op_io *io) { return maps_of(io, -io->n->pad_t, -io->n->pad_l, CN_FILL_ZERO); }
static cn_cu_maps upsample_maps(const cn_op_io *io)
{
    const cn_attrs *a = &io->n->a;
    return maps_of(io, 0, 0, a->mode == CN_UPSAMPLE_NEAREST ? CN_CU_NEAREST
                             : a->align_corners             ? CN_CU_BILINEAR_ALIGNED
                                                            : CN_CU_BILINEAR);
}

void cn_cuda_pad_forward(const cn_op_io *io) { maps_forward(io, CN_CU_K_remap_forward, pad_maps(io)); }
void cn_cuda_pad_backward(const cn_op_io *io) { maps_backward(io, CN_CU_K_remap_backward, pad_maps(io)); }
void cn_cuda_crop_forward(const cn_op_io *io) { maps_forward(io, CN_CU_K_remap_forward, crop_maps(io)); }
void cn_cuda_crop_backward(const cn_op_io *io) { maps_backward(io, CN_CU_K_remap_backward, crop_maps(io)); }
void cn_cuda_upsample_forward(const cn_op_io *io) { maps_forward(io, CN_CU_K_upsample_forward, upsample_maps(io)); }
void cn_cuda_upsample_backward(const cn_op_io *io) { maps_backward(io, CN_CU_K_upsample_backward, upsample_maps(io)); }
void cn_cuda_adaptiveavgpool_forward(const cn_op_io *io) { maps_forward(io, CN_CU_K_adaptive_forward, maps_of(io, 0, 0, 0)); }
void cn_cuda_adaptiveavgpool_backward(const cn_op_io *io) { maps_backward(io, CN_CU_K_adaptive_backward, maps_of(io, 0, 0, 0)); }

/* ---- softmax over channels ---- */

void cn_cuda_softmax_forward(const cn_op_io *io)
{
    int64_t n = io->batch, c = io->n->out.c, hw = io->n->out.h * io->n->out.w;
    const void *x = io->x[0];
    void *y = io->y;
    void *args[] = { &x, &y, &n, &c, &hw };
    cn_cu_launch(CN_CU_K_softmax_forward, n * hw, args);
}

void cn_cuda_softmax_backward(const cn_op_io *io)
{
    int64_t n = io->batch, c = io->n->out.c, hw = io->n->out.h * io->n->out.w;
    const void *y = io->y, *dy = io->dy;
    void *dx = io->dx[0];
    int fresh = fresh_bit(io, 0);
    void *args[] = { &y, &dy, &dx, &n, &c, &hw, &fresh };
    if (dx) cn_cu_launch(CN_CU_K_softmax_backward, n * hw, args);
}

/* ---- batch norm: a channel in runs (channel-major NCHW) or runs of pixels (NHWC) ---- */

/* A channel's values in runs, so that a kernel has blocks enough whatever the channel count
 * (batch norm's sums, the bias gradient): at least RUN values a run, at most MAX runs, from the
 * shape alone (so the sums' order is the same every run) */
static int64_t channel_runs(int64_t count)
{
    enum { RUN = 1024, MAX = 64 };
    int64_t k = count / RUN;
    return k < 1 ? 1 : k > MAX ? MAX : k;
}

/* The same for an NHWC map (nhwc_runs in kernels.cu): a block takes a run of pixels, every
 * channel of them, so the runs are cut by pixels, at least RUN values each, at most MAX */
static int64_t pixel_runs(int64_t pixels, int64_t c)
{
    enum { RUN = 8192, MAX = 512 };
    int64_t k = pixels * c / RUN;
    if (k > pixels) k = pixels;
    return k < 1 ? 1 : k > MAX ? MAX : k;
}

/* the runs of a map of n x c x hw in its layout */
static int64_t runs_of(int nhwc, int64_t n, int64_t c, int64_t hw) { return nhwc ? pixel_runs(n * hw, c) : channel_runs(n * hw); }

/* in doubles: the partial sums (2 c runs, in either layout), the per-channel values either pass
 * keeps for its element-wise part (3 c), a shard's whole-batch statistics copied over (3 c) */
int64_t cn_cuda_batchnorm_workspace(const cn_node *n, const cn_node *const *in, int64_t batch)
{
    (void)in;
    int64_t c = n->out.c, hw = n->out.h * n->out.w, a = runs_of(0, batch, c, hw), b = runs_of(1, batch, c, hw);
    return (2 * c * (a > b ? a : b) + 6 * c) * (int64_t)sizeof(double);
}

/* the workspace's regions (cn_cuda_batchnorm_workspace's): two runs of partial sums, the stat
 * and the whole-batch statistics of a shard's call, copied from the host (NULL without one) */
typedef struct bn_work {
    double *a, *b, *stat, *whole;
} bn_work;

static bn_work bn_work_of(const cn_op_io *io, int64_t c, int64_t chunks)
{
    double *w = io->work;
    bn_work r = { w, w + c * chunks, w + 2 * c * chunks, NULL };
    if (io->whole) {
        r.whole = r.stat + 3 * c;
        cn_cuda_memory.copy(r.whole, io->whole, (size_t)(3 * c) * sizeof(double));
    }
    return r;
}

/* the runs' sums of either pass into a and b (c x chunks each): forward of x minus the shift and
 * of its square (bn_sums); backward of dy and of dy * xh, dy masked by relu_y where given */
static void bn_runs(const cn_op_io *io, int backward, cn_cu_act relu_y, double *a, double *b, int64_t chunks)
{
    int64_t n = io->batch, c = io->n->out.c, hw = io->n->out.h * io->n->out.w;
    cn_cu_act x = cn_cu_x(io, 0), dy = cn_cu_dy(io);
    const void *aux = io->aux;
    void *fwd[] = { &x, &a, &b, &n, &c, &hw, &chunks }, *bwd[] = { &x, &dy, &relu_y, &aux, &a, &b, &n, &c, &hw, &chunks };
    if (x.nhwc) cn_cu_launch_blocks(backward ? CN_CU_K_bn_grad_sums_nhwc : CN_CU_K_bn_sums_nhwc, chunks, backward ? bwd : fwd);
    else cn_cu_launch_blocks(backward ? CN_CU_K_bn_grad_sums : CN_CU_K_bn_sums, c * chunks, backward ? bwd : fwd);
}

/* relu: a relu fused after it (cn_kernels.forward_relu_out), y being the relu's output */
static void batchnorm_forward(const cn_op_io *io, int relu)
{
    int64_t n = io->batch, c = io->n->out.c, hw = io->n->out.h * io->n->out.w, chunks = runs_of(io->half & 1u, n, c, hw);
    const float *gamma = io->n->a.affine ? io->w : NULL, *beta = gamma ? gamma + c : NULL; /* affine=no: none */
    float *rmean = io->buf, *rvar = rmean + c;
    cn_cu_act x = cn_cu_x(io, 0), y = cn_cu_y(io);
    void *aux = io->aux;
    bn_work k = bn_work_of(io, c, chunks);
    double *sums = k.a, *sq = k.b, *stat = k.stat, *whole = k.whole;
    int training = io->training != 0;
    double eps = io->n->a.eps, mom = io->n->a.momentum;
    if (training && !whole) bn_runs(io, 0, cn_cu_floats(NULL), sums, sq, chunks);
    const int *halt = cn_cu.halt;
    void *sargs[] = { &x, &sums, &sq, &whole, &stat, &rmean, &rvar, &aux, &n, &c, &hw, &chunks, &training, &eps, &mom, &halt };
    cn_cu_launch(CN_CU_K_bn_stats, c, sargs);
    void *args[] = { &x, &y, &gamma, &beta, &stat, &n, &c, &hw, &relu };
    cn_cu_launch(CN_CU_K_bn_apply, n * c * hw, args);
}

/* a shard's statistics (cn_kernels.stats, batchnorm.c's bn_stats): the same runs as the passes,
 * 3 c doubles read back through the workspace's stat (a wait: the host merges them next) */
void cn_cuda_batchnorm_stats(const cn_op_io *io, int backward, double *out)
{
    int64_t n = io->batch, c = io->n->out.c, hw = io->n->out.h * io->n->out.w, chunks = runs_of(io->half & 1u, n, c, hw);
    cn_cu_act x = cn_cu_x(io, 0);
    double *w = io->work, *a = w, *b = w + c * chunks, *stat = w + 2 * c * chunks;
    bn_runs(io, backward, cn_cu_floats(NULL), a, b, chunks);
    void *args[] = { &x, &a, &b, &backward, &stat, &n, &c, &hw, &chunks };
    cn_cu_launch(CN_CU_K_bn_shard_stats, c, args);
    cn_cuda_memory.copy(out, stat, (size_t)(3 * c) * sizeof(double));
    if (cn_cu_sync())
        for (int64_t i = 0; i < 3 * c; i++) out[i] = NAN; /* the failure is kept for the pass's check */
}

void cn_cuda_batchnorm_forward(const cn_op_io *io) { batchnorm_forward(io, 0); }
void cn_cuda_batchnorm_forward_relu(const cn_op_io *io) { batchnorm_forward(io, 1); }

/* relu_y: a relu after it, its backward folded in (cn_kernels.backward_relu_out): io->y and
 * io->dy are the relu's output and output gradient */
static void batchnorm_backward(const cn_op_io *io, cn_cu_act relu_y)
{
    int64_t n = io->batch, c = io->n->out.c, hw = io->n->out.h * io->n->out.w, chunks = runs_of(io->half & 1u, n, c, hw);
    cn_cu_act x = cn_cu_x(io, 0), dy = cn_cu_dy(io), dx = cn_cu_dx(io, 0);
    const void *gamma = io->n->a.affine ? io->w : NULL, *aux = io->aux;
    float *dgamma = gamma ? io->dw : NULL, *dbeta = dgamma ? dgamma + c : NULL;
    bn_work k = bn_work_of(io, c, chunks);
    double *s1 = k.a, *s2 = k.b, *stat = k.stat, *whole = k.whole;
    int fresh = fresh_bit(io, 0);
    bn_runs(io, 1, relu_y, s1, s2, chunks);
    void *sargs[] = { &s1, &s2, &whole, &gamma, &aux, &dgamma, &dbeta, &stat, &n, &c, &hw, &chunks };
    cn_cu_launch(CN_CU_K_bn_grad_stats, c, sargs);
    void *args[] = { &x, &dy, &relu_y, &aux, &stat, &dx, &n, &c, &hw, &fresh };
    if (dx.p) cn_cu_launch(CN_CU_K_bn_grad_apply, n * c * hw, args);
}

void cn_cuda_batchnorm_backward(const cn_op_io *io) { batchnorm_backward(io, cn_cu_floats(NULL)); }
void cn_cuda_batchnorm_backward_relu(const cn_op_io *io) { batchnorm_backward(io, cn_cu_y(io)); }

/* ---- layernorm, groupnorm, instancenorm: one block per (sample, group); layernorm is one
 * group whose scale and shift are per value, the others' per channel; layernorm over=channels
 * a thread per (sample, position) and its scales' gradients a block per channel ---- */

void cn_cuda_norm_forward(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    if (cn_norm_over_channels(nd)) {
        int64_t n = io->batch, c = nd->out.c, hw = nd->out.h * nd->out.w;
        cn_cu_act x = cn_cu_x(io, 0), y = cn_cu_y(io);
        const void *gamma = nd->a.affine ? io->w : NULL;
        void *aux = io->aux;
        double eps = nd->a.eps;
        void *args[] = { &x, &y, &gamma, &aux, &n, &c, &hw, &eps };
        cn_cu_launch(CN_CU_K_lnc_forward, n * hw, args);
        return;
    }
    int64_t groups = nd->a.groups, hw = nd->out.h * nd->out.w, cpg = nd->out.c / groups;
    int per_value = nd->id == CN_OP_LAYERNORM; /* over=all */
    cn_cu_act x = cn_cu_x(io, 0), y = cn_cu_y(io);
    const void *gamma = nd->a.affine ? io->w : NULL;
    void *aux = io->aux;
    double eps = nd->a.eps;
    void *args[] = { &x, &y, &gamma, &aux, &groups, &cpg, &hw, &per_value, &eps };
    cn_cu_launch_blocks(CN_CU_K_gn_forward, io->batch * groups, args);
}

void cn_cuda_norm_backward(const cn_op_io *io)
{
    const cn_node *nd = io->n;
    int64_t groups = nd->a.groups, hw = nd->out.h * nd->out.w, cpg = nd->out.c / groups, n = io->batch;
    int64_t c = nd->out.c;
    int per_value = nd->id == CN_OP_LAYERNORM, fresh = fresh_bit(io, 0);
    cn_cu_act x = cn_cu_x(io, 0), dy = cn_cu_dy(io), dx = cn_cu_dx(io, 0);
    const void *gamma = nd->a.affine ? io->w : NULL, *aux = io->aux;
    void *dgamma = gamma ? io->dw : NULL;
    if (cn_norm_over_channels(nd)) {
        void *args[] = { &x, &dy, &gamma, &aux, &dx, &n, &c, &hw, &fresh }, *pc[] = { &x, &dy, &aux, &dgamma, &n, &c, &hw };
        if (dx.p) cn_cu_launch(CN_CU_K_lnc_backward, n * hw, args);
        if (dgamma) cn_cu_launch_blocks(CN_CU_K_lnc_param, c, pc);
        return;
    }
    void *args[] = { &x, &dy, &gamma, &aux, &dx, &groups, &cpg, &hw, &per_value, &fresh };
    if (dx.p) cn_cu_launch_blocks(CN_CU_K_gn_backward, n * groups, args);
    if (!dgamma) return;
    void *pv[] = { &x, &dy, &aux, &dgamma, &n, &c, &hw }, *pc[] = { &x, &dy, &aux, &dgamma, &n, &groups, &cpg, &hw };
    if (per_value) cn_cu_launch(CN_CU_K_gn_param_values, c * hw, pv);
    else cn_cu_launch_blocks(CN_CU_K_gn_param_channels, nd->out.c, pc);
}

/* ---- dropout: the mask drawn on the host from the net's RNG before the pass (cn_kernels.draw),
 * one uniform per value in element order as the reference draws it (the same masks on every
 * backend), and copied into aux behind the queued work: the pass itself has no host work and
 * no wait, so a training step with dropout records as a CUDA graph too ---- */

void cn_cuda_dropout_draw(const cn_op_io *io)
{
    static unsigned char *drawn; /* the head and the mask, reused: the copy takes it at once */
    static int64_t room;
    int64_t n = count_of(io);
    if (n + CN_DROPOUT_AUX_HEAD > room) {
        unsigned char *more = realloc(drawn, (size_t)(n + CN_DROPOUT_AUX_HEAD));
        if (!more) {
            cn_cuda_fail("dropout: no host memory for a mask of %lld values", (long long)n);
            return;
        }
        drawn = more, room = n + CN_DROPOUT_AUX_HEAD;
    }
    int64_t mode = 1;
    memcpy(drawn, &mode, sizeof mode);
    for (int64_t i = 0; i < n; i++) drawn[CN_DROPOUT_AUX_HEAD + i] = cn_rng_uniform(io->rng) < io->n->a.keep;
    cn_cuda_memory.copy(io->aux, drawn, (size_t)(n + CN_DROPOUT_AUX_HEAD));
}

/* training: the mask the draw left in aux; evaluation: the identity, and aux's mode 0 */
void cn_cuda_dropout_forward(const cn_op_io *io)
{
    int64_t n = count_of(io);
    if (!io->training) {
        cn_cuda_memory.zero(io->aux, CN_DROPOUT_AUX_HEAD);
        copy_or_add(cn_cu_x(io, 0), cn_cu_y(io), n, 0);
        return;
    }
    float scale = (float)(1.0 / io->n->a.keep);
    cn_cu_act x = cn_cu_x(io, 0), y = cn_cu_y(io);
    const void *m = (const unsigned char *)io->aux + CN_DROPOUT_AUX_HEAD;
    int64_t c = io->n->out.c, hw = io->n->out.h * io->n->out.w; /* an NHWC map reads the mask in NCHW's order */
    void *args[] = { &x, &m, &y, &n, &scale, &c, &hw };
    cn_cu_launch(CN_CU_K_dropout_forward, n, args);
}

void cn_cuda_dropout_backward(const cn_op_io *io)
{
    int64_t n = count_of(io);
    int fresh = fresh_bit(io, 0);
    float scale = (float)(1.0 / io->n->a.keep);
    cn_cu_act dy = cn_cu_dy(io), dx = cn_cu_dx(io, 0);
    const void *mode = io->aux;
    int64_t c = io->n->out.c, hw = io->n->out.h * io->n->out.w;
    void *args[] = { &dy, &mode, &dx, &n, &scale, &fresh, &c, &hw };
    if (dx.p) cn_cu_launch(CN_CU_K_dropout_backward, n, args);
}

/* ---- biases and their gradients ---- */

void cn_cuda_bias_relu(cn_cu_act y, const float *b, int64_t n, int64_t c, int64_t hw, int relu)
{
    void *args[] = { &y, &b, &n, &c, &hw, &relu };
    if (b || relu) cn_cu_launch(CN_CU_K_bias_relu, n * c * hw, args);
}

void cn_cuda_bf16_pack(cn_cu_act x, uint16_t *dst, int64_t n, int64_t c, int64_t hw, int nhwc)
{
    cn_cu_act staged = { dst, 1, nhwc };
    int add = 0;
    void *args[] = { &x, &staged, &n, &c, &hw, &add };
    cn_cu_launch(CN_CU_K_relayout, n * c * hw, args);
}

void cn_cuda_bf16_unpack(const uint16_t *src, cn_cu_act y, const float *b, int64_t n, int64_t c, int64_t hw, int nhwc,
                         int add, int relu)
{
    void *args[] = { &src, &y, &b, &n, &c, &hw, &nhwc, &add, &relu };
    cn_cu_launch(CN_CU_K_bf16_unpack, n * c * hw, args);
}

/* the scratch of either layout's runs */
int64_t cn_cuda_channel_sum_bytes(int64_t n, int64_t c, int64_t hw)
{
    int64_t a = channel_runs(n * hw), b = runs_of(1, n, c, hw), runs = a > b ? a : b;
    return CN_CU_ALIGN(c * runs * (int64_t)sizeof(double));
}

void cn_cuda_channel_sum(cn_cu_act dy, float *out, int64_t n, int64_t c, int64_t hw, double *scratch)
{
    int64_t runs = runs_of(dy.nhwc, n, c, hw);
    if (runs == 1 && !dy.nhwc) {
        void *args[] = { &dy, &out, &n, &c, &hw };
        cn_cu_launch_blocks(CN_CU_K_channel_sum, c, args);
        return;
    }
    void *pargs[] = { &dy, &scratch, &n, &c, &hw, &runs }, *targs[] = { &scratch, &out, &c, &runs };
    if (dy.nhwc) cn_cu_launch_blocks(CN_CU_K_channel_part_nhwc, runs, pargs);
    else cn_cu_launch_blocks(CN_CU_K_channel_part, c * runs, pargs);
    cn_cu_launch(CN_CU_K_channel_total, c, targs);
}
