/* list: show the arrays in shared memory (or in a directory given as argument). */
#include <ndshm.h>
#include <stdio.h>

static const char *format_name(int32_t f) {
    switch (f) {
    case SA_FORMAT_V1: return "ndshm-v1";
    case SA_FORMAT_SHAREDARRAY_NPY1: return "SharedArray(np1)";
    case SA_FORMAT_SHAREDARRAY_NPY2: return "SharedArray(np2)";
    default: return "?";
    }
}

int main(int argc, char **argv) {
    sa_list_entry *e = NULL;
    size_t n = 0;
    int rc = sa_list(argc > 1 ? argv[1] : NULL, &e, &n);
    if (rc != SA_OK) {
        fprintf(stderr, "list: %s: %s\n", sa_status_str(rc), sa_last_error());
        return 1;
    }
    printf("%-40s %-17s %-5s %-24s %12s %8s %s\n", "NAME", "FORMAT", "DTYPE", "SHAPE",
           "BYTES", "CREATOR", "STATE");
    for (size_t i = 0; i < n; i++) {
        char shape[64];
        int pos = 0;
        for (int32_t d = 0; d < e[i].ndim && pos < 48; d++)
            pos += snprintf(shape + pos, sizeof shape - (size_t)pos, "%s%lld", d ? "x" : "",
                            (long long)e[i].shape[d]);
        if (e[i].ndim == 0)
            snprintf(shape, sizeof shape, "()");
        char creator[32];
        if (e[i].creator_pid)
            snprintf(creator, sizeof creator, "%d%s", e[i].creator_pid,
                     e[i].creator_alive == 1 ? "" : e[i].creator_alive == 0 ? "(dead)" : "(?)");
        else
            snprintf(creator, sizeof creator, "-");
        printf("%-40s %-17s %-5s %-24s %12llu %8s %s%s\n", e[i].name, format_name(e[i].format),
               sa_dtype_str(e[i].dtype) ? sa_dtype_str(e[i].dtype) : "?", shape,
               (unsigned long long)e[i].nbytes, creator,
               e[i].state == SA_STATE_READY ? "ready" : "initialising",
               e[i].order == SA_ORDER_F ? " F-order" : "");
    }
    printf("%zu array(s)\n", n);
    sa_list_free(e, n);
    return 0;
}
