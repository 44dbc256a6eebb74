/* threads.c — how many OpenMP threads the kernels use (one place, so a build without OpenMP
 * runs everything on one thread). */
#include "core_impl.h"

#ifdef _OPENMP
#include <omp.h>
#endif

int cn_set_threads(int n)
{
#ifdef _OPENMP
    if (n >= 1) omp_set_num_threads(n);
#else
    (void)n;
#endif
    return cn_threads();
}

int cn_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
