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

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "append")) return cmd_append(argv + 2);
    if (argc >= 4 && !strcmp(argv[1], "check")) return cmd_check(argv + 2);
    if (argc >= 5 && !strcmp(argv[1], "tagged")) return cmd_tagged(argv + 2);
    fprintf(stderr, "usage: grow_tool append NAME COUNT | check NAME SECONDS | tagged NAME ID COUNT\n");
    return 2;
}
