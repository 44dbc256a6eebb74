/* rng.c — xoshiro256** (Blackman & Vigna) seeded by splitmix64: the one random stream of
 * convnet. Integer-only, so a seed gives the same stream everywhere. tests/test_core.c checks
 * the first outputs against values computed by tests/gen_rng_ref.py. */
#include <math.h>

#include "core_impl.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void cn_rng_seed(cn_rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
}

uint64_t cn_rng_next(cn_rng *rng) { return cn_rng_step(rng); }

uint64_t cn_rng_below(cn_rng *rng, uint64_t n)
{
    /* reject the top partial copy of [0, n) so every value is equally likely */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do r = cn_rng_next(rng);
    while (r >= limit);
    return r % n;
}

double cn_rng_uniform(cn_rng *rng) { return (double)(cn_rng_next(rng) >> 11) * 0x1.0p-53; }

double cn_rng_normal(cn_rng *rng)
{
    double u, v, s;
    do {
        u = 2.0 * cn_rng_uniform(rng) - 1.0;
        v = 2.0 * cn_rng_uniform(rng) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    return u * sqrt(-2.0 * log(s) / s); /* the second deviate, v * ..., is dropped: one draw, one state */
}
