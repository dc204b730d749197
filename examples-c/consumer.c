/* consumer: attach to a named array read-only, describe it and print a checksum.
 *
 *   consumer NAME [--delete]
 *
 * Works with any array ndshm understands: v1 segments from any language, and
 * SharedArray segments. With --delete the name is removed afterwards. */
#define _POSIX_C_SOURCE 200809L
#include <ndshm.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static double element(const void *data, sa_dtype t, size_t i) {
    switch (t) {
    case SA_BOOL: case SA_UINT8: return ((const uint8_t *)data)[i];
    case SA_INT8: return ((const int8_t *)data)[i];
    case SA_INT16: return ((const int16_t *)data)[i];
    case SA_UINT16: return ((const uint16_t *)data)[i];
    case SA_INT32: return ((const int32_t *)data)[i];
    case SA_UINT32: return ((const uint32_t *)data)[i];
    case SA_INT64: return (double)((const int64_t *)data)[i];
    case SA_UINT64: return (double)((const uint64_t *)data)[i];
    case SA_FLOAT32: return ((const float *)data)[i];
    case SA_FLOAT64: return ((const double *)data)[i];
    case SA_COMPLEX64: return ((const float *)data)[2 * i];
    case SA_COMPLEX128: return ((const double *)data)[2 * i];
    default: return 0.0; /* float16: not summed here */
    }
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "--delete") != 0)) {
        fprintf(stderr, "usage: %s NAME [--delete]\n", argv[0]);
        return 2;
    }
    sa_array *a = NULL;
    /* Wait up to 1 s in case the producer is still creating it. */
    int rc = sa_attach_wait(argv[1], SA_READONLY, 1000, &a);
    if (rc != SA_OK) {
        fprintf(stderr, "consumer: %s: %s\n", sa_status_str(rc), sa_last_error());
        return 1;
    }
    int32_t ndim = sa_ndim(a);
    const int64_t *shape = sa_shape(a);
    printf("consumer (pid %ld): attached %s: dtype %s, order %s, shape (", (long)getpid(),
           sa_name(a), sa_dtype_str(sa_get_dtype(a)), sa_order(a) == SA_ORDER_F ? "F" : "C");
    for (int32_t d = 0; d < ndim; d++)
        printf("%s%lld", d ? ", " : "", (long long)shape[d]);
    size_t n = sa_nbytes(a) / sa_itemsize(a);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += element(sa_data(a), sa_get_dtype(a), i);
    printf("), %zu elements, checksum (sum) %.6f\n", n, sum);
    sa_release(a);
    if (argc == 3) {
        rc = sa_delete(argv[1]);
        if (rc != SA_OK) {
            fprintf(stderr, "consumer: delete: %s\n", sa_last_error());
            return 1;
        }
        printf("consumer: deleted %s\n", argv[1]);
    }
    return 0;
}
