/* Benchmark (a program, not a test): every MPI rank of a node needs the same dataset.
 *
 *   mpirun -np 4 ./mpi_load METHOD FILE.npy NAME
 *
 * METHOD:
 *   ndshm    every rank calls sa_load (open-or-create): one rank per node reads the file
 *            into shared memory (sendfile), the others wait and attach;
 *   window   MPI_Win_allocate_shared on the node communicator, all memory on the node
 *            leader, which fills it with pread from the file; the others query a pointer;
 *   private  every rank mallocs its own copy and preads the whole file into it.
 *
 * Times, from a barrier before any of it: "ready" when every rank holds a pointer to the
 * complete data (after a barrier), "read" when every rank has also read every byte once
 * (a sum over the dataset: for shared memory this is where the mapping's page faults
 * are paid). Memory: the sum over the ranks of their proportional set size (PSS, from
 * /proc/self/smaps_rollup, taken after the read, when every rank maps every page) and
 * the growth of the node's shared memory (Shmem in /proc/meminfo) since the start.
 * bench/mpi_bench.py runs it and makes the table in docs/BENCHMARKS.md.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <mpi.h>
#include <ndshm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static long long kib_field(const char *file, const char *key) {
    FILE *f = fopen(file, "r");
    char line[256];
    long long v = -1;
    size_t n = strlen(key);
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0) { v = atoll(line + n); break; }
    fclose(f);
    return v;
}

/* Where the data of a .npy file starts (its header's length), or -1. */
static long npy_data_offset(int fd) {
    unsigned char h[12];
    if (pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h || memcmp(h, "\x93NUMPY", 6) != 0) return -1;
    if (h[6] == 1) return 10 + (long)(h[8] | h[9] << 8);
    return 12 + (long)(h[8] | h[9] << 8 | (long)h[10] << 16 | (long)h[11] << 24);
}

static int read_all(int fd, char *dst, size_t n, off_t off) {
    while (n > 0) {
        ssize_t r = pread(fd, dst, n > (1 << 30) ? (1 << 30) : n, off);
        if (r <= 0) return -1;
        dst += r, n -= (size_t)r, off += r;
    }
    return 0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size, node_rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 4) {
        if (!rank) fprintf(stderr, "usage: mpi_load ndshm|window|private FILE.npy NAME\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    const char *method = argv[1], *path = argv[2], *name = argv[3];
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &node_rank);

    int fd = open(path, O_RDONLY);
    struct stat st;
    long off = fd < 0 ? -1 : npy_data_offset(fd);
    if (off < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "%s: not a .npy file\n", path);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    size_t nbytes = (size_t)(st.st_size - off);
    long long shmem0 = kib_field("/proc/meminfo", "Shmem:");

    sa_array *a = NULL;
    MPI_Win win = MPI_WIN_NULL;
    char *mine = NULL;
    const char *data = NULL;
    int32_t outcome = SA_ATTACHED;

    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    if (strcmp(method, "ndshm") == 0) {
        if (sa_load(path, SA_FILE_NPY, name, -1, -1, SA_READONLY, -1, &a, &outcome) != SA_OK) {
            fprintf(stderr, "rank %d: %s\n", rank, sa_last_error());
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        data = sa_data(a);
    } else if (strcmp(method, "window") == 0) {
        char *base;
        MPI_Win_allocate_shared(node_rank == 0 ? (MPI_Aint)nbytes : 0, 1, MPI_INFO_NULL, node, &base, &win);
        MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
        if (node_rank == 0 && read_all(fd, base, nbytes, off) != 0) MPI_Abort(MPI_COMM_WORLD, 1);
        MPI_Win_sync(win); /* the leader's writes, then everyone's view of them */
        MPI_Barrier(node);
        MPI_Win_sync(win);
        MPI_Aint wsize;
        int disp;
        MPI_Win_shared_query(win, 0, &wsize, &disp, &base);
        data = base;
    } else if (strcmp(method, "private") == 0) {
        if (!(mine = malloc(nbytes)) || read_all(fd, mine, nbytes, off) != 0) MPI_Abort(MPI_COMM_WORLD, 1);
        data = mine;
    } else {
        if (!rank) fprintf(stderr, "unknown method %s\n", method);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    double t1 = MPI_Wtime();

    /* Read every byte once (8-byte words, summed: nothing the compiler can skip). */
    const uint64_t *w = (const uint64_t *)data;
    uint64_t sum = 0;
    for (size_t i = 0; i < nbytes / 8; i++) sum += w[i];
    MPI_Barrier(MPI_COMM_WORLD);
    double t2 = MPI_Wtime();

    long long pss = kib_field("/proc/self/smaps_rollup", "Pss:"), pss_sum = 0;
    long long shmem = kib_field("/proc/meminfo", "Shmem:") - shmem0;
    MPI_Reduce(&pss, &pss_sum, 1, MPI_LONG_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    uint64_t lo, hi;
    MPI_Reduce(&sum, &lo, 1, MPI_UINT64_T, MPI_MIN, 0, MPI_COMM_WORLD);
    MPI_Reduce(&sum, &hi, 1, MPI_UINT64_T, MPI_MAX, 0, MPI_COMM_WORLD);
    int loads = outcome == SA_CREATED, total_loads = 0;
    MPI_Reduce(&loads, &total_loads, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
    if (rank == 0)
        printf("{\"method\": \"%s\", \"ranks\": %d, \"bytes\": %zu, \"ready_s\": %.4f, \"read_s\": %.4f, "
               "\"pss_mib\": %.1f, \"shmem_mib\": %.1f, \"loads\": %d, \"same_sum\": %s}\n",
               method, size, nbytes, t1 - t0, t2 - t0, pss_sum / 1024.0, shmem / 1024.0, total_loads,
               lo == hi ? "true" : "false");

    /* Clean up, so that the next run starts from nothing. */
    MPI_Barrier(node);
    if (a) {
        if (outcome == SA_CREATED) sa_delete(name);
        sa_release(a);
    }
    if (win != MPI_WIN_NULL) {
        MPI_Win_unlock_all(win);
        MPI_Win_free(&win);
    }
    free(mine);
    close(fd);
    MPI_Comm_free(&node);
    MPI_Finalize();
    return 0;
}
