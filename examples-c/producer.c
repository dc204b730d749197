#define _POSIX_C_SOURCE 200809L
/* producer: create a named 2-D float64 array, fill it, and leave it for others.
 *
 *   producer NAME ROWS COLS        e.g.  producer shm://demo 1000 1000
 *
 * Element [i][j] = i + j / 1000.0. The array stays after this program exits;
 * remove it with `sa_delete` (see consumer.c --delete). */
#include <ndshm.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s NAME ROWS COLS\n", argv[0]);
        return 2;
    }
    int64_t shape[2] = {atoll(argv[2]), atoll(argv[3])};
    sa_array *a = NULL;
    int rc = sa_create(argv[1], 2, shape, SA_FLOAT64, SA_FORCE, &a);
    if (rc != SA_OK) {
        fprintf(stderr, "producer: %s: %s\n", sa_status_str(rc), sa_last_error());
        return 1;
    }
    double *x = sa_data(a);
    for (int64_t i = 0; i < shape[0]; i++)
        for (int64_t j = 0; j < shape[1]; j++)
            x[i * shape[1] + j] = (double)i + (double)j / 1000.0;
    printf("producer (pid %ld): created %s, %lld x %lld %s, %zu bytes, filled\n",
           (long)getpid(), sa_name(a), (long long)shape[0], (long long)shape[1],
           sa_dtype_str(sa_get_dtype(a)), sa_nbytes(a));
    sa_release(a); /* unmaps; the array lives on */
    return 0;
}
