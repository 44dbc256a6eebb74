/* fuzz_jpeg.c — libFuzzer target for the JPEG decoder: fuzz_png.c's checks (decode or fail with
 * a message, never crash, leak, or allocate past the limits of src/data/data_impl.h) on any
 * bytes, without its fixing of PNG CRCs. Seeds: tests/fuzz/jpeg_corpus (baseline, progressive,
 * gray, 4:2:0, 4:2:2 of odd size, CMYK, restart markers, optimized tables, one scan per
 * component, written with libjpeg), replayed by the tests; dictionary fuzz/jpeg.dict. */
#define FUZZ_JPEG
#include "fuzz_png.c"
