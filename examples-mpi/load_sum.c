/* One copy of a dataset per node, shared by every MPI rank on it.
 *
 *   mpirun -np 4 ./load_sum data.npy train [--delete]
 *
 * Every rank calls sa_load on the same file and name: on each node exactly one rank
 * reads the file into shared memory, the others wait until it is complete and attach
 * (no rank ever sees partial data, and if the loading rank dies another takes over).
 * No leader election is needed for the load itself; the node communicator
 * (MPI_Comm_split_type with MPI_COMM_TYPE_SHARED) is used only to count the loads per
 * node and to know when every rank of a node is done with the array. Each rank sums its
 * own slice of rows of the 2-d float64 array; MPI_Reduce adds the partial sums over the
 * whole job, so the ranks of every node together cover the dataset exactly once.
 *
 * The array stays after the job (another job step, or a Python monitor, can attach it
 * by name) unless --delete is given: then the rank that loaded it on each node removes
 * the name once every rank on its node has finished (mappings stay valid until
 * released). A job script's trap is the place for cleanup when the job may be
 * cancelled (docs/HPC.md).
 *
 * Output, all from rank 0 (ranks writing to one stdout would interleave): one line
 * per rank (rank, node rank, outcome, bytes it read from files while loading, from
 * /proc/self/io), then the totals; tests/py/test_mpi.py parses them.
 */
#include <mpi.h>
#include <ndshm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes this process has read through read-like system calls (sendfile included). */
static long long rchar(void) {
    FILE *f = fopen("/proc/self/io", "r");
    long long v = -1;
    char key[64];
    long long val;
    if (!f) return -1;
    while (fscanf(f, "%63s %lld", key, &val) == 2)
        if (strcmp(key, "rchar:") == 0) { v = val; break; }
    fclose(f);
    return v;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size, node_rank, node_size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc < 3) {
        if (rank == 0) fprintf(stderr, "usage: %s FILE.npy NAME [--delete]\n", argv[0]);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    const char *path = argv[1], *name = argv[2];
    int del = argc > 3 && strcmp(argv[3], "--delete") == 0;

    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &node_rank);
    MPI_Comm_size(node, &node_size);

    sa_array *a;
    int32_t outcome = -1;
    long long before = rchar();
    /* Read-only: no rank can scribble over the node's copy. No timeout: a big file takes
     * as long as it takes, and a loader that dies is replaced, not waited for. */
    if (sa_load(path, SA_FILE_NPY, name, -1, -1, SA_READONLY, -1, &a, &outcome) != SA_OK) {
        fprintf(stderr, "rank %d: %s\n", rank, sa_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    long long read_bytes = rchar() - before;

    sa_desc d;
    sa_describe(a, &d);
    if (d.ndim != 2 || d.dtype != SA_FLOAT64 || d.order != SA_ORDER_C) {
        fprintf(stderr, "rank %d: %s: expected a 2-d C-order float64 array\n", rank, name);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int64_t rows = d.shape[0], cols = d.shape[1];
    /* This rank's rows of the whole job's share: [lo, hi). */
    int64_t lo = rows * rank / size, hi = rows * (rank + 1) / size;
    const double *x = d.data;
    double partial = 0.0;
    for (int64_t i = lo * cols; i < hi * cols; i++) partial += x[i];

    double total = 0.0;
    MPI_Reduce(&partial, &total, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    int created = outcome == SA_CREATED, loads = 0, nodes = 0, leader = node_rank == 0;
    MPI_Reduce(&created, &loads, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
    MPI_Reduce(&leader, &nodes, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);

    char line[160], *lines = NULL;
    snprintf(line, sizeof line, "rank %d node_rank %d/%d outcome %s read_bytes %lld rows %lld:%lld", rank,
             node_rank, node_size, created ? "created" : "attached", read_bytes, (long long)lo, (long long)hi);
    if (rank == 0 && !(lines = malloc(sizeof line * (size_t)size))) MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Gather(line, sizeof line, MPI_CHAR, lines, sizeof line, MPI_CHAR, 0, MPI_COMM_WORLD);
    for (int r = 0; rank == 0 && r < size; r++) printf("%s\n", lines + r * sizeof line);
    free(lines);

    /* Everyone on this node is done with the data before its loader removes the name. */
    MPI_Barrier(node);
    if (del && created && sa_delete(name) != SA_OK)
        fprintf(stderr, "rank %d: %s\n", rank, sa_last_error());
    sa_release(a);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) printf("ranks %d nodes %d loads %d sum %.17g\n", size, nodes, loads, total);
    MPI_Comm_free(&node);
    MPI_Finalize();
    return 0;
}
