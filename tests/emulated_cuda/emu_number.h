/* emu_number.h — the number formats the emulated cuBLAS and cuDNN (libcublas.cpp, libcudnn.cpp)
 * read and write as the real libraries do: bf16 (the high half of a float, rounded to nearest
 * even, a NaN kept a NaN) and TF32, the tensor cores' factors in TF32 mode (a float's 10 high
 * mantissa bits, rounded to nearest with ties away from zero, as cvt.rna.tf32.f32). */
#ifndef CN_EMU_NUMBER_H
#define CN_EMU_NUMBER_H

#include <cstdint>
#include <cstring>

static inline float emu_float_of_bits(uint32_t u)
{
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}
static inline uint32_t emu_bits_of(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}
static inline float emu_float_of_bf16(uint16_t h) { return emu_float_of_bits(static_cast<uint32_t>(h) << 16); }
static inline uint16_t emu_bf16_of(float v)
{
    uint32_t u = emu_bits_of(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
    return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
/* v as a TF32 factor (infinities and NaNs as they are) */
static inline float emu_tf32(float v)
{
    uint32_t u = emu_bits_of(v);
    if ((u & 0x7f800000u) == 0x7f800000u) return v;
    return emu_float_of_bits((u + 0x1000u) & ~0x1fffu);
}

#endif
