/* test_spec_errors.c — malformed specs, table-driven: each one must fail with the right status
 * and the exact message "FILE:LINE:COL: message" (columns are 1-based bytes, ';' separates
 * statements on one line), and leave the out-parameter NULL. Every line and column below was
 * counted by hand from the spec text, not copied from the parser's output.
 * Then a malloc-failure sweep (as sqlite does): the Nth allocation fails, for every N, while
 * parsing specs with branches; each run must fail with CN_E_NOMEM (or succeed) and free all. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <unistd.h>

#include "convnet.h"
#include "fail_alloc.h"
#include "harness.h"

#define INT_RANGE "from 1 to 2147483647"
#define CONV_USAGE "conv FILTERS KxK [stride=S] [pad=N|same|valid] [dilation=D] [groups=G] [bias=yes|no] [init=HOW]"
#define PAD_RULE "must be same, valid, N or NxM (whole numbers from 0)"
#define LAYER_LIST "<the op table's names>"
#define SHAPE_RULE "shape must be HxWxC (as 28x28x1) with whole numbers " INT_RANGE

typedef struct {
    const char *what;
    const char *text;
    size_t len; /* 0: strlen(text) */
    cn_status status;
    const char *message;
} spec_case;

static const spec_case cases_table[] = {
    /* ---- unknown layers ---- */
    { "conv2d", "input 28x28x1\nconv2d 32 3x3\n", 0, CN_E_PARSE,
      "m.cnn:2:1: unknown layer 'conv2d' (did you mean 'conv'?)" },
    { "maxpooling", "input 28x28x1\nmaxpooling 2x2\n", 0, CN_E_PARSE,
      "m.cnn:2:1: unknown layer 'maxpooling' (did you mean 'maxpool'?)" },
    /* i1..t5 _6 28x28x1 7..13 ;14 _15 conv 16..19 _20 8 21 _22 3x3 23..25 ;26 _27 rellu 28 */
    { "rellu after ';'", "input 28x28x1; conv 8 3x3; rellu", 0, CN_E_PARSE,
      "m.cnn:1:28: unknown layer 'rellu' (did you mean 'relu'?)" },
    { "denes", "input 28x28x1\nflatten\ndenes 10\n", 0, CN_E_PARSE,
      "m.cnn:3:1: unknown layer 'denes' (did you mean 'dense'?)" },
    { "Conv (case)", "input 28x28x1\nConv 8 3x3\n", 0, CN_E_PARSE,
      "m.cnn:2:1: unknown layer 'Conv' (did you mean 'conv'?)" },
    { "no close layer", "input 28x28x1\nfoobar 3\n", 0, CN_E_PARSE,
      "m.cnn:2:1: unknown layer 'foobar'; layers are " LAYER_LIST },

    /* ---- unknown keys: conv 1..4 _5 32 6..7 _8 3x3 9..11 _12 key 13 ---- */
    { "strid=", "input 28x28x1\nconv 32 3x3 strid=2", 0, CN_E_PARSE,
      "m.cnn:2:13: conv: unknown key 'strid' (did you mean 'stride'?)" },
    { "pading=", "input 28x28x1\nconv 32 3x3 pading=1", 0, CN_E_PARSE,
      "m.cnn:2:13: conv: unknown key 'pading' (did you mean 'pad'?)" },
    { "kernal=", "input 28x28x1\nconv 32 kernal=3", 0, CN_E_PARSE,
      "m.cnn:2:9: conv: unknown key 'kernal' (did you mean 'kernel'?)" },
    { "color=", "input 28x28x1\nconv 32 3x3 color=red", 0, CN_E_PARSE,
      "m.cnn:2:13: conv: unknown key 'color'; its keys are: filters, kernel, stride, pad, dilation, groups, bias, init, std" },
    { "relu slope=", "input 28x28x1\nrelu slope=0.1", 0, CN_E_PARSE,
      "m.cnn:2:6: relu: unknown key 'slope'; its keys are: none" },
    /* a key with no name: the message should say what is wrong, not "unknown key ''" */
    { "=3 (no key name)", "input 28x28x1\nconv 32 3x3 =3", 0, CN_E_PARSE,
      "m.cnn:2:13: conv: '=3' has no key name before '='" },

    /* ---- keys given twice, extra words, 'as'/'from' ---- */
    /* stride=1 13..20 _21 stride=2 22 */
    { "stride twice", "input 28x28x1\nconv 32 3x3 stride=1 stride=2", 0, CN_E_PARSE,
      "m.cnn:2:22: conv: stride given twice (first at column 13)" },
    { "filters by position and by key", "input 28x28x1\nconv 32 3x3 filters=16", 0, CN_E_PARSE,
      "m.cnn:2:13: conv: filters given twice (first at column 6)" },
    { "third positional", "input 28x28x1\nconv 32 3x3 5", 0, CN_E_PARSE,
      "m.cnn:2:13: conv: unexpected '5' (usage: " CONV_USAGE ")" },
    /* conv 1..4 _5 8 6 _7 3x3 8..10 _11 as 12..13 _14 a 15 _16 as 17 */
    { "as twice", "input 28x28x1\nconv 8 3x3 as a as b", 0, CN_E_PARSE, "m.cnn:2:17: conv: 'as' given twice" },
    /* from 12..15: the name would start at 16 */
    { "from without name", "input 28x28x1\nconv 8 3x3 from", 0, CN_E_PARSE,
      "m.cnn:2:16: conv: 'from' needs a layer name after it" },
    { "invalid name", "input 28x28x1\nconv 8 3x3 as 1abc", 0, CN_E_PARSE,
      "m.cnn:2:15: '1abc' is not a valid layer name (a letter or _, then letters, digits, _ . or -)" },

    /* ---- missing required values: the column just after the statement's last word ---- */
    { "conv without kernel", "input 28x28x1\nconv 32", 0, CN_E_PARSE,
      "m.cnn:2:8: conv: missing kernel: kernel size K or KhxKw (usage: " CONV_USAGE ")" },
    /* conv 1..4 _5 kernel=3x3 6..15 _16 pad=1 17..21 -> 22 */
    { "conv without filters", "input 28x28x1\nconv kernel=3x3 pad=1", 0, CN_E_PARSE,
      "m.cnn:2:22: conv: missing filters: number of filters (output channels) (usage: " CONV_USAGE ")" },
    { "dense without units", "input 28x28x1\nflatten\ndense", 0, CN_E_PARSE,
      "m.cnn:3:6: dense: missing units: number of outputs (usage: dense UNITS [bias=yes|no] [init=HOW])" },
    /* dropout 16..22 -> 23 */
    { "dropout without keep", "input 28x28x1; dropout", 0, CN_E_PARSE,
      "m.cnn:1:23: dropout: missing keep: probability of keeping a value, in (0, 1]; PyTorch's p is 1 - keep "
      "(usage: dropout keep=P)" },
    /* dropout 16..22 _23 0.2 at 24: PyTorch's habit of a bare p */
    { "dropout with a bare value", "input 28x28x1; dropout 0.2", 0, CN_E_PARSE,
      "m.cnn:1:24: dropout: unexpected '0.2': did you mean keep=0.2 (probability of keeping a value, in (0, 1]; "
      "PyTorch's p is 1 - keep)? (usage: dropout keep=P)" },
    { "dropout with keep and a bare value", "input 28x28x1; dropout keep=0.5 0.2", 0, CN_E_PARSE,
      "m.cnn:1:33: dropout: unexpected '0.2' (usage: dropout keep=P)" },
    { "input without shape", "input", 0, CN_E_PARSE,
      "m.cnn:1:6: input: missing shape: height x width x channels, as 28x28x1 (HxW means one channel) "
      "(usage: input HxWxC)" },
    /* dropout 1..7 _8 keep= 9..13 -> value at 14 */
    { "keep= without value", "input 28x28x1\ndropout keep=", 0, CN_E_PARSE, "m.cnn:2:14: dropout: keep= needs a value" },

    /* ---- bad values: the column of the value ---- */
    { "filters=0", "input 28x28x1\nconv 0 3x3", 0, CN_E_PARSE,
      "m.cnn:2:6: conv: filters must be a whole number " INT_RANGE ", got '0'" },
    /* stride= 13..19 -> 0 at 20 */
    { "stride=0", "input 28x28x1\nconv 32 3x3 stride=0", 0, CN_E_PARSE,
      "m.cnn:2:20: conv: stride must be N or NxM with whole numbers " INT_RANGE ", got '0'" },
    { "3.5 filters", "input 28x28x1\nconv 3.5 3x3", 0, CN_E_PARSE,
      "m.cnn:2:6: conv: filters must be a whole number " INT_RANGE ", got '3.5'" },
    { "conv KxK without filters", "input 28x28x1\nconv 3x3 pad=1", 0, CN_E_PARSE,
      "m.cnn:2:6: conv: filters must be a whole number " INT_RANGE ", got '3x3'" },
    { "20-digit filters", "input 28x28x1\nconv 99999999999999999999 3x3", 0, CN_E_PARSE,
      "m.cnn:2:6: conv: filters must be a whole number " INT_RANGE ", got '99999999999999999999'" },
    { "keep=0", "input 28x28x1\ndropout keep=0", 0, CN_E_PARSE, "m.cnn:2:14: dropout: keep must be > 0 and <= 1, got 0" },
    { "keep=1.5", "input 28x28x1\ndropout keep=1.5", 0, CN_E_PARSE,
      "m.cnn:2:14: dropout: keep must be > 0 and <= 1, got 1.5" },
    /* batchnorm 1..9 _10 eps= 11..14 -> 15 */
    { "eps=-1", "input 28x28x1\nbatchnorm eps=-1", 0, CN_E_PARSE,
      "m.cnn:2:15: batchnorm: eps must be > 0 and <= 1, got -1" },
    { "eps=abc", "input 28x28x1\nbatchnorm eps=abc", 0, CN_E_PARSE, "m.cnn:2:15: batchnorm: eps must be a number, got 'abc'" },
    /* conv 8 3x3 _11 bias= 12..16 -> 17; pad= 12..15 -> 16 */
    { "bias=maybe", "input 28x28x1\nconv 8 3x3 bias=maybe", 0, CN_E_PARSE,
      "m.cnn:2:17: conv: bias must be yes or no, got 'maybe'" },
    { "pad=-1", "input 28x28x1\nconv 8 3x3 pad=-1", 0, CN_E_PARSE, "m.cnn:2:16: conv: pad " PAD_RULE ", got '-1'" },
    { "pad=sam", "input 28x28x1\nconv 8 3x3 pad=sam", 0, CN_E_PARSE, "m.cnn:2:16: conv: pad " PAD_RULE ", got 'sam'" },
    { "shape 28x28x0", "input 28x28x0", 0, CN_E_PARSE, "m.cnn:1:7: input: " SHAPE_RULE ", got '28x28x0'" },
    { "shape 28x", "input 28x", 0, CN_E_PARSE, "m.cnn:1:7: input: " SHAPE_RULE ", got '28x'" },
    { "shape 28", "input 28", 0, CN_E_PARSE, "m.cnn:1:7: input: " SHAPE_RULE ", got '28'" },
    /* the multiplication sign of the worksheets, U+00D7, two bytes */
    { "3\xc3\x97" "3 kernel", "input 28x28x1\nconv 8 3\xc3\x97" "3", 0, CN_E_PARSE,
      "m.cnn:2:8: conv: kernel must be N or NxM with whole numbers " INT_RANGE ", got '3\xc3\x97" "3'" },

    /* ---- names, inputs and the graph ---- */
    /* conv 1..4 _5 8 6 _7 1x1 8..10 _11 from 12..15 _16 brnch1 17 */
    { "from with suggestion", "input 28x28x1\nconv 8 3x3 as branch1\nconv 8 1x1 from brnch1", 0, CN_E_PARSE,
      "m.cnn:3:17: conv: undefined name 'brnch1' (did you mean 'branch1'?)" },
    /* concat 1..6 _7 conv1 8..12 _13 zzz 14 */
    { "concat without suggestion", "input 28x28x1\nconv 8 3x3\nconcat conv1 zzz", 0, CN_E_PARSE,
      "m.cnn:3:14: concat: undefined name 'zzz' (name a layer with 'as zzz' first)" },
    { "add with suggestion", "input 8x8x4 as x\nconv 4 3x3 pad=1 as y\nadd x yy", 0, CN_E_PARSE,
      "m.cnn:3:7: add: undefined name 'yy' (did you mean 'y'?)" },
    { "add without suggestion", "input 8x8x4 as x\nconv 4 3x3 pad=1 as y\nadd x residual", 0, CN_E_PARSE,
      "m.cnn:3:7: add: undefined name 'residual' (name a layer with 'as residual' first)" },
    { "duplicate as", "input 28x28x1\nconv 8 3x3 as a\nconv 8 3x3 as a", 0, CN_E_PARSE,
      "m.cnn:3:15: name 'a' already used at line 2" },
    /* a reads b and b reads a: data flows b -> a -> b */
    { "cycle of two", "input 28x28x1\nconv 8 3x3 pad=1 from b as a\nconv 8 3x3 pad=1 from a as b", 0, CN_E_PARSE,
      "m.cnn:2:1: cycle: a -> b -> a (a layer cannot read its own output)" },
    { "cycle of one", "input 28x28x1\nconv 8 3x3 pad=1 from a as a", 0, CN_E_PARSE,
      "m.cnn:2:1: cycle: a -> a (a layer cannot read its own output)" },
    { "unused branch", "input 28x28x1\nconv 8 3x3 as a\nconv 8 3x3 from input as b", 0, CN_E_PARSE,
      "m.cnn:2:1: 'a' is never used: the output is the last line ('b') and nothing leading to it reads 'a'" },
    { "first layer not input", "conv 8 3x3\nrelu", 0, CN_E_PARSE,
      "m.cnn:1:1: the first layer must be 'input HxWxC' (e.g. input 28x28x1), not 'conv'" },
    { "two inputs", "input 28x28x1\ninput 28x28x1", 0, CN_E_PARSE,
      "m.cnn:2:1: only one input layer is supported (the first is at line 1)" },
    /* from 15 */
    { "from on input", "input 28x28x1 from x", 0, CN_E_PARSE,
      "m.cnn:1:15: input: the input reads no layer ('from' not allowed)" },
    { "concat of one", "input 28x28x1\nconv 8 3x3 as a\nconcat a", 0, CN_E_PARSE,
      "m.cnn:3:1: concat: needs two or more layer names (usage: concat NAME NAME...)" },
    /* concat 1..6 _7 a 8 _9 b 10 _11 from 12 */
    { "concat with from", "input 28x28x1\nconv 8 3x3 as a\nconv 8 3x3 from input as b\nconcat a b from a", 0,
      CN_E_PARSE, "m.cnn:4:12: concat: write the layers it reads as names: concat NAME NAME..." },

    /* ---- shapes ---- */
    /* add 1..3 _4 a 5 _6 b 7 */
    { "add 16 vs 32 channels",
      "input 32x32x3\nconv 16 3x3 pad=1 as a\nconv 32 3x3 pad=1 from input as b\nadd a b", 0, CN_E_SHAPE,
      "m.cnn:4:7: add: 'a' has 16 channels but 'b' has 32" },
    /* a: 32 - 3 + 2 + 1 = 32; b: 32 - 3 + 1 = 30 */
    { "add of different heights", "input 32x32x3\nconv 8 3x3 pad=1 as a\nconv 8 3x3 from input as b\nadd a b", 0,
      CN_E_SHAPE, "m.cnn:4:7: add: 'a' is 32x32 but 'b' is 30x30" },
    /* b: maxpool 2x2 (stride 2) of 32 = 16 */
    { "concat of different heights", "input 32x32x3\nconv 8 3x3 pad=1 as a\nmaxpool 2x2 from input as b\nconcat a b",
      0, CN_E_SHAPE, "m.cnn:4:10: concat: 'b' is 16x16 but 'a' is 32x32 (heights and widths must match)" },
    /* ---- geometric layers: upsample 1..8 _9 2 10 _11, keys from 12; deconv 1..6 _7 3 8 _9 3x3 10..12 _13 ---- */
    { "upsample without scale or size", "input 8x8x1\nupsample mode=bilinear", 0, CN_E_PARSE,
      "m.cnn:2:1: upsample: give a scale or size=HxW, one of them" },
    { "upsample with scale and size", "input 8x8x1\nupsample 2 size=16x16", 0, CN_E_PARSE,
      "m.cnn:2:12: upsample: give a scale or size=HxW, not both" },
    { "upsample nearest with align_corners", "input 8x8x1\nupsample 2 align_corners=yes", 0, CN_E_PARSE,
      "m.cnn:2:12: upsample: align_corners is for mode=bilinear only (as PyTorch)" },
    /* mode= 12..16, its value at 17 */
    { "upsample mode=bicubic", "input 8x8x1\nupsample 2 mode=bicubic", 0, CN_E_PARSE,
      "m.cnn:2:17: upsample: mode must be one of nearest, bilinear, got 'bicubic'" },
    /* stride=2 14..21 _22 outpad=2 23 */
    { "deconv outpad 2 with stride 2", "input 4x4x2\ndeconv 3 3x3 stride=2 outpad=2", 0, CN_E_SHAPE,
      "m.cnn:2:23: deconv: outpad 2x2 must be smaller than stride 2x2 or dilation 1x1" },
    { "deconv pad=same", "input 4x4x2\ndeconv 3 3x3 pad=same", 0, CN_E_SHAPE,
      "m.cnn:2:14: deconv: pad must be N or NhxNw (same and valid are for conv)" },
    /* (1 - 1)*1 - 2*1 + (1 - 1) + 0 + 1 = -1 */
    { "deconv padded away", "input 1x1x2\ndeconv 3 1x1 pad=1", 0, CN_E_SHAPE,
      "m.cnn:2:14: deconv: pad 1x1 leaves an output of -1x-1" },
    /* mul 1..3 _4 x 5 _6 g 7 */
    { "mul gate of other channels", "input 8x8x3 as x\nglobalavgpool\nconv 4 1x1 as g\nmul x g", 0, CN_E_SHAPE,
      "m.cnn:4:7: mul: 'x' has 3 channels but 'g' has 4" },
    { "mul of 8x8 and 2x2 (only 1x1 broadcasts)", "input 8x8x3 as x\nmaxpool 4x4 as p\nmul x p", 0, CN_E_SHAPE,
      "m.cnn:3:7: mul: 'x' is 8x8 but 'p' is 2x2" },
    /* pad 1..3 _4 3 5 _6 mode 7 */
    { "pad reflect as wide as the input", "input 3x3x1\npad 3 mode=reflect", 0, CN_E_SHAPE,
      "m.cnn:2:7: pad: reflect needs every side smaller than the input 3x3, got top 3 bottom 3 left 3 right 3" },
    { "pad to a smaller size", "input 8x8x1\npad size=4x4", 0, CN_E_SHAPE,
      "m.cnn:2:5: pad: size 4x4 is smaller than the input 8x8 (crop cuts)" },
    /* shuffle 1..7 _8 4 9; channels 1..8 _9 5 10 _11 start=2 12 */
    { "shuffle groups that do not divide", "input 8x8x6\nshuffle 4", 0, CN_E_SHAPE,
      "m.cnn:2:9: shuffle: 4 groups do not divide the 6 channels" },
    { "channels past the input's", "input 8x8x6\nchannels 5 start=2", 0, CN_E_SHAPE,
      "m.cnn:2:10: channels: 5 from channel 2 reach past the input's 6 channels" },
    { "channels starting past the input's", "input 8x8x6\nchannels 1 start=6", 0, CN_E_SHAPE,
      "m.cnn:2:12: channels: 1 from channel 6 reach past the input's 6 channels" },
    /* crop 1..4 _5 9x4 6 */
    { "crop larger than the input", "input 8x8x1\ncrop 9x4", 0, CN_E_SHAPE,
      "m.cnn:2:6: crop: size 9x4 is larger than the input 8x8" },
    { "crop of nothing", "input 8x8x1\ncrop", 0, CN_E_PARSE,
      "m.cnn:2:1: crop: give a size HxW, margin=N or top=/bottom=/left=/right= (usage: crop HxW [offset=YxX] | "
      "crop margin=N|top=N bottom=N left=N right=N)" },
    /* 4x4 6..8 _9 offset 10 */
    { "crop past the input", "input 8x8x1\ncrop 4x4 offset=5x0", 0, CN_E_SHAPE,
      "m.cnn:2:10: crop: 4x4 at offset 5x0 reaches past the input 8x8" },
    { "crop offset without a size", "input 8x8x1\ncrop offset=1x1", 0, CN_E_PARSE,
      "m.cnn:2:6: crop: offset= places a size: write the size too (crop HxW offset=YxX)" },
    { "crop margins leave nothing", "input 8x8x1\ncrop margin=4", 0, CN_E_SHAPE,
      "m.cnn:2:1: crop: top 4 + bottom 4 and left 4 + right 4 leave nothing of 8x8" },
    /* conv 1..4 _5 4 6 _7 7x7 8 */
    { "kernel 7x7 on 5x5", "input 5x5x1\nconv 4 7x7", 0, CN_E_SHAPE,
      "m.cnn:2:8: conv: kernel 7x7 larger than padded input 5x5" },
    { "kernel 8x8 on 5x5 pad 1", "input 5x5x1\nconv 4 8x8 pad=1", 0, CN_E_SHAPE,
      "m.cnn:2:8: conv: kernel 8x8 larger than padded input 7x7" },
    { "kernel 7x3 on 5x8", "input 5x8x1\nconv 4 7x3", 0, CN_E_SHAPE,
      "m.cnn:2:8: conv: kernel 7x3 larger than padded input 5x8" },
    /* 3 * (3 - 1) + 1 = 7 > 5 */
    { "dilated kernel", "input 5x5x1\nconv 4 3x3 dilation=3", 0, CN_E_SHAPE,
      "m.cnn:2:8: conv: dilated kernel 7x7 (3x3, dilation 3x3) larger than padded input 5x5" },
    /* conv 1..4 _5 8 6 _7 3x3 8..10 _11 groups=4 12 */
    { "groups vs channels", "input 8x8x6\nconv 8 3x3 groups=4", 0, CN_E_SHAPE,
      "m.cnn:2:12: conv: 6 input channels are not divisible by groups=4" },
    { "groups vs filters", "input 8x8x4\nconv 6 3x3 groups=4", 0, CN_E_SHAPE,
      "m.cnn:2:12: conv: 6 filters are not divisible by groups=4" },
    { "groups vs one channel", "input 8x8x1\nconv 6 3x3 groups=3", 0, CN_E_SHAPE,
      "m.cnn:2:12: conv: 1 input channel is not divisible by groups=3" },
    /* maxpool 1..7 _8 2x2 9..11 _12 pad=2 13 */
    { "pool pad more than half", "input 8x8x1\nmaxpool 2x2 pad=2", 0, CN_E_SHAPE,
      "m.cnn:2:13: maxpool: pad=2x2 is more than half the 2x2 window (a window would see only padding)" },
    /* the layers of issue 15. groupnorm 1..9 _10 4 11 */
    { "groupnorm groups vs channels", "input 8x8x6\ngroupnorm 4", 0, CN_E_SHAPE,
      "m.cnn:2:11: groupnorm: 4 groups do not divide the input's 6 channels" },
    { "groupnorm without groups", "input 8x8x6\ngroupnorm", 0, CN_E_PARSE,
      "m.cnn:2:10: groupnorm: missing groups: number of channel groups, dividing the channels (usage: groupnorm "
      "GROUPS [eps=1e-5] [affine=yes|no] [init=1])" },
    /* gelu 1..4 _5 approximate= 6..17 -> exact at 18 */
    { "gelu approximate=exact", "input 8x8x1\ngelu approximate=exact", 0, CN_E_PARSE,
      "m.cnn:2:18: gelu: approximate must be one of none, tanh, got 'exact'" },
    /* a prefix of a choice is not the choice: approximate=tan */
    { "gelu approximate=tan", "input 8x8x1\ngelu approximate=tan", 0, CN_E_PARSE,
      "m.cnn:2:18: gelu: approximate must be one of none, tanh, got 'tan'" },
    /* layernorm 1..9 _10 over= 11..15 -> rows at 16 */
    { "layernorm over=rows", "input 8x8x2\nlayernorm over=rows", 0, CN_E_PARSE,
      "m.cnn:2:16: layernorm: over must be one of all, channels, got 'rows'" },
    /* init= of a layer with weights. conv 1..4 _5 8 6 _7 3x3 8..10 _11 init= 12..16 -> at 17 */
    { "conv init=gaussian", "input 8x8x1\nconv 8 3x3 init=gaussian", 0, CN_E_PARSE,
      "m.cnn:2:17: conv: init must be one of net, kaiming, kaiming-uniform, xavier, xavier-uniform, torch, "
      "zero, normal, trunc-normal, got 'gaussian'" },
    /* dense 1..5 _6 4 7 _8 init=xavier 9..19 _20 std=0.1 at 21 */
    { "dense std= without a normal", "input 8x8x1\ndense 4 init=xavier std=0.1", 0, CN_E_PARSE,
      "m.cnn:2:21: dense: std= is read by init=normal and init=trunc-normal (init=xavier)" },
    /* deconv 1..6 _7 4 8 _9 2x2 10..12 _13 init=normal 14..24 _25 std= 26..29 -> -1 at 30 */
    { "deconv std=-1", "input 8x8x1\ndeconv 4 2x2 init=normal std=-1", 0, CN_E_PARSE,
      "m.cnn:2:30: deconv: std must be >= 0 and <= 1e+30, got -1" },
    /* instancenorm 1..12 _13 init=0 at 14 */
    { "instancenorm init= without gamma", "input 8x8x2\ninstancenorm init=0", 0, CN_E_PARSE,
      "m.cnn:2:14: instancenorm: init= is where gamma starts, and affine=no has no gamma" },
    /* adaptiveavgpool 1..15 _16 0x2 17 */
    { "adaptiveavgpool 0x2", "input 8x8x1\nadaptiveavgpool 0x2", 0, CN_E_PARSE,
      "m.cnn:2:17: adaptiveavgpool: size must be N or NxM with whole numbers " INT_RANGE ", got '0x2'" },
    /* avgpool has no dilation (PyTorch's avg_pool2d has none): avgpool 1..7 _8 3x3 9..11 _12 dilation 13 */
    { "avgpool dilation=", "input 8x8x1\navgpool 3x3 dilation=2", 0, CN_E_PARSE,
      "m.cnn:2:13: avgpool: unknown key 'dilation'; its keys are: kernel, stride, pad, ceil, count_pad" },
    /* 2 * (3 - 1) + 1 = 5 > 4 */
    { "dilated pool window", "input 4x4x1\nmaxpool 3x3 dilation=2", 0, CN_E_SHAPE,
      "m.cnn:2:9: maxpool: dilated kernel 5x5 (3x3, dilation 2x2) larger than padded input 4x4" },
    { "pool window larger", "input 3x3x1\nmaxpool 4x4", 0, CN_E_SHAPE,
      "m.cnn:2:9: maxpool: kernel 4x4 larger than padded input 3x3" },
    /* a tab is one byte: conv at 2, 9x9 at 9 */
    { "tab before layer", "input 5x5x1\n\tconv 8 9x9", 0, CN_E_SHAPE,
      "m.cnn:2:9: conv: kernel 9x9 larger than padded input 5x5" },
    { "CRLF lines", "input 5x5x1\r\nconv 8 9x9\r\n", 0, CN_E_SHAPE,
      "m.cnn:2:8: conv: kernel 9x9 larger than padded input 5x5" },
    { "comments", "# a net\ninput 5x5x1 # the image\n\nconv 8 9x9 # too big\n", 0, CN_E_SHAPE,
      "m.cnn:4:8: conv: kernel 9x9 larger than padded input 5x5" },
    /* a UTF-8 byte-order mark before the first line: skipped, columns counted after it */
    { "byte-order mark", "\xEF\xBB\xBFinput 5x5x1\nconv 8 9x9", 0, CN_E_SHAPE,
      "m.cnn:2:8: conv: kernel 9x9 larger than padded input 5x5" },
    { "byte-order mark, first line", "\xEF\xBB\xBFinput 5x5x1 pad=1", 0, CN_E_PARSE, "m.cnn:1:13: input: unknown key 'pad'; its keys are: shape" },

    /* ---- 64-bit overflow ---- */
    /* 2e9 * 2e9 * 2e9 = 8e27 > 9.2e18 */
    { "input of 8e27 values", "input 2000000000x2000000000x2000000000", 0, CN_E_OVERFLOW,
      "m.cnn:1:1: input: output 2000000000x2000000000x2000000000 has more elements than 64 bits can count" },
    /* 4e18 values fit in int64; their 1.6e19 bytes do not: the message must not claim the count overflows */
    { "input of 4e18 values", "input 2000000000x2000000000x1", 0, CN_E_OVERFLOW,
      "m.cnn:1:1: input: output 2000000000x2000000000x1 takes more bytes than 64 bits can count" },
    /* (1 + 2*2147483647 - 1)/1 + 1 = 4294967295 per side; 4294967295^2 > 2^63 */
    { "huge padding", "input 1x1x1\nconv 8 1x1 pad=2147483647", 0, CN_E_OVERFLOW,
      "m.cnn:2:1: conv: output 4294967295x4294967295x8 has more elements than 64 bits can count" },
    /* output 1e6*1e6*1e5 = 1e17 values (fits), MACs 1e17 * 1000 = 1e20 (does not) */
    { "MAC overflow", "input 1000000x1000000x1000\nconv 100000 1x1", 0, CN_E_OVERFLOW,
      "m.cnn:2:1: conv: parameter or MAC count overflows" },

    /* ---- empty text, odd bytes ---- */
    { "empty spec", "", 0, CN_E_PARSE, "m.cnn:1:1: empty spec: it needs at least 'input HxWxC'" },
    { "semicolons only", " ; ;", 0, CN_E_PARSE, "m.cnn:1:1: empty spec: it needs at least 'input HxWxC'" },
    /* two lines, each ending in '\n': the message should name the last line, 2, not a line 3 */
    { "only comments", "# a comment\n# another\n", 0, CN_E_PARSE,
      "m.cnn:2:1: empty spec: it needs at least 'input HxWxC'" },
    /* conv 1..4 _5 8 6 \x01 7 */
    { "control character", "input 28x28x1\nconv 8\x01 3x3", 0, CN_E_PARSE,
      "m.cnn:2:7: unexpected control character 0x01" },
    /* conv 1..4 _5 8 6 _7 3x3 8..10 NUL 11 */
    { "NUL byte", "input 28x28x1\nconv 8 3x3\0 pad=1", sizeof "input 28x28x1\nconv 8 3x3\0 pad=1" - 1, CN_E_PARSE,
      "m.cnn:2:11: unexpected control character 0x00" },
};

#define N_CASES ((int)(sizeof cases_table / sizeof cases_table[0]))

/* want, with LAYER_LIST replaced by the op table's names in its order (the first word of each
 * layer type's usage), so that a new op changes no message here */
static const char *expected(const char *want, char *buf, size_t cap)
{
    const char *at = strstr(want, LAYER_LIST);
    if (!at) return want;
    size_t n = (size_t)snprintf(buf, cap, "%.*s", (int)(at - want), want);
    for (int t = 0; t < cn_layer_type_count() && n < cap; t++) {
        const char *u = cn_layer_type_usage(t);
        n += (size_t)snprintf(buf + n, cap - n, "%s%.*s", t ? ", " : "", (int)strcspn(u, " "), u);
    }
    if (n < cap) snprintf(buf + n, cap - n, "%s", at + strlen(LAYER_LIST));
    return buf;
}

static void test_table(void)
{
    cn_ctx *ctx;
    CHECK_INT(cn_ctx_create(NULL, &ctx), CN_OK);
    for (int i = 0; i < N_CASES; i++) {
        const spec_case *c = &cases_table[i];
        size_t len = c->len ? c->len : strlen(c->text);
        cn_net *net = (cn_net *)&net; /* not NULL: the parser must clear it */
        int before = test_failures;
        cn_status st = cn_net_parse(ctx, c->text, len, "m.cnn", &net);
        CHECK_INT(st, c->status);
        CHECK_INT(cn_ctx_status(ctx), c->status);
        CHECK(net == NULL);
        char want[1024];
        CHECK_STR(cn_ctx_message(ctx), expected(c->message, want, sizeof want));
        if (test_failures != before) fprintf(stderr, "  ^ in case %d: %s\n", i + 1, c->what);
        if (st == CN_OK) cn_net_destroy(net);
    }
    cn_ctx_destroy(ctx);
}

/* Specs too long to write in the table. */
static void test_generated_specs(void)
{
    cn_ctx *ctx;
    CHECK_INT(cn_ctx_create(NULL, &ctx), CN_OK);
    size_t cap = 8192;
    char *text = malloc(cap);
    CHECK(text != NULL);
    if (!text) return;

    /* a word of 5000 letters; 'as' 12..13, the word starts at 15 */
    int n = snprintf(text, cap, "input 28x28x1\nconv 8 3x3 as ");
    memset(text + n, 'a', 5000);
    text[n + 5000] = '\0';
    cn_net *net = (cn_net *)&net;
    CHECK_INT(cn_net_parse(ctx, text, strlen(text), "m.cnn", &net), CN_E_PARSE);
    CHECK(net == NULL);
    CHECK_STR(cn_ctx_message(ctx), "m.cnn:2:15: word of 5000 characters is longer than 4096 (the limit)");

    /* 71 lines: input, layer1..layer69 (lines 2..70), then a typo of layer68 on line 71.
     * add 1..3 _4 layer69 5..11 _12 layr68 13. The closest name is layer68 (one letter);
     * layer6 is two edits away and must not win because layer68 comes late in the file. */
    n = snprintf(text, cap, "input 4x4x1 as x\n");
    for (int k = 1; k <= 69; k++) n += snprintf(text + n, cap - (size_t)n, "relu as layer%d\n", k);
    n += snprintf(text + n, cap - (size_t)n, "add layer69 layr68\n");
    net = (cn_net *)&net;
    CHECK_INT(cn_net_parse(ctx, text, (size_t)n, "m.cnn", &net), CN_E_PARSE);
    CHECK(net == NULL);
    CHECK_STR(cn_ctx_message(ctx), "m.cnn:71:13: add: undefined name 'layr68' (did you mean 'layer68'?)");
    /* and with the name right, it parses */
    n -= (int)strlen("layr68\n");
    n += snprintf(text + n, cap - (size_t)n, "layer68\n");
    net = NULL;
    CHECK_INT(cn_net_parse(ctx, text, (size_t)n, "m.cnn", &net), CN_OK);
    CHECK_INT(cn_net_layer_count(net), 71);
    cn_net_destroy(net);

    free(text);
    cn_ctx_destroy(ctx);
}

/* ---- limits: a spec costs time in proportion to its text ------------------------------------
 * The limits are refused where the parser reaches them, and names go through a hash table, so
 * none of these specs takes more than a few milliseconds; the checks are on the outcome (the
 * exact message, the layer count), never on a clock. */

#define LIMIT 10000 /* CN_MAX_LAYERS */

/* text of "input 4x4x1" and then `lines` more lines made by line(k, buf) for k = 1..lines */
static char *make_spec(int lines, int (*line)(int k, char *buf, size_t cap), size_t *len)
{
    size_t cap = 64 + (size_t)lines * 32;
    char *text = malloc(cap);
    CHECK(text != NULL);
    if (!text) return NULL;
    size_t n = (size_t)snprintf(text, cap, "input 4x4x1 as x\n");
    for (int k = 1; k <= lines; k++) n += (size_t)line(k, text + n, cap - n);
    *len = n;
    return text;
}

static int relu_line(int k, char *buf, size_t cap) { return (void)k, snprintf(buf, cap, "relu\n"); }
static int named_line(int k, char *buf, size_t cap) { return snprintf(buf, cap, "relu as l%d\n", k); }
/* line 9000 (k = 8999) takes the name of line 2 (k = 1) */
static int dup_line(int k, char *buf, size_t cap) { return snprintf(buf, cap, "relu as l%d\n", k == 8999 ? 1 : k); }

static cn_status parse_text(cn_ctx *ctx, const char *text, size_t len, int *layers)
{
    cn_net *net = (cn_net *)&net;
    cn_status st = cn_net_parse(ctx, text, len, "m.cnn", &net);
    *layers = st == CN_OK ? cn_net_layer_count(net) : -1;
    if (st == CN_OK) cn_net_destroy(net);
    else CHECK(net == NULL);
    return st;
}

static void test_layer_limit(void)
{
    cn_ctx *ctx;
    CHECK_INT(cn_ctx_create(NULL, &ctx), CN_OK);
    size_t len = 0;
    int layers;
    /* the input and 9,999 relus: exactly the limit */
    char *text = make_spec(LIMIT - 1, relu_line, &len);
    if (!text) return;
    CHECK_INT(parse_text(ctx, text, len, &layers), CN_OK);
    CHECK_INT(layers, LIMIT);
    free(text);
    /* one more: refused at its line (10,001), column 1 */
    text = make_spec(LIMIT, relu_line, &len);
    if (!text) return;
    CHECK_INT(parse_text(ctx, text, len, &layers), CN_E_PARSE);
    CHECK_STR(cn_ctx_message(ctx), "m.cnn:10001:1: more than 10000 layers (the limit)");
    /* indented by two spaces: column 3 */
    memmove(text + len - 5 + 2, text + len - 5, 5);
    memcpy(text + len - 5, "  ", 2);
    CHECK_INT(parse_text(ctx, text, len + 2, &layers), CN_E_PARSE);
    CHECK_STR(cn_ctx_message(ctx), "m.cnn:10001:3: more than 10000 layers (the limit)");
    free(text);
    /* 200,000 layers (1 MB): the same message, the parser stops at line 10,001 */
    text = make_spec(200000, relu_line, &len);
    if (!text) return;
    CHECK(len > 1000000);
    CHECK_INT(parse_text(ctx, text, len, &layers), CN_E_PARSE);
    CHECK_STR(cn_ctx_message(ctx), "m.cnn:10001:1: more than 10000 layers (the limit)");
    free(text);
    /* 200,000 statements on one line after the input: "relu;" is 5 bytes, so the 10,000th relu
     * (the 10,001st layer) starts at column 1 + 5 * 9999 = 49996 of line 2 */
    len = strlen("input 4x4x1\n") + 5 * (size_t)200000;
    text = malloc(len + 1);
    CHECK(text != NULL);
    if (!text) return;
    size_t n = (size_t)sprintf(text, "input 4x4x1\n");
    for (int k = 0; k < 200000; k++) n += (size_t)sprintf(text + n, "relu;");
    CHECK_INT(parse_text(ctx, text, n, &layers), CN_E_PARSE);
    CHECK_STR(cn_ctx_message(ctx), "m.cnn:2:49996: more than 10000 layers (the limit)");
    free(text);
    cn_ctx_destroy(ctx);
}

static void test_many_names(void)
{
    cn_ctx *ctx;
    CHECK_INT(cn_ctx_create(NULL, &ctx), CN_OK);
    size_t len = 0;
    int layers;
    /* x, then l1..l8999 on lines 2..9000, then 'add l1 l8999' reads the first and the last: 9,001
     * layers, every name looked up among 9,000 */
    char *text = make_spec(8999, named_line, &len);
    if (!text) return;
    char *grown = realloc(text, len + 32);
    CHECK(grown != NULL);
    if (!grown) {
        free(text);
        return;
    }
    text = grown;
    len += (size_t)sprintf(text + len, "add l1 l8999\n");
    CHECK_INT(parse_text(ctx, text, len, &layers), CN_OK);
    CHECK_INT(layers, 9001);
    /* a typo on line 9001, 'l8990x' (one letter from l8990): add 1..3 _4 l1 5..6 _7 -> 8 */
    len -= strlen("l8999\n");
    len += (size_t)sprintf(text + len, "l8990x\n");
    CHECK_INT(parse_text(ctx, text, len, &layers), CN_E_PARSE);
    CHECK_STR(cn_ctx_message(ctx), "m.cnn:9001:8: add: undefined name 'l8990x' (did you mean 'l8990'?)");
    free(text);
    /* line 9000 repeats the name of line 2: relu 1..4 _5 as 6..7 _8 -> the name at 9 */
    text = make_spec(8999, dup_line, &len);
    if (!text) return;
    CHECK_INT(parse_text(ctx, text, len, &layers), CN_E_PARSE);
    CHECK_STR(cn_ctx_message(ctx), "m.cnn:9000:9: name 'l1' already used at line 2");
    free(text);
    cn_ctx_destroy(ctx);
}

/* A cycle through 20 layers: l1 reads l20, each other lk reads l(k-1). The message shows the
 * data's path from l1 for 8 layers, then how many are left before it closes. */
static void test_long_cycle(void)
{
    char text[1024];
    int n = snprintf(text, sizeof text, "input 4x4x1\nrelu from l20 as l1\n");
    for (int k = 2; k <= 20; k++) n += snprintf(text + n, sizeof text - (size_t)n, "relu as l%d\n", k);
    cn_ctx *ctx;
    int layers;
    CHECK_INT(cn_ctx_create(NULL, &ctx), CN_OK);
    CHECK_INT(parse_text(ctx, text, (size_t)n, &layers), CN_E_PARSE);
    CHECK_STR(cn_ctx_message(ctx), "m.cnn:2:1: cycle: l1 -> l2 -> l3 -> l4 -> l5 -> l6 -> l7 -> l8 -> l9 -> "
                                   "... (11 more) -> l1 (a layer cannot read its own output)");
    cn_ctx_destroy(ctx);
}

/* One line that never ends: a million words, a word of a megabyte, a concat of 81 names. */
static void test_line_limits(void)
{
    cn_ctx *ctx;
    CHECK_INT(cn_ctx_create(NULL, &ctx), CN_OK);
    size_t cap = 4 * 1000000 + 64;
    char *text = malloc(cap);
    CHECK(text != NULL);
    if (!text) return;
    int layers;
    /* concat 1..6, then word k >= 2 ('a') at column 8 + 2 (k - 2): the 96th word (CN_MAX_WORDS
     * = 1 + 10 keys + 4 + 80 inputs = 95) at 196 */
    size_t n = (size_t)sprintf(text, "input 4x4x1 as a\nconcat");
    for (int k = 0; k < 1000000; k++) n += (size_t)sprintf(text + n, " a");
    CHECK_INT(parse_text(ctx, text, n, &layers), CN_E_PARSE);
    CHECK_STR(cn_ctx_message(ctx), "m.cnn:2:196: more than 95 words in one statement (the limit)");
    /* 81 names: the 81st (word 82) at column 8 + 2 * 80 = 168; 80 names parse, 80 channels */
    n = (size_t)sprintf(text, "input 4x4x1 as a\nconcat");
    for (int k = 0; k < 81; k++) n += (size_t)sprintf(text + n, " a");
    CHECK_INT(parse_text(ctx, text, n, &layers), CN_E_PARSE);
    CHECK_STR(cn_ctx_message(ctx), "m.cnn:2:168: concat: reads more than 80 layers (the limit)");
    cn_net *net = NULL;
    CHECK_INT(cn_net_parse(ctx, text, n - 2, "m.cnn", &net), CN_OK);
    if (net) {
        cn_layer_info li;
        CHECK_INT(cn_net_layer(ctx, net, 1, 1, &li), CN_OK);
        CHECK_INT(li.c, 80);
    }
    cn_net_destroy(net);
    /* a name of 2^20 bytes: input 1..5 _6 4x4x1 7..11 _12 as 13..14 _15 -> 16 */
    n = (size_t)sprintf(text, "input 4x4x1 as ");
    memset(text + n, 'a', (size_t)1 << 20);
    n += (size_t)1 << 20;
    CHECK_INT(parse_text(ctx, text, n, &layers), CN_E_PARSE);
    CHECK_STR(cn_ctx_message(ctx), "m.cnn:1:16: word of 1048576 characters is longer than 4096 (the limit)");
    free(text);
    cn_ctx_destroy(ctx);
}

/* A few specs close to the broken ones above parse: the failures come from the one flaw. */
static void test_fixed_specs_parse(void)
{
    static const char *const ok[] = {
        "input 28x28x1; conv 8 3x3; relu",
        "input 28x28x1\nconv 32 3x3 stride=2 pad=same dilation=1 groups=1 bias=no",
        "input 28x28x1\ndropout keep=1",
        "input 28x28x1\nbatchnorm eps=1e-3",
        "input 8x8x4 as x\nconv 4 3x3 pad=1 as y\nadd x y",
        "input 32x32x3\nconv 8 3x3 pad=1 as a\nmaxpool 2x2 stride=1 pad=same from input as b\nconcat a b",
        "input 5x5x1\nconv 4 5x5",
        "input 8x8x1\nmaxpool 2x2 pad=1",
        "input 2000000000x1000000000x1",
        "# a comment\ninput 28x28x1 # trailing\n",
        "\xEF\xBB\xBFinput 28x28x1\nconv 8 3x3", /* a byte-order mark, as Notepad writes one */
    };
    cn_ctx *ctx;
    CHECK_INT(cn_ctx_create(NULL, &ctx), CN_OK);
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cn_net *net = NULL;
        cn_status st = cn_net_parse(ctx, ok[i], strlen(ok[i]), "m.cnn", &net);
        if (st) fprintf(stderr, "  spec %zu: %s\n", i + 1, cn_ctx_message(ctx));
        CHECK_INT(st, CN_OK);
        CHECK(net != NULL);
        cn_net_destroy(net);
    }
    cn_ctx_destroy(ctx);
}

/* ---- malloc-failure sweep ------------------------------------------------------------------ */


/* Inception-style concat and a residual add, with 'as' and 'from'. */
static const char branch_spec[] = "input 32x32x3 as x\n"
                                  "conv 8 3x3 pad=1 as a\n"
                                  "conv 8 1x1 from x as b\n"
                                  "maxpool 3x3 stride=1 pad=1 from x as c\n"
                                  "concat a b c as cat   # 8 + 8 + 3 = 19 channels\n"
                                  "conv 16 1x1 as d\n"
                                  "conv 16 3x3 pad=1 from cat as e\n"
                                  "add d e; relu\n"
                                  "flatten\n"
                                  "dense 10\n";
/* params: a (27+1)*8 = 224, b (3+1)*8 = 32, d (19+1)*16 = 320, e (9*19+1)*16 = 2752,
 * dense (16384+1)*10 = 163850; total 167178 */
#define BRANCH_LAYERS 11
#define BRANCH_PARAMS 167178

/* The same net broken at its last line: add of 16 and 19 channels. */
static const char broken_spec[] = "input 32x32x3 as x\n"
                                  "conv 8 3x3 pad=1 as a\n"
                                  "conv 8 1x1 from x as b\n"
                                  "maxpool 3x3 stride=1 pad=1 from x as c\n"
                                  "concat a b c as cat\n"
                                  "conv 16 1x1 as d\n"
                                  "add d cat\n";
#define BROKEN_MESSAGE "m.cnn:7:7: add: 'd' has 16 channels but 'cat' has 19"

/* Fails allocation N = 0, 1, 2, ... of parse (or load when path is set) until it succeeds
 * with no failure injected. Every run: NOMEM or the spec's own result, out NULL on failure,
 * nothing left allocated after destroy. */
static void sweep(const char *text, const char *path, cn_status final, const char *final_message)
{
    fail_alloc fa = { 0, -1, 0, 0 };
    cn_allocator alloc = { fa_malloc, fa_realloc, fa_free, &fa };
    int done = 0;
    long n;
    for (n = 0; n < 100000 && !done; n++) {
        cn_ctx *ctx = NULL;
        fa = (fail_alloc){ 0, -1, 0, 0 };
        if (cn_ctx_create(&alloc, &ctx) != CN_OK) {
            CHECK(0);
            return;
        }
        fa.calls = 0;
        fa.fail_at = n;
        cn_net *net = (cn_net *)&net;
        cn_status st = path ? cn_net_load_spec(ctx, path, &net) : cn_net_parse(ctx, text, strlen(text), "m.cnn", &net);
        int injected = fa.calls > n;
        fa.fail_at = -1;
        int before = test_failures;
        if (injected) {
            CHECK_INT(st, CN_E_NOMEM);
            CHECK_INT(cn_ctx_status(ctx), st);
            CHECK(strlen(cn_ctx_message(ctx)) > 0);
        } else {
            done = 1;
            CHECK_INT(st, final);
            if (final_message) CHECK_STR(cn_ctx_message(ctx), final_message);
        }
        if (st == CN_OK) {
            CHECK(net != NULL);
            if (net && net != (cn_net *)&net) {
                cn_totals t;
                CHECK_INT(cn_net_layer_count(net), BRANCH_LAYERS);
                CHECK_INT(cn_net_totals(ctx, net, 1, &t), CN_OK);
                CHECK_INT(t.params, BRANCH_PARAMS);
            }
        } else {
            CHECK(net == NULL);
        }
        if (st == CN_OK && net != (cn_net *)&net) cn_net_destroy(net);
        cn_ctx_destroy(ctx);
        CHECK_INT(fa.live, 0);
        CHECK_INT(fa.bad_free, 0);
        if (test_failures != before) {
            fprintf(stderr, "  ^ with allocation %ld failing (status %s)\n", n, cn_status_name(st));
            return;
        }
    }
    CHECK(done);
    CHECK(n > 10); /* the parse allocates: the sweep really failed something */
}

static void test_malloc_sweep_parse(void) { sweep(branch_spec, NULL, CN_OK, NULL); }

static void test_malloc_sweep_shape_error(void) { sweep(broken_spec, NULL, CN_E_SHAPE, BROKEN_MESSAGE); }

/* report_cycle allocates its walk: a failure there is NOMEM, the spec's own result otherwise */
static void test_malloc_sweep_cycle(void)
{
    sweep("input 28x28x1\nconv 8 3x3 pad=1 from b as a\nconv 8 3x3 pad=1 from a as b", NULL, CN_E_PARSE,
          "m.cnn:2:1: cycle: a -> b -> a (a layer cannot read its own output)");
}

static void test_malloc_sweep_load(void)
{
    char path[] = "/tmp/cn_spec_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    FILE *f = fdopen(fd, "w");
    CHECK(f != NULL);
    if (!f) {
        close(fd);
        unlink(path);
        return;
    }
    fputs(branch_spec, f);
    fclose(f);
    sweep(NULL, path, CN_OK, NULL);
    unlink(path);
}

/* The branch spec itself: layer order, inputs and shapes, computed by hand. */
static void test_branch_spec_shapes(void)
{
    static const struct { const char *name; int64_t c, h, w; } want[BRANCH_LAYERS] = {
        { "x", 3, 32, 32 },    { "a", 8, 32, 32 },  { "b", 8, 32, 32 },  { "c", 3, 32, 32 },
        { "cat", 19, 32, 32 }, { "d", 16, 32, 32 }, { "e", 16, 32, 32 }, { "add1", 16, 32, 32 },
        { "relu1", 16, 32, 32 }, { "flatten1", 16384, 1, 1 }, { "dense1", 10, 1, 1 },
    };
    cn_ctx *ctx;
    cn_net *net = NULL;
    CHECK_INT(cn_ctx_create(NULL, &ctx), CN_OK);
    CHECK_INT(cn_net_parse(ctx, branch_spec, strlen(branch_spec), "m.cnn", &net), CN_OK);
    if (net) {
        CHECK_INT(cn_net_layer_count(net), BRANCH_LAYERS);
        for (int i = 0; i < BRANCH_LAYERS && i < cn_net_layer_count(net); i++) {
            cn_layer_info li;
            CHECK_INT(cn_net_layer(ctx, net, i, 1, &li), CN_OK);
            CHECK_STR(li.name, want[i].name);
            CHECK_INT(li.c, want[i].c);
            CHECK_INT(li.h, want[i].h);
            CHECK_INT(li.w, want[i].w);
        }
    }
    cn_net_destroy(net);
    cn_ctx_destroy(ctx);
}

/* Automatic names of a type ending in a digit: "relu6_1", "relu6_2" (not "relu61"); the old
 * spelling read by add still finds the layer; "relu6_01", "relu60" and a layer not
 * there ("relu63") do not. */
static void test_digit_type_names(void)
{
    const char *spec = "input 8x8x1; conv 4 3x3 pad=1; relu6; conv 4 3x3 pad=1; relu6; add relu61 relu6_2; relu6; add relu62 relu6_3";
    cn_ctx *ctx;
    cn_net *net = NULL;
    CHECK_INT(cn_ctx_create(NULL, &ctx), CN_OK);
    CHECK_INT(cn_net_parse(ctx, spec, strlen(spec), "m.cnn", &net), CN_OK);
    const char *want[] = { "input", "conv1", "relu6_1", "conv2", "relu6_2", "add1", "relu6_3", "add2" };
    for (int i = 0; net && i < 8; i++) {
        cn_layer_info li;
        CHECK_INT(cn_net_layer(ctx, net, i, 1, &li), CN_OK);
        CHECK_STR(li.name, want[i]);
    }
    cn_net_destroy(net);
    static const char *const bad[] = { "relu6_01", "relu60", "relu63" };
    for (int i = 0; i < 3; i++) {
        char text[160];
        snprintf(text, sizeof text, "input 8x8x1; relu6; relu6 from %s", bad[i]);
        net = NULL;
        CHECK_INT(cn_net_parse(ctx, text, strlen(text), "m.cnn", &net), CN_E_PARSE);
        CHECK(strstr(cn_ctx_message(ctx), "undefined name") != NULL);
        cn_net_destroy(net);
    }
    cn_ctx_destroy(ctx);
}

static const test_case cases[] = {
    { "automatic names of relu6: relu6_1; the old relu61 still read", test_digit_type_names },
    { "malformed specs: status and exact message", test_table },
    { "generated specs: a long word, a typo among 70 layers", test_generated_specs },
    { "the same specs, fixed, parse", test_fixed_specs_parse },
    { "layer limit: exactly 10,000 parse, 10,001 and 200,000 are refused at line 10,001", test_layer_limit },
    { "9,000 named layers: lookups, a typo, a duplicate 8,998 lines apart", test_many_names },
    { "a cycle of 20 layers: the message shows 8, then the count", test_long_cycle },
    { "one line: a million words, a 1 MB name, 81 inputs", test_line_limits },
    { "branch spec: names and shapes", test_branch_spec_shapes },
    { "malloc-failure sweep: parse with branches", test_malloc_sweep_parse },
    { "malloc-failure sweep: parse ending in a shape error", test_malloc_sweep_shape_error },
    { "malloc-failure sweep: parse ending in a cycle", test_malloc_sweep_cycle },
    { "malloc-failure sweep: load_spec", test_malloc_sweep_load },
};

TEST_MAIN(cases)
