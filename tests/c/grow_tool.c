/* Growth test helper driven by tests/grow.rs: each subcommand is one process's part
 * in a multi-process scenario (appending, concurrent appenders, a reader checking
 * every row it can see, appenders killed with SIGKILL). Rows follow one pattern:
 * every element of row i equals i (float64), or, with a writer id, i * 1000 + id in
 * element 0 and the id in the others. Exit status 0 = as expected. */
#define _POSIX_C_SOURCE 200809L
#include <ndshm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what, int rc) {
    printf("%s %s %s\n", what, sa_status_str(rc), sa_last_error());
    fflush(stdout);
    return 1;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* append NAME COUNT: appends rows continuing the pattern (row i = i) from the current
 * length, in batches of 1 to 64 rows, until COUNT rows are added (0: until killed). */
static int cmd_append(char **argv) {
    sa_array *a;
    int rc = sa_attach(argv[0], 0, &a);
    if (rc) return fail("attach", rc);
    long count = atol(argv[1]);
    int64_t row = sa_shape(a)[1];
    double *buf = malloc(sizeof(double) * 64 * (size_t)row);
    if (!buf) return 1;
    unsigned seed = (unsigned)getpid();
    printf("ready\n");
    fflush(stdout);
    for (long done = 0; count == 0 || done < count;) {
        /* The length may have changed: another appender, or a killed one. */
        if ((rc = sa_refresh(a, NULL))) return fail("refresh", rc);
        int64_t len = sa_shape(a)[0];
        long k = 1 + (long)(rand_r(&seed) % 64);
        if (count && k > count - done) k = count - done;
        for (long r = 0; r < k; r++)
            for (int64_t j = 0; j < row; j++) buf[r * row + j] = (double)(len + r);
        int64_t got;
        /* Rows computed from the length just read: hold the lock so nobody appends in
         * between (sa_append takes it itself otherwise). */
        rc = sa_lock(a, -1);
        /* A killed appender held it: nothing to repair (an append is all or nothing). */
        if (rc && rc != SA_ERR_OWNER_DIED) return fail("lock", rc);
        if (rc == SA_ERR_OWNER_DIED) {
            printf("owner died\n");
            fflush(stdout);
        }
        if ((rc = sa_refresh(a, NULL))) return fail("refresh", rc);
        if (sa_shape(a)[0] != len) {
            sa_unlock(a);
            continue;
        }
        rc = sa_append(a, buf, (uint64_t)k, &got);
        sa_unlock(a);
        if (rc) return fail("append", rc);
        if (got != len + k) {
            printf("length %lld after appending %ld to %lld\n", (long long)got, k, (long long)len);
            return 1;
        }
        done += k;
    }
    printf("done %lld\n", (long long)sa_shape(a)[0]);
    sa_release(a);
    return 0;
}

/* check NAME SECONDS: refreshes and checks that every visible row follows the pattern,
 * for SECONDS; prints the checks made and the last length. */
static int cmd_check(char **argv) {
    sa_array *a;
    int rc = sa_attach(argv[0], SA_READONLY, &a);
    if (rc) return fail("attach", rc);
    double end = now() + atof(argv[1]);
    long checks = 0;
    int64_t last = 0;
    printf("ready\n");
    fflush(stdout);
    while (now() < end) {
        if ((rc = sa_refresh(a, NULL))) return fail("refresh", rc);
        int64_t len = sa_shape(a)[0], row = sa_shape(a)[1];
        if (len < last) {
            printf("length went back from %lld to %lld\n", (long long)last, (long long)len);
            return 1;
        }
        const double *d = sa_data(a);
        /* Every row up to the length is complete; check the newest rows (and a sample). */
        int64_t from = len > 256 ? len - 256 : 0;
        for (int64_t i = from; i < len; i++)
            for (int64_t j = 0; j < row; j++)
                if (d[i * row + j] != (double)i) {
                    printf("row %lld element %lld is %g of length %lld\n", (long long)i,
                           (long long)j, d[i * row + j], (long long)len);
                    return 1;
                }
        last = len;
        checks++;
    }
    printf("checks %ld length %lld\n", checks, (long long)last);
    sa_release(a);
    return 0;
}

/* tagged NAME ID COUNT: appends COUNT single rows tagged with ID (element 0: the row's
 * index * 1000 + ID under the lock, the others: ID) while other processes do too. */
static int cmd_tagged(char **argv) {
    sa_array *a;
    int rc = sa_attach(argv[0], 0, &a);
    if (rc) return fail("attach", rc);
    int id = atoi(argv[1]);
    long count = atol(argv[2]);
    int64_t row = sa_shape(a)[1];
    double *buf = malloc(sizeof(double) * (size_t)row);
    for (int64_t j = 0; j < row; j++) buf[j] = id;
    printf("ready\n");
    fflush(stdout);
    for (long i = 0; i < count; i++) {
        buf[0] = (double)(i * 1000 + id);
        if ((rc = sa_append(a, buf, 1, NULL))) return fail("append", rc);
    }
    printf("done\n");
    sa_release(a);
    return 0;
}

/* store DIR: the store through the C API: save, append row by row, list, map in place,
 * load rows into shared memory (twice: the second attaches), delete. */
static int cmd_store(char **argv) {
    sa_store *s;
    int rc = sa_store_open(argv[0], 0, &s);
    if (rc) return fail("open", rc);
    int64_t shape[2] = {2, 3};
    double init[6] = {0, 0, 0, 1, 1, 1};
    if ((rc = sa_store_save(s, "series", 2, shape, SA_FLOAT64, 0, init))) return fail("save", rc);
    int64_t row_shape[1] = {3}, len = 0;
    for (int i = 2; i < 1000; i++) {
        double row[3] = {i, i, i};
        if ((rc = sa_store_append(s, "series", 1, row_shape, SA_FLOAT64, row, 1, &len)))
            return fail("append", rc);
    }
    int32_t wrong[3] = {0, 0, 0};
    rc = sa_store_append(s, "series", 1, row_shape, SA_INT32, wrong, 1, &len);
    if (rc != SA_ERR_MISMATCH) return fail("append of another dtype must be refused", rc);
    rc = sa_store_save(s, "bad__name", 2, shape, SA_FLOAT64, 0, init);
    if (rc != SA_ERR_INVALID) return fail("a name with __ must be refused", rc);
    sa_store_entry *e;
    size_t n;
    if ((rc = sa_store_list(s, &e, &n))) return fail("list", rc);
    for (size_t i = 0; i < n; i++)
        printf("entry %s format %d ndim %d shape %lld %lld\n", e[i].name, e[i].format, e[i].ndim,
               (long long)e[i].shape[0], (long long)e[i].shape[1]);
    sa_store_list_free(e, n);
    sa_array *m;
    if ((rc = sa_store_map(s, "series", &m))) return fail("map", rc);
    const double *d = sa_data(m);
    for (int64_t i = 0; i < sa_shape(m)[0]; i++)
        if (d[i * 3 + 2] != (double)i) return fail("mapped rows differ", 0);
    printf("mapped %lld rows\n", (long long)sa_shape(m)[0]);
    sa_release(m);
    sa_array *c1, *c2;
    int o1, o2;
    if ((rc = sa_store_load(s, "series", 10, 20, -1, &c1, &o1))) return fail("load", rc);
    if ((rc = sa_store_load(s, "series", 10, 20, -1, &c2, &o2))) return fail("load again", rc);
    d = sa_data(c2);
    printf("loaded %lld rows first %g outcomes %d %d same %d\n", (long long)sa_shape(c2)[0], d[0],
           o1, o2, !strcmp(sa_name(c1), sa_name(c2)));
    sa_release(c1);
    sa_release(c2);
    size_t unloaded;
    if ((rc = sa_store_unload(s, "series", &unloaded))) return fail("unload", rc);
    printf("unloaded %zu\n", unloaded);
    if ((rc = sa_store_delete(s, "series"))) return fail("delete", rc);
    rc = sa_store_delete(s, "series");
    if (rc != SA_ERR_NOT_FOUND) return fail("deleting twice must be NOT_FOUND", rc);
    sa_store_close(s);
    printf("ok\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "store")) return cmd_store(argv + 2);
    if (argc >= 4 && !strcmp(argv[1], "append")) return cmd_append(argv + 2);
    if (argc >= 4 && !strcmp(argv[1], "check")) return cmd_check(argv + 2);
    if (argc >= 5 && !strcmp(argv[1], "tagged")) return cmd_tagged(argv + 2);
    fprintf(stderr, "usage: grow_tool store DIR | append NAME COUNT | check NAME SECONDS | tagged NAME ID COUNT\n");
    return 2;
}
