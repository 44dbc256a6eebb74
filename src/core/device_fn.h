/* device_fn.h — CN_DEVICE_FN marks a small function that the host's C and the CUDA kernels
 * (src/backend/cuda/kernels.cu) both compile from one definition, so that the GPU computes
 * what the host's reference does. */
#ifndef CN_DEVICE_FN_H
#define CN_DEVICE_FN_H

#ifdef __CUDACC__
#define CN_DEVICE_FN static __device__
#else
#define CN_DEVICE_FN static inline
#endif

#endif
