/* conv_ref.h — geometry and reference kernels of convolution, shared with the backends. */
#ifndef CN_CONV_REF_H
#define CN_CONV_REF_H

#include <stdint.h>

typedef struct cn_conv_geom {
    int64_t n, cin, h, w;      /* input */
    int64_t cout, groups;
    int64_t kh, kw, sh, sw, dh, dw;
    int64_t pad_t, pad_l;      /* bottom/right padding follows from oh, ow */
    int64_t oh, ow;            /* output */
} cn_conv_geom;

struct cn_node;
/* The geometry of conv node n reading `in`, at a batch. */
cn_conv_geom cn_conv_geom_of(const struct cn_node *n, const struct cn_node *in, int64_t batch);
/* The convolution whose input gradient deconv node n is (its forward; cn_conv_geom's x is the
 * deconv's output, its y the deconv's input). */
cn_conv_geom cn_deconv_geom_of(const struct cn_node *n, const struct cn_node *in, int64_t batch);

/* y (N,Cout,OH,OW) <- x (N,Cin,H,W) * w (Cout,Cin/groups,Kh,Kw) + b (Cout), b may be NULL */
void cn_conv_forward_ref(const cn_conv_geom *g, const float *x, const float *w, const float *b, float *y);

#endif
