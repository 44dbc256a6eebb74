/* convnet.h — the one public header of convnet, a small CNN library in C11.
 *
 * Conventions: every fallible call returns a cn_status and leaves a message in the cn_ctx
 * (cn_ctx_message) that names the user's file, line and column where one is involved.
 * The library never prints and never exits, but for two cases that say so: the CUDA backend's
 * diagnostics when CN_CUDA_VERBOSE=1 (stderr), and cn_parallel_abort, which ends an MPI job.
 * Out-parameters are NULL/zero on failure.
 * Objects are owned by the caller that created them. Releasing follows one rule: an object the
 * library made and returned by pointer (cn_ctx, cn_net, cn_optim, cn_checkpoint, cn_model) ends with
 * cn_<type>_destroy(obj); a struct the caller owns that the library filled (cn_dataset,
 * cn_eval_result, cn_data_report) has its contents released by cn_<type>_free(ctx, &s). Every
 * destroy(NULL) is a no-op.
 * Threads: a cn_ctx and every object made with it are used by one thread at a time; separate
 * objects may be used at once in separate threads (each thread with its own cn_ctx): nothing is
 * shared between them but read-only tables and per-thread scratch. The inference section says
 * what is tested. The kernels' OpenMP thread count is per calling thread (cn_set_threads).
 */
#ifndef CONVNET_H
#define CONVNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CN_VERSION "0.1.0"

typedef enum cn_status {
    CN_OK = 0,
    CN_E_NOMEM,       /* an allocation failed */
    CN_E_PARSE,       /* malformed spec text or value */
    CN_E_SHAPE,       /* shapes do not fit together */
    CN_E_OVERFLOW,    /* a size or count does not fit in 64 bits */
    CN_E_IO,          /* a file could not be read or written */
    CN_E_FORMAT,      /* a file's content is malformed */
    CN_E_ARG,         /* the caller passed an invalid argument */
    CN_E_NUMERIC,     /* a value became NaN or infinite */
    CN_E_UNSUPPORTED, /* valid, but not implemented here (or no GPU for --device cuda) */
    CN_E_DEVICE       /* the GPU or its libraries failed while running */
} cn_status;

/* Short lower-case name of a status ("parse", "shape", ...). */
const char *cn_status_name(cn_status s);

/* ---- context: error message and allocator ---------------------------------------------- */

typedef struct cn_allocator {
    void *(*malloc_fn)(void *user, size_t size);
    void *(*realloc_fn)(void *user, void *ptr, size_t size);
    void (*free_fn)(void *user, void *ptr);
    void *user;
} cn_allocator;

typedef struct cn_ctx cn_ctx;

/* alloc == NULL uses the C library's malloc/realloc/free. */
cn_status cn_ctx_create(const cn_allocator *alloc, cn_ctx **out);
void cn_ctx_destroy(cn_ctx *ctx);
/* The message of the last failure ("" when none); valid until the next failing call. */
const char *cn_ctx_message(const cn_ctx *ctx);
cn_status cn_ctx_status(const cn_ctx *ctx);
void cn_ctx_clear(cn_ctx *ctx);

/* How an image is resized to the size a net takes (cn_image_load, the image-folder loaders, a
 * cn_model's inputs). Both use half-pixel centres and give a same-size image's pixels as they are. */
typedef enum cn_resize {
    /* Bilinear from the 2x2 nearest pixels (OpenCV's INTER_LINEAR, PyTorch's interpolate(bilinear,
     * align_corners=False, antialias=False)): shrinking by more than 2x skips pixels, and a fine
     * pattern comes out as moire. A context's default, and what a checkpoint without the
     * "resize" key was trained on (convnet train before CN_RESIZE_ANTIALIAS). */
    CN_RESIZE_BILINEAR = 0,
    /* Shrinking: each output pixel the triangle-weighted mean of the input pixels under it, the
     * filter stretched by the shrink factor (PIL's BILINEAR, which torchvision's Resize uses,
     * and interpolate(bilinear, antialias=True)); enlarging: as CN_RESIZE_BILINEAR. convnet
     * train's default, stored in its checkpoints as resize = "antialias". */
    CN_RESIZE_ANTIALIAS = 1,
    /* As CN_RESIZE_ANTIALIAS, but a JPEG at least 8x larger than the input on both sides is
     * first decoded at 1/2, 1/4 or 1/8 of its size by libjpeg's scaled inverse DCT (PIL's
     * draft), the smallest that keeps 4x the input: 1.8-3.6x faster on 12-megapixel photos,
     * their pixels a little off CN_RESIZE_ANTIALIAS's (on average under 0.4/255 on photos, at
     * most 10/255; README). resize = "draft". */
    CN_RESIZE_DRAFT = 2
} cn_resize;
/* The resizing of cn_image_load and of the image-folder loaders given this context
 * (cn_dataset_load_folder, and the batches of cn_dataset_open_folder); a value not in cn_resize
 * is ignored. A cn_model resizes as its checkpoint says, whatever its context's setting. */
void cn_ctx_set_resize(cn_ctx *ctx, cn_resize mode);
/* How many images cn_image_load and the image-folder loaders (on all their threads) made of
 * another size with ctx since the last call, and how many of those were JPEGs decoded
 * smaller first (CN_RESIZE_DRAFT); both start again at 0. Either pointer may be NULL. */
void cn_ctx_take_image_counts(cn_ctx *ctx, int64_t *resized, int64_t *drafted);
cn_resize cn_ctx_resize(const cn_ctx *ctx);
/* "bilinear" or "antialias" (the checkpoint's "resize" values, `convnet train --resize`); NULL
 * for a value not in cn_resize. cn_resize_parse: 1 and *out for one of those names, else 0. */
const char *cn_resize_name(cn_resize mode);
int cn_resize_parse(const char *name, cn_resize *out);

/* Edit distance between two words (insertions, deletions, substitutions and transpositions of
 * neighbours, each 1), the one behind every "did you mean" of the library and the CLI; 99 when
 * either word has 40 characters or more. */
int cn_edit_distance(const char *a, const char *b);

/* ---- checked size arithmetic: 1 when the result fits, 0 on overflow -------------------- */

int cn_mul_ok(int64_t a, int64_t b, int64_t *r);
int cn_add_ok(int64_t a, int64_t b, int64_t *r);

/* ---- threads ------------------------------------------------------------------------------
 * The heavy kernels run on OpenMP threads. Results are bit-identical whatever the count: work
 * is split over outputs, and every sum runs in the same order on any number of threads. */

/* Sets the threads the kernels use (n >= 1); returns the count now in force. The default is
 * OMP_NUM_THREADS when set, else one per core. As OpenMP's count, it holds for the calling
 * thread: another thread of the program starts with the default and sets its own. */
int cn_set_threads(int n);
int cn_threads(void);

/* ---- random numbers: xoshiro256** seeded through splitmix64 -----------------------------
 * The same seed gives the same stream on every machine (integer arithmetic only; the
 * normal deviates use sqrt and log from the C library on top of it). */

typedef struct cn_rng {
    uint64_t s[4];
} cn_rng;

void cn_rng_seed(cn_rng *rng, uint64_t seed);
uint64_t cn_rng_next(cn_rng *rng);
/* Uniform integer in [0, n), without modulo bias; n > 0. */
uint64_t cn_rng_below(cn_rng *rng, uint64_t n);
/* Uniform double in [0, 1) with 53 random bits. */
double cn_rng_uniform(cn_rng *rng);
/* Standard normal deviate (Marsaglia's polar method). */
double cn_rng_normal(cn_rng *rng);

/* ---- networks from the spec language ------------------------------------------------------
 * A spec is one statement per line ('#' comments, ';' also separates statements):
 *     input 28x28x1
 *     conv 32 3x3 pad=same
 *     relu
 * See DESIGN.md and README.md for the language. */

typedef struct cn_net cn_net;

/* Parses spec text; file_name is used in messages ("-e" for inline text). */
cn_status cn_net_parse(cn_ctx *ctx, const char *text, size_t len, const char *file_name, cn_net **out);
/* Reads and parses a spec file. */
cn_status cn_net_load_spec(cn_ctx *ctx, const char *path, cn_net **out);
void cn_net_destroy(cn_net *net);

/* The layer types of the spec language: count, "conv FILTERS KxK [stride=S] ...", one-line help. */
int cn_layer_type_count(void);
const char *cn_layer_type_usage(int i);
const char *cn_layer_type_help(int i);

int cn_net_layer_count(const cn_net *net);
/* The spec text the net was parsed from, and its file name. */
const char *cn_net_spec_text(const cn_net *net);
const char *cn_net_file_name(const cn_net *net);
/* 1 when every layer reads the layer before it (no branches). */
int cn_net_is_chain(const cn_net *net);
/* The same net with `outputs` outputs: its spec text with the units of its last dense layer
 * changed (fine-tuning to another number of classes). Fails when the net's last layer with
 * weights is not a dense layer whose units are the net's output. */
cn_status cn_net_with_outputs(cn_ctx *ctx, const cn_net *net, int64_t outputs, cn_net **out);

typedef struct cn_layer_info {
    const char *name;          /* as named with 'as', else type + counter ("conv2") */
    const char *type;          /* "conv", "maxpool", ... */
    int line;                  /* line of the statement in the spec */
    int n_inputs;
    const char *const *inputs; /* names of the layers it reads */
    int64_t batch;             /* N used for macs */
    int64_t c, h, w;           /* output per sample: channels, height, width */
    int64_t params;            /* all parameters, trainable or not */
    int64_t trainable;         /* trainable parameters (BN running statistics are not) */
    int64_t macs;              /* multiply-accumulates for the whole batch, bias excluded */
    int64_t rf_h, rf_w;        /* receptive field in input pixels */
    int64_t jump_h, jump_w;    /* distance in input pixels between adjacent outputs */
    int col;                   /* column of the statement's first word in its line */
    /* Exact receptive field and jump: fractional after an upsampling (upsample 2 from the
     * input: jump 0.5). rf_h, rf_w, jump_h, jump_w above are these rounded up. */
    double rf_exact_h, rf_exact_w, jump_exact_h, jump_exact_w;
} cn_layer_info;

/* Layer i (0 = input) in topological order, with MACs for a batch of `batch` samples. */
cn_status cn_net_layer(cn_ctx *ctx, const cn_net *net, int i, int64_t batch, cn_layer_info *out);

/* The value of spec key `key` of layer i as the parser resolved it (defaults included): fills
 * out[0] for a number or yes/no (1/0), out[0..1] (height, width) for a pair such as kernel or
 * stride, and for pad the resolved top and left padding; returns how many it filled, 0 when the
 * layer's op has no such key. */
int cn_net_layer_key(const cn_net *net, int i, const char *key, double out[2]);

typedef struct cn_totals {
    int64_t params, trainable, macs; /* macs for the whole batch */
} cn_totals;
cn_status cn_net_totals(cn_ctx *ctx, const cn_net *net, int64_t batch, cn_totals *out);

/* Writes the worksheet arithmetic of layer i (output size, params, MACs, receptive field),
 * one formula per line, into buf like snprintf; returns the length it needed. */
size_t cn_net_explain(const cn_net *net, int i, int64_t batch, char *buf, size_t cap);

/* ---- training engine -------------------------------------------------------------------------
 * Parameters live in one slab (trainable tensors first, then the batch-norm running statistics),
 * gradients in a second slab at the same offsets. Activations are planned once per batch size.
 * All randomness comes from the net's seeded RNG: the same seed gives a bit-identical run. */

typedef enum cn_init {
    CN_INIT_KAIMING_NORMAL = 0, /* N(0, 2/fan_in): He et al. 2015, for ReLU nets (the default) */
    CN_INIT_KAIMING_UNIFORM,    /* U(-sqrt(6/fan_in), +sqrt(6/fan_in)) */
    CN_INIT_XAVIER_NORMAL,      /* N(0, 2/(fan_in + fan_out)): Glorot & Bengio 2010 */
    CN_INIT_XAVIER_UNIFORM,     /* U(-sqrt(6/(fan_in + fan_out)), +...) */
    CN_INIT_TORCH,              /* weights and biases U(-1/sqrt(fan_in), +...): PyTorch's default */
    CN_INIT_ZERO                /* every weight 0 (the symmetry no gradient breaks: a lesson) */
} cn_init;

/* Allocates the parameter and gradient slabs and draws the weights (biases and beta 0, gamma 1,
 * running mean 0, running variance 1; CN_INIT_TORCH draws the biases of conv, deconv and dense
 * too). A layer's init= in the spec overrides `init` for that layer. Seeds the net's RNG
 * (dropout) with the same seed. */
cn_status cn_net_init_params(cn_ctx *ctx, cn_net *net, cn_init init, uint64_t seed);

typedef struct cn_tensor {
    const char *name;   /* "conv1.weight", "bn1.running_var" */
    int rank;
    int64_t shape[4];   /* PyTorch's layout: conv weight (Cout, Cin/groups, Kh, Kw), dense (out, in) */
    int64_t count;
    int trainable;
    float *data;        /* inside the parameter slab */
    float *grad;        /* inside the gradient slab; NULL when not trainable */
    int frozen;         /* its layer is frozen (cn_net_freeze): the optimizer leaves it alone */
} cn_tensor;

/* A parameter tensor of layer i as the spec gives it, before any cn_net_init_params: its layer
 * ("conv1"), its name in the layer ("weight"), rank, shape and count (the tensor is named
 * "<layer>.<name>"). Fills out[0..n) (at most CN_MAX_LAYER_TENSORS) and returns n; 0 for a layer
 * without parameters or i out of range. */
#define CN_MAX_LAYER_TENSORS 4
typedef struct cn_param_info {
    const char *layer, *name;
    int rank;
    int64_t shape[4];
    int64_t count;
    int trainable;
} cn_param_info;
int cn_net_layer_params(const cn_net *net, int i, cn_param_info out[CN_MAX_LAYER_TENSORS]);

int cn_net_tensor_count(const cn_net *net);
cn_status cn_net_tensor(cn_ctx *ctx, const cn_net *net, int i, cn_tensor *out);
cn_status cn_net_find_tensor(cn_ctx *ctx, const cn_net *net, const char *name, cn_tensor *out);
/* The slabs: `count` trainable values, then (params only) the non-trainable ones. */
float *cn_net_params(const cn_net *net, int64_t *trainable, int64_t *total);
float *cn_net_grads(const cn_net *net, int64_t *count);
void cn_net_zero_grad(cn_net *net);
cn_rng *cn_net_rng(cn_net *net);

/* How layer i runs on the net's backend at the batch last planned (1 before any): the kernel's
 * own words where it has them (the CPU convolutions: "sgemm on padded rows; dx: col2im", ...),
 * else the backend's name ("cpu", "cuda"), "reference" where the backend has no kernel for the
 * layer, "input" for layer 0; NULL out of range. A static string. */
const char *cn_net_layer_kernel(const cn_net *net, int i);

/* x (N, C, H, W) as the input layer declares; training = 1 uses batch statistics and dropout.
 * The output (N, classes...) stays valid until the next forward. */
cn_status cn_net_forward(cn_ctx *ctx, cn_net *net, const float *x, int64_t batch, int training);
const float *cn_net_output(const cn_net *net, int64_t *count);
/* Layer i's output (0 = the input) from the last forward, (N, C, H, W) as cn_net_layer gives it;
 * NULL before a forward or when i is out of range. Valid until the next forward. */
const float *cn_net_layer_output(const cn_net *net, int i, int64_t *count);
/* The gradient of the loss with respect to layer i's output (0 = the input: cn_net_input_grad)
 * after cn_net_backward, laid out as cn_net_layer_output; NULL before a forward or when i is
 * out of range. Valid until the next forward or backward. */
const float *cn_net_layer_grad(const cn_net *net, int i, int64_t *count);
/* Back-propagates dy (the gradient of the loss with respect to the output): parameter
 * gradients accumulate (+=) into the gradient slab. */
cn_status cn_net_backward(cn_ctx *ctx, cn_net *net, const float *dy);
/* Per-layer timing: while on, every forward and backward kernel call adds its wall time to the
 * layer's totals (seconds), read with cn_net_profile_get; enabling resets them. */
void cn_net_profile(cn_net *net, int on);
void cn_net_profile_get(const cn_net *net, int i, double *forward_s, double *backward_s);

/* Gradient of the loss with respect to the net's input after cn_net_backward (N*C*H*W values). */
const float *cn_net_input_grad(const cn_net *net);
/* on = 0: backward skips the input gradient (training needs none; the first layer's backward is
 * then cheaper) and cn_net_input_grad's values are undefined. On by default; the setting stays
 * through cn_net_init_params. */
void cn_net_set_input_grad(cn_net *net, int on);
/* Holds the parameters still (hold = 1), or lets them change again (0, the default). While
 * held, an inference forward keeps what it makes of the parameters for the next one instead of
 * making it again at every call: the convolutions' weights with the batch norm after them
 * folded in, and the backend's own forms of them (the CPU's Winograd transforms), a third of
 * ResNet-18's time at batch 1. The outputs are the same bits held or not. The caller changes no
 * parameter itself while they are held (through cn_net_params, cn_net_tensor or a model's net):
 * to change them, hold 0, change, hold 1. The library's calls that change them
 * (cn_net_init_params, cn_checkpoint_load_matching, cn_optim_step, a training forward, which
 * moves batch norms' running statistics) have what is kept made again at the next inference
 * forward. Costs memory: the folded weights and the transforms (for ResNet-18 about 1.4 times
 * its parameters), from the first inference forward until hold 0 or cn_net_set_device. A
 * cn_model's net is held (cn_model_load); cn_evaluate holds the net while it runs. */
cn_status cn_net_hold_params(cn_ctx *ctx, cn_net *net, int hold);
int cn_net_params_held(const cn_net *net);
/* Freezes (frozen = 1) or thaws a layer by name: cn_optim_step leaves its parameters as they are
 * (no update, no weight decay, no momentum; its gradients are zeroed and count nothing towards
 * clipping), as PyTorch's requires_grad = False. Batch norm still tracks its running statistics in
 * training mode. Fails for an unknown name or a layer without trainable parameters. */
cn_status cn_net_freeze(cn_ctx *ctx, cn_net *net, const char *layer, int frozen);

/* Arithmetic of a device: fp32 (IEEE float), tf32 (the GPU's tensor cores on float inputs
 * rounded to 10-bit mantissas: cuBLAS/cuDNN tensor-op math), bf16 (the GPU: convolutions and
 * dense layers on bfloat16 operands with fp32 sums, the activations between layers stored in
 * bfloat16, the weights, their gradients and the loss fp32). */
typedef enum { CN_PRECISION_FP32 = 0, CN_PRECISION_TF32, CN_PRECISION_BF16 } cn_precision;
/* Runs net's kernels from now on on device "cpu" (the default) or "cuda" (the first NVIDIA GPU,
 * through the driver, cuBLAS and cuDNN, loaded at first use), in precision (the CPU: fp32 only).
 * The parameters move to the device's memory, values kept; create optimizers after this call,
 * so that their state lives there too. The pointers the API returns stay addressable from the
 * host on every device. CN_E_UNSUPPORTED with the reason when the device cannot run here ("no
 * NVIDIA driver: ...", "no CUDA device", "built without CUDA"). */
cn_status cn_net_set_device(cn_ctx *ctx, cn_net *net, const char *device, cn_precision precision);
/* CN_OK when device can run here in precision (as cn_net_set_device would find it), else why
 * in ctx. */
cn_status cn_device_probe(cn_ctx *ctx, const char *device, cn_precision precision);
int cn_net_frozen(const cn_net *net, int i);

/* Runs forward on x (batch samples) and, when dy is not NULL, backward from dy, checking every
 * layer's output and gradients; fails naming the first layer and pass that produced a NaN or
 * infinity, with the min, max and mean of what that layer was given. rng_before (may be NULL)
 * replays the dropout draws of the step being traced. Gradients are left as they were. */
cn_status cn_net_trace_nonfinite(cn_ctx *ctx, cn_net *net, const float *x, int64_t batch, const float *dy,
                                 int training, const cn_rng *rng_before);

/* Central-difference check of every layer's backward pass, in double precision: random inputs,
 * parameters and output gradient (seeded), up to `samples` coordinates of each input and
 * parameter tensor. max_rel_err[i] = max |analytic - numeric| / max |numeric| over a layer's
 * tensors (0 for the input layer); *worst is the largest. */
cn_status cn_net_gradcheck(cn_ctx *ctx, const cn_net *net, uint64_t seed, int64_t batch, int training, int samples,
                           double *max_rel_err, double *worst);

/* ---- optimizers and learning-rate schedules (PyTorch's update rules) -------------------------- */

typedef enum cn_optim_kind {
    CN_OPTIM_SGD = 0,  /* w -= lr g */
    CN_OPTIM_MOMENTUM, /* v = mu v + g; w -= lr v */
    CN_OPTIM_NESTEROV, /* v = mu v + g; w -= lr (g + mu v) */
    CN_OPTIM_ADAM,     /* Kingma & Ba, bias-corrected moments */
    CN_OPTIM_ADAMW     /* Adam with decoupled weight decay: w -= lr wd w before the update */
} cn_optim_kind;

typedef enum cn_schedule {
    CN_SCHED_CONSTANT = 0,
    CN_SCHED_STEP,     /* lr * gamma^floor(t / step_size) */
    CN_SCHED_COSINE,   /* lr * (1 + cos(pi t / T)) / 2 */
    CN_SCHED_ONECYCLE  /* PyTorch's OneCycleLR (cosine up to lr over pct_start of T, then down) */
} cn_schedule;

typedef struct cn_optim_config {
    cn_optim_kind kind;
    double lr;                 /* base learning rate (the peak for one-cycle) */
    double momentum;           /* momentum and Nesterov (0.9) */
    double beta1, beta2, eps;  /* Adam (0.9, 0.999, 1e-8) */
    double weight_decay;       /* L2: wd*w added to the gradient; AdamW: decoupled */
    double l1;                 /* L1: l1*sign(w) added to the gradient */
    double clip_norm;          /* scale gradients so their global L2 norm is at most this; 0 = off */
    cn_schedule schedule;
    int64_t total_steps;       /* cosine and one-cycle */
    int64_t warmup_steps;      /* linear warm-up from lr/warmup to lr first (not with one-cycle) */
    int64_t step_size;         /* step schedule */
    double gamma;              /* step schedule (0.1) */
    double pct_start, div_factor, final_div_factor; /* one-cycle (0.3, 25, 1e4) */
} cn_optim_config;

typedef struct cn_optim cn_optim;

/* PyTorch's defaults for the kind: lr 0.01 (Adam 0.001), momentum 0.9, betas (0.9, 0.999),
 * eps 1e-8, no decay, constant schedule. */
void cn_optim_defaults(cn_optim_config *cfg, cn_optim_kind kind);
cn_status cn_optim_create(cn_ctx *ctx, const cn_net *net, const cn_optim_config *cfg, cn_optim **out);
/* The settings checked as cn_optim_create (and cn_train_check) checks them, the first bad one
 * named with its value (CN_E_ARG): for a caller that wants to refuse a setting before it reads
 * data. The cosine and one-cycle schedules need total_steps >= 1. */
cn_status cn_optim_config_check(cn_ctx *ctx, const cn_optim_config *cfg);
void cn_optim_destroy(cn_optim *opt);
/* The learning rate of step t (0-based). */
double cn_optim_lr_at(const cn_optim_config *cfg, int64_t t);
/* One update of the net's trainable parameters from the gradient slab: clipping, L1/L2
 * terms, the rule of the kind, then the step counter advances. *grad_norm (may be NULL)
 * gets the global gradient norm before clipping; a non-finite norm fails with CN_E_NUMERIC
 * and changes nothing. */
cn_status cn_optim_step(cn_ctx *ctx, cn_optim *opt, cn_net *net, double *grad_norm);
/* The same update on n values w with gradients g, as step t (0-based) applies it: state1 is the
 * momentum buffer (momentum, Nesterov) or Adam's first moment, state2 Adam's second moment (NULL
 * where the kind keeps none); clipping uses the norm of these n gradients. For worksheets
 * (`convnet calc step`) and tests: the training step runs the same code. */
void cn_optim_update(const cn_optim_config *cfg, int64_t t, float *w, const float *g, float *state1, float *state2,
                     int64_t n);
int64_t cn_optim_steps(const cn_optim *opt);
/* State slab (velocity, or Adam's m then v), at the parameter offsets; for checkpoints. */
float *cn_optim_state(cn_optim *opt, int64_t *count);
void cn_optim_set_steps(cn_optim *opt, int64_t steps);
const cn_optim_config *cn_optim_get_config(const cn_optim *opt);
const char *cn_optim_kind_name(cn_optim_kind kind);
/* The kind cn_optim_kind_name calls `name`; 0 when no kind is called that. */
int cn_optim_kind_from_name(const char *name, cn_optim_kind *kind);

/* The optimizer's state, named as PyTorch's state_dict names it: per trainable tensor, a
 * "momentum_buffer" (momentum, Nesterov), or an "exp_avg" and an "exp_avg_sq" (Adam, AdamW);
 * SGD has none. The one place these names are written (checkpoints store "<tensor>.<state>"). */
#define CN_OPTIM_MAX_STATES 2
/* The state names of a kind into names[0 .. CN_OPTIM_MAX_STATES); returns how many. */
int cn_optim_state_names(cn_optim_kind kind, const char **names);
typedef struct cn_optim_state_tensor {
    const char *param;  /* the parameter tensor it belongs to: "conv1.weight" */
    const char *state;  /* "momentum_buffer", "exp_avg", "exp_avg_sq" */
    int rank;
    int64_t shape[4];   /* the parameter tensor's */
    int64_t count;
    float *data;        /* count values in the state slab: read to save them, written to restore them */
} cn_optim_state_tensor;
/* How many state tensors an optimizer made for net has: states x trainable tensors. */
int cn_optim_tensor_count(const cn_optim *opt, const cn_net *net);
/* State tensor i, in slab order: every trainable tensor's first state (in the net's tensor
 * order), then every one's second. Fails when opt was not made for net or i is out of range. */
cn_status cn_optim_tensor(cn_ctx *ctx, const cn_optim *opt, const cn_net *net, int i, cn_optim_state_tensor *out);

/* ---- data ------------------------------------------------------------------------------------------ */

typedef struct cn_dataset {
    int64_t count;        /* images */
    int64_t c, h, w;      /* per image */
    float *images;        /* count x c x h x w, pixel / 255 */
    int32_t *labels;      /* count */
    int32_t classes;      /* 1 + the largest label (image folders: the number of class folders) */
    char **class_names;   /* classes names (image folders: the folder names, sorted); NULL for IDX */
    /* images NULL: each image's file, decoded when a batch needs it (cn_dataset_open_folder);
     * NULL when images holds them all */
    char **paths;
    /* images NULL: an IDX file's bytes (count x h x w), each image converted when a batch needs
     * it (cn_dataset_open_mnist); NULL otherwise */
    unsigned char *pixels;
} cn_dataset;

/* Reads an IDX image file (ubyte, N x H x W) and its label file (ubyte, N), gzipped or raw.
 * Malformed files (wrong magic, huge or zero dimensions, truncated, trailing bytes, counts that
 * differ) fail naming the file and the problem. */
cn_status cn_dataset_load_idx(cn_ctx *ctx, const char *images_path, const char *labels_path, cn_dataset *out);
/* The training (train-*) or test (t10k-*) half of an MNIST-format folder, .gz or not. */
cn_status cn_dataset_load_mnist(cn_ctx *ctx, const char *dir, int train, cn_dataset *out);
/* The same halves kept as the files' bytes (a quarter of the floats' memory), each image
 * converted when a batch takes it (cn_make_batch_rows): a process of a data-parallel run
 * converts only the images of its shards. (A gzipped file is read whole all the same.) */
cn_status cn_dataset_open_mnist(cn_ctx *ctx, const char *dir, int train, cn_dataset *out);
void cn_dataset_free(cn_ctx *ctx, cn_dataset *ds);

/* The most pixels an image may have, read or made (`convnet filter`'s output): 64 Mi pixels is a
 * 9000x7000 photograph, 192 MB of 8-bit RGB; far past what a CNN input is resized from, and a
 * bound on what a header alone can make the decoders allocate. */
#define CN_IMAGE_MAX_PIXELS (INT64_C(1) << 26)
/* Decodes a PNG or JPEG file (libpng, libjpeg-turbo) into c x h x w floats in [0, 1]: a JPEG
 * turned upright by its EXIF orientation, then resized to h x w as cn_ctx_resize(ctx) says (a new
 * context: CN_RESIZE_BILINEAR), converted to c channels (1: luma 0.299 R + 0.587 G +
 * 0.114 B; 3: gray replicated; alpha dropped). A file that is not a PNG or JPEG, is truncated
 * or corrupt (libjpeg's warnings are errors), claims more pixels than its size can hold, or
 * decodes to more than 2^26 pixels fails naming the file, before the pixels are allocated. */
cn_status cn_image_load(cn_ctx *ctx, const char *path, int64_t c, int64_t h, int64_t w, float *out);
/* The channels a PNG or JPEG file decodes to (1 gray, 3 colour; alpha dropped) and its size
 * (upright, as EXIF orients a JPEG):
 * cn_image_load with these loads it unscaled. Decodes the whole file; out-parameters are 0 on
 * failure and may be NULL. */
cn_status cn_image_info(cn_ctx *ctx, const char *path, int64_t *c, int64_t *h, int64_t *w);
/* Filters a c x h x w image (any value range): each channel cross-correlated with the kh x kw
 * kernel k (no kernel flip, as the conv layer computes), at stride, zero-padded by pad on every
 * side, or with pad CN_FILTER_PAD_SAME as the conv layer's pad=same (ceil(h/stride) rows, the
 * odd padded row or column at the bottom/right). y (c, oh, ow), oh = floor((h + 2*pad - kh)/stride)
 * + 1; y NULL gives the size only. Float sums: exact for integer kernels on integer pixels
 * (while under 2^24). Fails when the kernel is larger than the padded image. */
#define CN_FILTER_PAD_SAME (-1)
cn_status cn_image_filter(cn_ctx *ctx, const float *x, int64_t c, int64_t h, int64_t w, const float *k, int64_t kh,
                          int64_t kw, int64_t stride, int64_t pad, float *y, int64_t *oh, int64_t *ow);
/* Writes c x h x w values in [0, 1] (clamped) as an 8-bit PNG (c = 1 gray, 3 RGB). */
cn_status cn_image_save_png(cn_ctx *ctx, const char *path, const float *img, int64_t c, int64_t h, int64_t w);

/* A picture of n small maps (kernels, activation maps) as a grid of tiles, each labelled with its
 * index (src/data/draw.c, tests/test_show.c). Layout, in output pixels: a gap of CN_GRID_GAP
 * around and between cells; a cell is a label strip CN_GRID_LABEL_H high (the index in a 3x5
 * font drawn 2x, black on white) above the tile, the map upscaled by nearest neighbour
 * (h*scale x w*scale, at the cell's left); a cell is as wide as the tile or the widest label
 * (digits(n-1) glyphs 8 px apart, minus the last glyph's 2 px of spacing), whichever is wider.
 * The background is white; NaN and infinite values are left out of the ranges and drawn black. */
#define CN_GRID_GAP 2
#define CN_GRID_LABEL_H 12
typedef enum cn_grid_norm {
    CN_GRID_SYMMETRIC = 0, /* 0.5 + 0.5 v / max|v| over all the maps: 0 is grey, -max black, +max white */
    CN_GRID_MINMAX_EACH,   /* each map (all its channels) from its own min (black) to max (white); flat: black */
    CN_GRID_MINMAX_ALL     /* all the maps from their common min (black) to max (white): maps of one value
                            * each (a 1x1 layer), which CN_GRID_MINMAX_EACH would draw all black */
} cn_grid_norm;
typedef struct cn_grid {
    int64_t n;          /* maps, one tile each */
    int64_t c, h, w;    /* one map: c = 1 (gray) or 3 (RGB) */
    int64_t scale;      /* output pixels per map value, 1..256 */
    int64_t cols;       /* tiles per row; 0: ceil(sqrt(n)) */
    cn_grid_norm norm;
} cn_grid;
/* The picture's size (it has g->c channels); fails on bad fields or a picture over 2^28 pixels. */
cn_status cn_grid_size(cn_ctx *ctx, const cn_grid *g, int64_t *height, int64_t *width);
/* out (g->c, height, width) in [0, 1], for cn_image_save_png <- maps (n, c, h, w). */
cn_status cn_grid_draw(cn_ctx *ctx, const cn_grid *g, const float *maps, float *out);

/* An image folder with one sub-folder per class (sorted by name: class 0, 1, ...), every PNG or
 * JPEG in them converted as cn_image_load does: on the kernels' threads (cn_set_threads) where
 * the context allocates with the C library's malloc (a caller's allocator need not be
 * thread-safe: one thread then), the same floats on any number. */
cn_status cn_dataset_load_folder(cn_ctx *ctx, const char *dir, int64_t c, int64_t h, int64_t w, cn_dataset *out);
/* The same folder without decoding it: its classes, labels and files (cn_dataset.paths), each
 * image decoded when a batch takes it (cn_make_batch_rows; a batch's files on the kernels'
 * threads, as cn_dataset_load_folder's), so that a process of a data-parallel run decodes only
 * the images of its shards. A file that does not decode fails that batch, the first such named. */
cn_status cn_dataset_open_folder(cn_ctx *ctx, const char *dir, int64_t c, int64_t h, int64_t w, cn_dataset *out);

/* How a data folder is laid out, as cn_data_check finds it: DIR/train with DIR/val or DIR/test
 * folders makes halves, else train-* or t10k-* IDX files make MNIST, else an image folder. */
typedef enum cn_data_layout {
    CN_DATA_FOLDER = 0, /* an image folder: one sub-folder of images per class */
    CN_DATA_MNIST,      /* MNIST-format IDX files: train-images-idx3-ubyte[.gz] and/or t10k-* */
    CN_DATA_HALVES      /* an image folder in halves: DIR/train plus DIR/val and/or DIR/test, each
                         * an image folder of its own */
} cn_data_layout;
/* The layout of a data folder, and whether it has a test half (MNIST: t10k-* files) and a val/
 * half (may be NULL). */
cn_data_layout cn_data_find_layout(const char *dir, int *has_test, int *has_val);
/* dir's sub-folder of the half named half ("train", "val" or "test") of a data set in halves,
 * as spelt there, into out (cap bytes: "dir/Train"): its name in any case, and for val also
 * "valid" or "validation" (as Kaggle's and Roboflow's exports name it); the lower-case name
 * first where several are there. 0 when dir has none. */
int cn_data_half_folder(const char *dir, const char *half, char *out, size_t cap);

/* One half of a data set in halves (DIR/train, DIR/val, DIR/test; or an MNIST folder's train-*
 * and t10k-* files), counted as cn_data_report counts the whole. */
typedef struct cn_data_half {
    char *name;               /* "train", "val" or "test" (MNIST: t10k-* is "test") */
    char *path;               /* its folder (MNIST: its images file) */
    int64_t files, bad_files, duplicates, bad_labels;
    int64_t leaks;            /* of duplicates: images with the pixels of an image of an earlier half
                               * (train, then val): test or validation images seen in training */
    int32_t classes;          /* its class folders, sorted (the labels cn_dataset_load_folder gives
                               * them); MNIST: the report's classes */
    int64_t *per_class;       /* images per class */
    char **class_names;       /* NULL for IDX */
    int32_t missing_classes;  /* classes another half has a folder for and this one has not */
} cn_data_half;

/* What `convnet data check` reports on a data set (an MNIST-format folder, an image folder or an
 * image folder in halves). The fields from layout on were added later: the ones above keep their
 * meaning, totals over the halves when there are halves. */
typedef struct cn_data_report {
    int64_t files;            /* image files seen (IDX: images) */
    int64_t bad_files;        /* files that do not decode, or are empty */
    int64_t duplicates;       /* files whose pixels equal an earlier file's */
    int64_t bad_labels;       /* IDX labels outside 0..classes-1 (classes given by the caller, 0 = any) */
    int32_t classes;
    int64_t *per_class;       /* images per class */
    char **class_names;       /* NULL for IDX */
    char *problems;           /* one line per problem: "FILE: message\n", at most 100 lines */
    cn_data_layout layout;
    int32_t n_halves;         /* CN_DATA_HALVES and CN_DATA_MNIST: the halves found, in the order train,
                               * val, test; 0 for an image folder */
    cn_data_half *halves;     /* n_halves; with halves, classes/class_names above are the union of
                               * the halves' classes and per_class the sum over the halves */
    int64_t leaks;            /* of duplicates: images of one half equal to an image of another */
    int64_t missing_classes;  /* over the halves: class folders one half lacks that another has */
} cn_data_report;
/* An image folder's files are decoded on the kernels' threads as cn_dataset_load_folder's are,
 * the report the same on any number. */
cn_status cn_data_check(cn_ctx *ctx, const char *path, int32_t classes, cn_data_report *out);
void cn_data_report_free(cn_ctx *ctx, cn_data_report *r);

/* ---- batches: shuffling, normalisation, augmentation ---- */

/* A permutation of 0..n-1 drawn from rng (Fisher-Yates). */
void cn_shuffle(cn_rng *rng, int64_t *perm, int64_t n);
/* Per-channel mean and standard deviation over the images (population std). */
void cn_dataset_stats(const cn_dataset *ds, float *mean, float *std);
/* x (n, c, h, w) <- images[idx[i]], when asked zero-padded by `pad` on each side and randomly
 * cropped back, and flipped horizontally with probability 1/2 (drawn from rng in sample order:
 * crop y, crop x, flip), then normalised: (x - mean) / std per channel, as PyTorch's
 * RandomCrop(padding) before Normalize does (padded pixels become -mean/std). */
void cn_make_batch(const cn_dataset *ds, const int64_t *idx, int64_t n, const float *mean, const float *std,
                   int64_t pad, int flip, cn_rng *rng, float *x, int32_t *labels);
/* Rows lo .. hi - 1 of that batch alone, into x and labels from their start: the draws are
 * those of all n rows (a process of a data-parallel run makes its share of the global batch).
 * The images of a dataset without them (cn_dataset_open_folder, cn_dataset_open_mnist) are
 * decoded or converted here; a file that fails to decode fails the call, naming it. */
cn_status cn_make_batch_rows(cn_ctx *ctx, const cn_dataset *ds, const int64_t *idx, int64_t n, int64_t lo, int64_t hi,
                             const float *mean, const float *std, int64_t pad, int flip, cn_rng *rng, float *x,
                             int32_t *labels);
/* Per-channel statistics of images first .. first + count - 1 (decoded if need be) as three
 * runs of 4 doubles: the count of values, their mean and their sum of squared deviations
 * (two passes in double); cn_dataset_stats_merge merges such parts, in order, into the mean and
 * std of cn_dataset_stats. Parts of fixed blocks merged in block order give the same bits
 * whichever process computed which block. */
cn_status cn_dataset_stats_part(cn_ctx *ctx, const cn_dataset *ds, int64_t first, int64_t count, double part[12]);
void cn_dataset_stats_merge(const double *parts, int64_t n_parts, int64_t channels, float *mean, float *std);

/* Test-time augmentation: the views of each image whose outputs are averaged (cn_evaluate_tta,
 * cn_model_set_tta). A view's padding is zero pixels, as cn_make_batch pads (-mean/std). */
typedef enum cn_tta {
    CN_TTA_NONE = 0,      /* the image alone (cn_evaluate) */
    CN_TTA_FLIP = 1,      /* the image and its mirror image (left to right): two forward passes a batch */
    CN_TTA_FLIP_SHIFT = 2 /* those two and their shifts by one pixel up, down, left and right (zero
                           * padded, as training's --crop pads): ten forward passes a batch */
} cn_tta;

/* ---- memory planning ------------------------------------------------------------------------ */

/* The earlier names of the optimizer kinds for memory planning, kept: one enum, cn_optim_kind. */
typedef cn_optim_kind cn_optimizer_kind;
#define CN_OPT_SGD CN_OPTIM_SGD           /* no state */
#define CN_OPT_MOMENTUM CN_OPTIM_MOMENTUM /* one velocity per parameter (as Nesterov) */
#define CN_OPT_ADAM CN_OPTIM_ADAM         /* two moments per parameter (as AdamW) */

typedef struct cn_memory {
    int64_t batch;
    /* training: everything kept from the forward pass to the backward pass */
    int64_t activations;       /* every layer's output, fp32 */
    int64_t activation_grads;  /* gradient of every layer's output */
    int64_t aux;               /* max-pool argmax, dropout masks, BN batch statistics */
    int64_t params;            /* all parameters incl. BN running statistics */
    int64_t param_grads;       /* one gradient per trainable parameter */
    int64_t optimizer_state;
    int64_t training_total;
    /* inference: only the tensors alive at once, walking the layers in order */
    int64_t inference_activations;
    int64_t inference_total;
} cn_memory;

/* The bytes of a batch, in time linear in the layers; CN_E_OVERFLOW when a count does not fit in
 * 64 bits, CN_E_NOMEM when its two per-layer tables cannot be allocated (*out zeroed). */
cn_status cn_net_memory(cn_ctx *ctx, const cn_net *net, int64_t batch, cn_optim_kind opt, cn_memory *out);
/* Largest batch whose total fits in budget bytes (0 when not even batch 1 fits); CN_E_NOMEM as
 * cn_net_memory. */
cn_status cn_net_fit_batch(cn_ctx *ctx, const cn_net *net, int64_t budget, cn_optim_kind opt, int training,
                           int64_t *batch);

/* ---- worksheet quantities (computed by the same kernels that train) ------------------------ */

/* y[i] = e^(x_i - max) / sum_j e^(x_j - max), over n values. */
void cn_softmax(const float *x, float *y, int64_t n);

typedef enum cn_loss_kind {
    CN_LOSS_MSE = 0,  /* mean over samples of mean over outputs of (t - p)^2 */
    CN_LOSS_MAE,      /* mean over samples of mean over outputs of |t - p| */
    CN_LOSS_CE,       /* -sum_j t_j log p_j per sample, p probabilities (log 0 taken as -100, as BCE) */
    CN_LOSS_CE_LOGITS,/* cross-entropy from logits (fused log-softmax) */
    CN_LOSS_BCE,      /* -[t log p + (1-t) log(1-p)] averaged over outputs, p probabilities */
    CN_LOSS_BCE_LOGITS,
    CN_LOSS_HINGE,    /* max(0, 1 - t*p) averaged over outputs, t in {-1, +1} */
    CN_LOSS_DICE      /* 1 - 2|T.P| / (|T| + |P|) per sample */
} cn_loss_kind;

/* Loss of `rows` samples of `cols` values each, averaged over samples (per-sample values
 * into per_sample[rows] when not NULL). Fails on a target or prediction out of domain. */
cn_status cn_loss(cn_ctx *ctx, cn_loss_kind kind, const float *target, const float *pred, int64_t rows,
                  int64_t cols, double *loss, double *per_sample);
const char *cn_loss_name(cn_loss_kind kind);

typedef enum cn_reduction { CN_REDUCE_MEAN = 0, CN_REDUCE_SUM } cn_reduction;

/* Loss and its gradient for training, reduced as PyTorch does: 'mean' averages elementwise
 * losses (MSE, MAE, BCE, hinge) over every value and per-sample losses (cross-entropy, Dice)
 * over the samples; 'sum' adds them. dpred (rows x cols) receives dL/dpred when not NULL.
 * label_smoothing (cross-entropy from logits only): targets become (1-s) t + s/cols.
 * BCE from probabilities clamps log at -100, as PyTorch does. */
cn_status cn_loss_grad(cn_ctx *ctx, cn_loss_kind kind, const float *target, const float *pred, int64_t rows,
                       int64_t cols, cn_reduction reduction, double label_smoothing, double *loss, float *dpred);

/* Dice coefficient 2|A n B| / (|A| + |B|). */
cn_status cn_dice_coefficient(cn_ctx *ctx, double intersection, double a, double b, double *out);

/* lambda * sum |w| (l1) or lambda * sum w^2 (l2). */
double cn_reg_l1(const float *w, int64_t n, double lambda);
double cn_reg_l2(const float *w, int64_t n, double lambda);

/* Batch norm of n values of one channel with batch statistics (biased variance):
 * y = gamma * (x - mean) / sqrt(var + eps) + beta. */
void cn_batchnorm_1d(const float *x, float *y, int64_t n, float gamma, float beta, float eps, float *mean,
                     float *var);

/* Cross-correlation of one h x w matrix with one kh x kw kernel (what CNNs call convolution),
 * zero padding pad, stride; y holds oh x ow values with oh = floor((h - kh + 2*pad)/stride) + 1. */
cn_status cn_conv2d_single(cn_ctx *ctx, const float *x, int64_t h, int64_t w, const float *k, int64_t kh,
                           int64_t kw, int64_t stride, int64_t pad, float *y, int64_t *oh, int64_t *ow);

typedef enum cn_pool_kind { CN_POOL_MAX = 0, CN_POOL_MIN, CN_POOL_AVG } cn_pool_kind;
/* Pooling of one h x w matrix; padded cells are ignored by max/min and counted as 0 by avg. */
cn_status cn_pool2d_single(cn_ctx *ctx, cn_pool_kind kind, const float *x, int64_t h, int64_t w, int64_t size,
                           int64_t stride, int64_t pad, float *y, int64_t *oh, int64_t *ow);

/* Output size floor((in - d*(k-1) - 1 + 2*pad)/stride) + 1; fails when the (dilated) kernel
 * is larger than the padded input. */
cn_status cn_conv_out_size(cn_ctx *ctx, int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dilation,
                           int64_t *out);

/* ---- checkpoints (safetensors) ------------------------------------------------------------------
 * One file: 8-byte little-endian header length, a JSON header (each tensor's dtype F32, shape
 * and data_offsets; "__metadata__" a map of strings), then the raw little-endian data: the
 * layout PyTorch and Hugging Face read. Tensors: "<layer>.weight", "<layer>.bias",
 * "<layer>.running_mean", "<layer>.running_var"; optimizer state "<tensor>.<state>" with the
 * state names of cn_optim_state_names ("momentum_buffer", or "exp_avg" and "exp_avg_sq"). The metadata always holds "spec" (the spec
 * text), "spec_hash" (FNV-1a 64, hex), "format" ("convnet-2"), "crc32.<tensor>" for every tensor,
 * "meta_crc32" (CRC-32 of every other entry but the crc32.*, in key order, as key NUL value NUL),
 * and "optimizer"/"optimizer_steps" when optimizer state is saved; callers add their own keys.
 * Files of format "convnet-1" (no meta_crc32) are still read. Reading checks the values of the
 * keys convnet train writes (epoch, step, seed, classes, train_images, class_names, norm_mean, norm_std,
 * resize, the RNG states, ...) and that every restored value is finite, naming the key or tensor. */

typedef struct cn_kv {
    const char *key;
    const char *value;
} cn_kv;

/* Writes atomically: a temporary file in the same folder, fsync, rename over path, fsync of the
 * folder. A crash leaves either the old file or the new one. opt may be NULL. */
cn_status cn_checkpoint_write(cn_ctx *ctx, const char *path, const cn_net *net, const cn_optim *opt,
                              const cn_kv *meta, int n_meta);

typedef struct cn_checkpoint cn_checkpoint;

/* Reads and validates a checkpoint file: the header length within the file, valid JSON, dtype,
 * shapes, data offsets in range, contiguous and non-overlapping, every checksum. A problem fails
 * naming the file and the tensor. path may be a run folder: its model.safetensors is read. */
cn_status cn_checkpoint_read(cn_ctx *ctx, const char *path, cn_checkpoint **out);
void cn_checkpoint_destroy(cn_checkpoint *ck);
void cn_checkpoint_free(cn_checkpoint *ck); /* the earlier name of cn_checkpoint_destroy, kept */
/* A metadata value, NULL when absent. */
const char *cn_checkpoint_meta(const cn_checkpoint *ck, const char *key);
/* Builds the net from the stored spec (its hash checked), allocates its parameters and fills
 * every tensor; a tensor missing, extra, or of another shape than the spec gives fails naming it. */
cn_status cn_checkpoint_net(cn_ctx *ctx, const cn_checkpoint *ck, cn_net **net);
/* Restores an optimizer of the same kind made for that net: state and step count. */
cn_status cn_checkpoint_optim(cn_ctx *ctx, const cn_checkpoint *ck, cn_optim *opt);
/* The input normalisation that convnet train stores (norm_mean, norm_std: 4 channels each,
 * finite, every std > 0, checked when the file is read); fails when the file has none. */
cn_status cn_checkpoint_norm(cn_ctx *ctx, const cn_checkpoint *ck, float mean[4], float std[4]);
/* How the net's training images were resized (metadata "resize": "bilinear" or "antialias",
 * checked when the file is read); a checkpoint without the key was made before convnet wrote it,
 * on CN_RESIZE_BILINEAR. */
cn_resize cn_checkpoint_resize(const cn_checkpoint *ck);
/* Fine-tuning: copies into net (its parameters initialised) every tensor of ck whose name and shape
 * match one of the net's, parameters and batch-norm statistics alike. *copied: how many; fresh
 * (may be NULL): the layers left as initialised, ", "-separated, cut to cap bytes. Fails when no
 * tensor matches (another net) or a matching tensor holds a value that is not finite. */
cn_status cn_checkpoint_load_matching(cn_ctx *ctx, const cn_checkpoint *ck, cn_net *net, int *copied, char *fresh,
                                      size_t cap);

/* ---- inference: a trained model classifying images ---------------------------------------------
 * A cn_model is a checkpoint made ready to classify: its net, the input normalisation convnet
 * train stored (norm_mean, norm_std) and its class names (class_names). `convnet predict` is
 * built on these calls, so a program gets its numbers. Every image, from any source, becomes the
 * net's input as predict makes it:
 *   1. 8-bit samples: a PNG or JPEG decoded (alpha dropped, 16-bit scaled to 8, palette and
 *      CMYK to RGB), or the caller's pixels as given (8-bit, or float in [0, 1]);
 *   2. resized to the input's H x W as its training images were (cn_checkpoint_resize: with
 *      antialiasing, or plain bilinear for a checkpoint made before convnet stored the choice;
 *      see cn_resize; same size: the pixels unchanged) and converted to the input's channels (1: luma 0.299 R + 0.587 G +
 *      0.114 B; 3 from gray: replicated), each sample s / 255 (float pixels: s itself);
 *   3. normalised per channel: (x - mean[c]) / std[c].
 * The probabilities are the softmax of the net's output (the output itself when the net ends in
 * a softmax layer). Top-k lists are most likely first; equal probabilities: the lower index first.
 *
 * Ownership: cn_model_load returns a model that the caller ends with cn_model_destroy (NULL: a
 * no-op). The net, checkpoint and class names a model hands out belong to it and live until
 * cn_model_destroy; the caller owns every buffer it passes in (x, probs, out) and its pixels.
 * Errors: the status and cn_ctx_message as everywhere: CN_E_ARG for a NULL or a size out of
 * range (naming the call), the checkpoint's and the decoders' errors naming the file (or the
 * `name` given for bytes in memory). A failed call leaves the model usable.
 * Threads: a model holds its net's activations, so one model is used by one thread at a time;
 * separate models, each with its own cn_ctx, may run at once in separate threads (two models
 * loaded from the same file too): nothing is shared between them but read-only tables, and each
 * gives the bits it gives alone. The kernels' threads are counted per calling thread (cn_set_threads). */

typedef struct cn_model cn_model;

/* Reads a checkpoint file, or a run folder (its model.safetensors), with its net, normalisation
 * and class names. Fails as cn_checkpoint_read and cn_checkpoint_net do, and when the file holds
 * no normalisation (cn_checkpoint_norm). */
cn_status cn_model_load(cn_ctx *ctx, const char *path, cn_model **out);
void cn_model_destroy(cn_model *model);

/* The net's input: channels (1 or 3), height, width (any out-parameter may be NULL). */
void cn_model_input_shape(const cn_model *model, int64_t *c, int64_t *h, int64_t *w);
/* The net's outputs per image: the classes. A net whose output is a map (a U-Net's) loads too,
 * to be run directly or shown, but its values are no classes: cn_net_check_classes(ctx,
 * cn_model_net(model), 0) says so before classifying, and the calls that classify refuse it
 * with that message (as `convnet predict` does). */
int32_t cn_model_classes(const cn_model *model);
/* Class k's name: its line of the checkpoint's class_names, else its number ("7"); NULL when k
 * is not in [0, classes), or the output is a map. */
const char *cn_model_class_name(const cn_model *model, int32_t k);
/* The stored normalisation, one value per input channel (the rest of the 4 unused). */
void cn_model_norm(const cn_model *model, float mean[4], float std[4]);
/* The model's net and checkpoint, to inspect, or to run the net directly (cn_net_forward,
 * cn_net_layer_output) under the threading rule above. */
cn_net *cn_model_net(const cn_model *model);
const cn_checkpoint *cn_model_checkpoint(const cn_model *model);

/* Pixels in the caller's memory: h rows of w pixels of c interleaved samples (HxWxC). */
typedef enum cn_pixel_format {
    CN_PIXELS_U8 = 0, /* unsigned char, 0..255 */
    CN_PIXELS_F32     /* float, 0..1 (as the 8-bit samples / 255; not clamped) */
} cn_pixel_format;
typedef struct cn_image_view {
    const void *data;
    int64_t h, w;
    int64_t c;              /* 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA (alpha ignored) */
    cn_pixel_format format;
    int64_t row_bytes;      /* bytes from a row's start to the next's; 0: w * c * sample size */
} cn_image_view;

/* The net's input x (c, h, w), floats as cn_model_input_shape gives, made from one image:
 * a PNG or JPEG file; PNG or JPEG bytes in memory (name stands for a path in messages; NULL:
 * "image"); or pixels. The decoders refuse what cn_image_load refuses. */
cn_status cn_model_input_file(cn_ctx *ctx, const cn_model *model, const char *path, float *x);
/* cn_model_input_file, also giving what the file decoded to before it became the net's input,
 * as cn_image_info gives it: channels (1 gray, 3 colour; alpha dropped), rows, columns (NULLs
 * allowed; 0 on failure). One decode, where the two calls would take two. */
cn_status cn_model_input_file_info(cn_ctx *ctx, const cn_model *model, const char *path, float *x, int64_t *c,
                                   int64_t *h, int64_t *w);
cn_status cn_model_input_encoded(cn_ctx *ctx, const cn_model *model, const void *data, size_t size,
                                 const char *name, float *x);
cn_status cn_model_input_pixels(cn_ctx *ctx, const cn_model *model, const cn_image_view *img, float *x);
/* The inputs of n image files at once, x (n, c, h, w), each the floats cn_model_input_file_info
 * gives it, decoded on the kernels' threads (cn_set_threads) where ctx allocates with the C
 * library's malloc (else one at a time): `convnet predict` on a folder of photos. status[i]:
 * file i's (CN_OK, or the error cn_model_input_file_info gives it, which a second call of that
 * names; its x left as it was); src (n x 3: channels, rows, columns, 0 where it failed) may be
 * NULL. Returns CN_E_NOMEM when memory ran out (x, status and src then partly written), else
 * CN_OK, whatever the files gave. */
cn_status cn_model_input_files(cn_ctx *ctx, const cn_model *model, const char *const *paths, int64_t n, float *x,
                               int64_t *src, cn_status *status);

/* probs (n, classes) <- the class probabilities of n inputs x (n, c, h, w) made as above.
 * CN_E_SHAPE for a net whose output is a map (cn_net_check_classes's message), and so for the
 * cn_model_classify_* calls below. */
cn_status cn_model_probabilities(cn_ctx *ctx, cn_model *model, const float *x, int64_t n, float *probs);
/* Test-time augmentation for every later call that classifies (CN_TTA_NONE when loaded): the
 * net's outputs are averaged over the views of each input (cn_tta; its padding the normalised
 * value of a 0 pixel), and the probabilities are those of the mean, as cn_evaluate_tta
 * decides. CN_E_ARG for a value not in cn_tta. */
cn_status cn_model_set_tta(cn_ctx *ctx, cn_model *model, cn_tta tta);

typedef struct cn_prediction {
    int32_t index;      /* the class; -1 in the slots past the model's classes */
    const char *name;   /* cn_model_class_name(index); NULL past the classes */
    float probability;  /* 0 past the classes */
} cn_prediction;

/* The k (>= 1) most likely classes of one row of probs (classes values) into out[0..k). */
void cn_model_top(const cn_model *model, const float *probs, int k, cn_prediction *out);

/* One image's k most likely classes into out[0..k): input, probabilities and top-k in one call. */
cn_status cn_model_classify_file(cn_ctx *ctx, cn_model *model, const char *path, int k, cn_prediction *out);
cn_status cn_model_classify_encoded(cn_ctx *ctx, cn_model *model, const void *data, size_t size, const char *name,
                                    int k, cn_prediction *out);
cn_status cn_model_classify_pixels(cn_ctx *ctx, cn_model *model, const cn_image_view *img, int k,
                                   cn_prediction *out);
/* n images at once (forward passes of up to CN_MODEL_BATCH images): image i's k classes into
 * out[i*k .. i*k + k). The probabilities equal those of one image at a time. An image that
 * fails stops the batch, naming its index ("image 3: ..."), and out is then undefined. */
#define CN_MODEL_BATCH 64
cn_status cn_model_classify_batch(cn_ctx *ctx, cn_model *model, const cn_image_view *imgs, int64_t n, int k,
                                  cn_prediction *out);

/* ---- ONNX ----------------------------------------------------------------------------------------
 * Models in and out as ONNX (IR version 8, opset 17: ONNX 1.12), read and written with protobuf-c
 * from Debian's onnx.proto. A build without protobuf-c or libonnx-dev has no ONNX: every call
 * below fails with CN_E_UNSUPPORTED, saying so. */

#define CN_ONNX_OPSET 17
#define CN_ONNX_IR_VERSION 8

/* 1 when this build reads and writes ONNX. */
int cn_onnx_available(void);
/* Writes net (its parameters initialised) to path atomically: its input (N, C, H, W) with N free,
 * every layer as ONNX nodes, the parameters as initializers named as in checkpoints
 * ("conv1.weight"), meta[0..n_meta) as the model's metadata_props. */
cn_status cn_onnx_export(cn_ctx *ctx, const cn_net *net, const cn_kv *meta, int n_meta, const char *path);

typedef struct cn_onnx_import_options {
    int fold_bn;            /* 1: a BatchNormalization whose input only a Conv's output feeds is folded
                             * into that conv's weights and bias; 0: kept as a batchnorm layer */
    const char *spec_name;  /* the spec's name in messages about it ("DIR/model.cnn"); NULL: "model.cnn" */
} cn_onnx_import_options;

typedef struct cn_onnx_imported {
    cn_net *net;            /* the net, parameters set from the model's initializers */
    int n_meta;
    cn_kv *meta;            /* metadata_props convnet writes (norm_mean, norm_std, class_names, resize) */
    int folded;             /* batch norms folded into convolutions */
} cn_onnx_imported;

/* Reads an ONNX model from len bytes (an untrusted file: every length, index, shape and data size
 * is checked, and memory stays in proportion to len). file names it in messages; a node that
 * convnet cannot express fails naming the node, its op type and what is supported. opt may be
 * NULL (batch norms kept). Release out with cn_onnx_imported_free; a caller that keeps out->net
 * takes it (sets it to NULL) first, and destroys it itself. */
cn_status cn_onnx_import(cn_ctx *ctx, const void *data, size_t len, const char *file,
                         const cn_onnx_import_options *opt, cn_onnx_imported *out);
void cn_onnx_imported_free(cn_ctx *ctx, cn_onnx_imported *r);

/* ---- text from files ------------------------------------------------------------------------------ */

/* 1 when s is UTF-8 without control characters (C0, DEL, C1): safe to print on a terminal. */
int cn_text_printable(const char *s);
/* s itself when printable, else a copy in buf (cap bytes, truncated) with every control
 * character and every byte that is not UTF-8 written as \xNN: a class name or path from a
 * file cannot move the terminal's cursor or change its title. */
const char *cn_text_escape(const char *s, char *buf, size_t cap);

/* ---- files written whole or not at all ------------------------------------------------------------ */

/* Writes len bytes to path atomically: "<path>.tmp.<pid>" in the same folder, fsync, rename over
 * path, fsync of the folder. A crash leaves the old file or the new one, and at worst a temporary
 * file that cn_file_remove_temps removes; a failure leaves path as it was. */
cn_status cn_file_write_atomic(cn_ctx *ctx, const char *path, const void *data, size_t len);
/* Removes the temporary files that interrupted atomic writes of names[0..n) left in dir
 * ("<name>.tmp.<digits>"); *removed (may be NULL) counts them. Call it only where no other
 * process writes (convnet train holds the run folder's lock). */
cn_status cn_file_remove_temps(cn_ctx *ctx, const char *dir, const char *const *names, int n, int *removed);

/* ---- one training step ---------------------------------------------------------------------- */

typedef struct cn_step_config {
    cn_loss_kind loss;        /* CN_LOSS_CE_LOGITS, or CN_LOSS_CE when the net ends in softmax */
    double label_smoothing;
} cn_step_config;

/* The loss a net is trained with by default: cross-entropy on probabilities when its last
 * layer is softmax, else cross-entropy from logits. */
cn_loss_kind cn_net_default_loss(const cn_net *net);

/* Training and evaluation classify each image: fails (CN_E_SHAPE, saying what to end the net
 * with) unless the net's output is one score per class, 1x1xK with K >= classes (classes 0:
 * any K). cn_train and cn_evaluate check it first. */
cn_status cn_net_check_classes(cn_ctx *ctx, const cn_net *net, int64_t classes);

/* forward (training mode) -> loss against one-hot labels -> backward -> optimizer step.
 * x (batch, C, H, W); labels in [0, classes). A NaN or infinity anywhere fails with
 * CN_E_NUMERIC, naming the first layer and pass that produced it, and leaves the parameters
 * as they were. */
cn_status cn_train_step(cn_ctx *ctx, cn_net *net, cn_optim *opt, const cn_step_config *cfg, const float *x,
                        const int32_t *labels, int64_t batch, double *loss);

/* ---- training runs and evaluation --------------------------------------------------------------- */

typedef struct cn_train_progress {
    int epoch_done;            /* 0: a batch finished; 1: an epoch finished (validation done) */
    int64_t epoch, epochs;     /* 1-based */
    int64_t batch, batches;    /* within the epoch, 1-based */
    int64_t step;              /* optimizer steps so far */
    double loss, acc;          /* running means over the epoch so far (acc in [0, 1]) */
    double lr;
    double images_per_s, seconds, eta_seconds; /* this epoch's rate and time, the run's ETA */
    double val_loss, val_acc;  /* epoch end, NaN without a validation split */
    int best;                  /* epoch end: the best validation accuracy so far (or loss, by monitor) */
    double step_loss;          /* a batch: its own mean loss (loss above is the epoch's running mean) */
} cn_train_progress;

/* The columns of the CSV files a run writes in its out_dir (the header line, without its newline):
 * metrics.csv has a row per epoch, steps.csv a row per optimizer step (that batch's loss and the
 * learning rate it used), gradients.csv a row per epoch and trained weight tensor ("conv1.weight":
 * biases, batch norms' beta and running statistics left out): the root mean square of the weight
 * and of the loss's gradient with respect to it at the epoch's last step (before clipping and
 * weight decay; 0 for a frozen layer). The trainer writes them and `convnet report` reads them
 * by these. */
#define CN_METRICS_COLUMNS "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds"
#define CN_STEPS_COLUMNS "epoch,step,loss,lr"
#define CN_GRADIENTS_COLUMNS "epoch,tensor,weight_rms,grad_rms"

/* What "better" means for the best checkpoint and for early stopping: the validation accuracy
 * (higher) or the validation loss (lower); the training figures when nothing is held out. */
typedef enum cn_monitor { CN_MONITOR_ACCURACY = 0, CN_MONITOR_LOSS } cn_monitor;

typedef struct cn_parallel cn_parallel; /* data-parallel training: below */

#define CN_VAL_FRACTION_MAX 0.9 /* at least a tenth of the images left to train on */
typedef struct cn_train_config {
    int64_t epochs, batch;
    cn_optim_config optim;     /* total_steps is filled in from epochs and batches */
    double label_smoothing;
    cn_init init;
    uint64_t seed;             /* weights, split, shuffling, augmentation and dropout */
    double val_fraction;       /* training images held out for validation, [0, CN_VAL_FRACTION_MAX] */
    int64_t crop_pad;          /* random crop after zero padding by this much (0: off) */
    int flip;                  /* random horizontal flips */
    const char *out_dir;       /* model.safetensors (best), last.safetensors (resume point), metrics.csv;
                                * made if missing (its parent must exist); NULL: no files */
    const cn_checkpoint *resume; /* continue the run saved in it (its net must be the one given) */
    const cn_kv *meta;         /* extra metadata for the checkpoints (the run's settings) */
    int n_meta;
    /* called after every batch and every epoch; a non-zero return stops the run cleanly */
    int (*progress)(void *user, const cn_train_progress *p);
    void *user;
    int64_t patience;          /* early stopping: stop once this many epochs in a row gave no better
                                * validation accuracy (training accuracy without validation); 0: never */
    const cn_dataset *val;     /* validation images of their own (a val/ folder): nothing of ds is held
                                * out and val_fraction is not used; NULL: val_fraction of ds */
    cn_monitor monitor;        /* the best checkpoint and patience: accuracy (default) or loss */
    const cn_checkpoint *init_from; /* fine-tuning: a new run's parameters, once initialised, take
                                * every tensor of this checkpoint whose name and shape match */
    cn_parallel *parallel;     /* data-parallel: the batch cut into shards, run by the processes of
                                * an MPI job (cn_parallel_open); NULL: one process, one batch */
} cn_train_config;

/* ---- data-parallel training ----------------------------------------------------------------
 * Every global batch is cut into a fixed number of shards (whatever the number of processes),
 * each run as a batch of its own; a process runs a run of consecutive shards. The shards'
 * gradients are summed exactly (as 64-bit fixed point, scaled by the largest value, so that the
 * sum does not depend on its order) and batch norm's statistics are merged in shard order, so
 * that any number of processes gives the same weights, bit for bit, as one process with the
 * same shards. Under mpirun (and a build with MPI) the processes are the job's, the transport
 * MPI's; otherwise this process alone. */

/* Joins the MPI job this process was started in (when there is one), or stands alone.
 * shards: of each global batch (0: one per 16 images, at least one per process); local_bn:
 * batch norm normalises each shard by its own statistics (cheaper; PyTorch DDP's default)
 * instead of the whole batch's. */
cn_status cn_parallel_open(cn_ctx *ctx, int shards, int local_bn, cn_parallel **out);
/* Leaves the job (MPI_Finalize) and frees p; NULL is a no-op. */
void cn_parallel_close(cn_parallel *p);
/* Ends every process of the job at once (one failed: the others would wait for it forever). */
void cn_parallel_abort(cn_parallel *p, int code);
int cn_parallel_rank(const cn_parallel *p);   /* 0 .. size - 1 (0 alone) */
int cn_parallel_size(const cn_parallel *p);   /* processes (1 alone) */
int cn_parallel_mpi(const cn_parallel *p);    /* 1 when the processes talk through MPI */
/* Threads for each process: this machine's cores shared among the job's processes on it (at
 * least 1); `convnet train` and `bench` use it unless --threads or OMP_NUM_THREADS says. */
int cn_parallel_threads(const cn_parallel *p);
/* The shards of a global batch of `batch` (the default resolved) and the seconds this process
 * has spent in communication (waiting included) since it opened. */
int cn_parallel_shards(const cn_parallel *p, int64_t batch);
double cn_parallel_comm_seconds(const cn_parallel *p);
/* Fails on every process, naming the first that differs from process 0, unless all hold the
 * same n bytes of what (a spec, a data set, the settings). Fingerprints travel, not the data. */
cn_status cn_parallel_agree(cn_ctx *ctx, cn_parallel *p, const char *what, const void *data, size_t n);

/* The defaults of `convnet train`: 10 epochs of batch 64, SGD with Nesterov momentum 0.9,
 * one-cycle to lr 0.05, weight decay 5e-4, 10% validation, Kaiming normal init, seed 1. */
void cn_train_defaults(cn_train_config *cfg);

typedef struct cn_train_summary {
    int64_t epochs_run, steps;
    double train_loss, train_acc, val_loss, val_acc, best_val_acc;
    int64_t best_epoch;
    float mean[4], std[4];     /* the input normalisation, per channel */
    double seconds;
    int stopped_early;         /* patience ran out before the last epoch */
    double best_val_loss;      /* the validation loss of the best epoch (training loss without validation) */
} cn_train_summary;

/* Trains the net (its parameters initialised here unless resuming) on ds. Every epoch writes
 * last.safetensors and metrics.csv; the best by validation accuracy (every epoch without
 * validation) goes to model.safetensors. A non-finite loss stops with the NaN tracer's message
 * and leaves the last good checkpoint. The same seed gives bit-identical weights, resumed or not. */
cn_status cn_train(cn_ctx *ctx, cn_net *net, const cn_dataset *ds, const cn_train_config *cfg,
                   cn_train_summary *out);
/* What cn_train checks before it starts (the settings, the images' shape against the net's
 * input, cn_net_check_classes), without training: a caller that creates files for a run can
 * fail before it does. */
cn_status cn_train_check(cn_ctx *ctx, const cn_net *net, const cn_dataset *ds, const cn_train_config *cfg);

typedef struct cn_eval_result {
    int64_t count;
    double loss, acc;
    int32_t classes;
    int64_t *confusion;        /* classes x classes, [true][predicted]; free with cn_eval_free */
} cn_eval_result;

/* Evaluation mode over the whole data set, normalised by mean/std (per channel; NULL: none). */
cn_status cn_evaluate(cn_ctx *ctx, cn_net *net, const cn_dataset *ds, const float *mean, const float *std,
                      int64_t batch, cn_eval_result *out);
/* cn_evaluate with test-time augmentation: the mean of the net's outputs over the views (logits,
 * or probabilities for a net ending in softmax) stands for the net's output, and the loss,
 * accuracy and confusion are those of that mean. */
cn_status cn_evaluate_tta(cn_ctx *ctx, cn_net *net, const cn_dataset *ds, const float *mean, const float *std,
                          int64_t batch, cn_tta tta, cn_eval_result *out);
/* cn_evaluate_tta, and how the net ranked each image's true class: ranks[k] (k from 0 to the
 * classes less 1; room for as many as the net has outputs) the images whose class was its k+1-th
 * most likely (equal outputs: the lower class first; rank 0 is what the accuracy counts), so that
 * the top-k accuracy is (ranks[0] + ... + ranks[k-1]) / count. ranks NULL: cn_evaluate_tta. */
cn_status cn_evaluate_ranks(cn_ctx *ctx, cn_net *net, const cn_dataset *ds, const float *mean, const float *std,
                            int64_t batch, cn_tta tta, cn_eval_result *out, int64_t *ranks);
void cn_eval_free(cn_ctx *ctx, cn_eval_result *r);

/* A class's scores from an evaluation's confusion matrix, as scikit-learn's
 * classification_report defines them: support (its images), predicted (the images predicted as
 * it), correct; recall = correct / support (the accuracy of the class), precision = correct /
 * predicted, F1 = their harmonic mean, 2 correct / (support + predicted). NaN where nothing is
 * counted: precision of a class nothing was predicted as, recall of a class without images, F1
 * of a class with neither. */
typedef struct cn_class_score {
    int64_t support, predicted, correct;
    double precision, recall, f1;
} cn_class_score;
/* per[c] for each of r's classes; avg[0] the macro average (the unweighted mean over the classes
 * with an image or a prediction, a NaN share counted as 0, as scikit-learn's zero_division) and
 * avg[1] the mean weighted by support (whose recall is the accuracy); their counts the totals. */
cn_status cn_class_scores(cn_ctx *ctx, const cn_eval_result *r, cn_class_score *per, cn_class_score avg[2]);

#ifdef __cplusplus
}
#endif
#endif /* CONVNET_H */
