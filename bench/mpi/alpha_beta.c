/* alpha_beta.c — the α–β constants of this machine's MPI transport, for bench/mpi/model.py:
 * the time of MPI_Allreduce on 2 processes for messages of 8 bytes (α, the latency) to 16 MB
 * (α + 2 (N-1)/N n β for a ring's all-reduce), fitted by least squares over the sizes. Each
 * size: 20 warm-up calls, then the median of 200. Prints JSON {"alpha_s", "beta_s_per_byte",
 * "points": [[bytes, seconds], ...]}.
 * Built and run by bench/mpi/run.sh: mpicc -O2 alpha_beta.c && mpirun -np 2 ./a.out */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    enum { SIZES = 12, REPS = 200 };
    int64_t *buf = calloc((size_t)1 << 21, sizeof(int64_t));
    double t[REPS], pts[SIZES][2];
    int n = 0;
    for (int64_t count = 1; count <= (int64_t)1 << 21 && n < SIZES; count *= 4, n++) {
        for (int r = 0; r < 20 + REPS; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
            if (r >= 20) t[r - 20] = MPI_Wtime() - t0;
        }
        qsort(t, REPS, sizeof t[0], cmp);
        pts[n][0] = (double)count * 8, pts[n][1] = t[REPS / 2];
    }
    /* t = alpha + x beta with x = 2 (N-1)/N bytes: least squares */
    double sx = 0, sy = 0, sxx = 0, sxy = 0, k = 2.0 * (size - 1) / size;
    for (int i = 0; i < n; i++) {
        double x = k * pts[i][0], y = pts[i][1];
        sx += x, sy += y, sxx += x * x, sxy += x * y;
    }
    double beta = (n * sxy - sx * sy) / (n * sxx - sx * sx), alpha = pts[0][1];
    if (rank == 0) {
        printf("{\"processes\":%d,\"alpha_s\":%.4g,\"beta_s_per_byte\":%.4g,\"points\":[", size, alpha, beta);
        for (int i = 0; i < n; i++) printf("%s[%.0f,%.4g]", i ? "," : "", pts[i][0], pts[i][1]);
        printf("]}\n");
    }
    free(buf);
    MPI_Finalize();
    return 0;
}
