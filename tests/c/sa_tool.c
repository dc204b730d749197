/* Test helper driven by the Rust integration tests: each subcommand is one process's
 * part in a multi-process scenario. Prints a result line; exit status 0 = as expected. */
#define _POSIX_C_SOURCE 200809L
#include <ndshm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what, int rc) {
    printf("%s %s %s\n", what, sa_status_str(rc), sa_last_error());
    return 1;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* create NAME ROWS COLS: int64 array with element k = k + 1, then release. */
static int cmd_create(char **argv) {
    int64_t shape[2] = {atoll(argv[1]), atoll(argv[2])};
    sa_array *a;
    int rc = sa_create(argv[0], 2, shape, SA_INT64, 0, &a);
    if (rc) return fail("create", rc);
    int64_t *x = sa_data(a);
    for (int64_t k = 0; k < shape[0] * shape[1]; k++) x[k] = k + 1;
    sa_release(a);
    printf("created\n");
    return 0;
}

/* verify NAME: attach, check every element k == k + 1 (int64), then write -(k+1)
 * so the creator can see the reply. */
static int cmd_verify(char **argv) {
    sa_array *a;
    int rc = sa_attach(argv[0], 0, &a);
    if (rc) return fail("attach", rc);
    if (sa_get_dtype(a) != SA_INT64) return fail("dtype", SA_ERR_MISMATCH);
    int64_t *x = sa_data(a);
    size_t n = sa_nbytes(a) / 8;
    for (size_t k = 0; k < n; k++)
        if (x[k] != (int64_t)k + 1) {
            printf("bad element %zu: %lld\n", k, (long long)x[k]);
            return 1;
        }
    for (size_t k = 0; k < n; k++) x[k] = -((int64_t)k + 1);
    sa_release(a);
    printf("verified %zu\n", n);
    return 0;
}

/* attach-loop NAME SECONDS ROWS COLS: attach as fast as possible while another
 * process creates and deletes NAME; every successful attach must show the full
 * shape and dtype. Only NOT_FOUND and NOT_READY are acceptable failures. */
static int cmd_attach_loop(char **argv) {
    double end = now() + atof(argv[1]);
    int64_t rows = atoll(argv[2]), cols = atoll(argv[3]);
    long ok = 0, not_found = 0, not_ready = 0;
    while (now() < end) {
        sa_array *a;
        int rc = sa_attach(argv[0], SA_READONLY, &a);
        if (rc == SA_ERR_NOT_FOUND) { not_found++; continue; }
        if (rc == SA_ERR_NOT_READY) { not_ready++; continue; }
        if (rc) return fail("attach", rc);
        const int64_t *s = sa_shape(a);
        if (sa_ndim(a) != 2 || s[0] != rows || s[1] != cols || sa_get_dtype(a) != SA_FLOAT64 ||
            sa_nbytes(a) != (size_t)(rows * cols * 8)) {
            printf("half-made array seen: ndim %d\n", sa_ndim(a));
            return 1;
        }
        /* Touch the first and last element: no SIGBUS, data mapped. */
        volatile const double *x = sa_data(a);
        double t = x[0] + x[rows * cols - 1];
        (void)t;
        sa_release(a);
        ok++;
    }
    printf("attached %ld not_found %ld not_ready %ld\n", ok, not_found, not_ready);
    return 0;
}

/* create-loop NAME ROUNDS ROWS COLS: create, release, delete, repeatedly. */
static int cmd_create_loop(char **argv) {
    long rounds = atol(argv[1]);
    int64_t shape[2] = {atoll(argv[2]), atoll(argv[3])};
    for (long r = 0; r < rounds; r++) {
        sa_array *a;
        int rc = sa_create(argv[0], 2, shape, SA_FLOAT64, 0, &a);
        if (rc) return fail("create", rc);
        sa_release(a);
        rc = sa_delete(argv[0]);
        if (rc) return fail("delete", rc);
    }
    printf("rounds %ld\n", rounds);
    return 0;
}

/* race-create NAME: try to create; "won" or "lost" (EXISTS) are both success. */
static int cmd_race_create(char **argv) {
    int64_t shape[1] = {1 << 20};
    sa_array *a;
    int rc = sa_create(argv[0], 1, shape, SA_UINT8, 0, &a);
    if (rc == SA_ERR_EXISTS) { printf("lost\n"); return 0; }
    if (rc) return fail("create", rc);
    sa_release(a);
    printf("won\n");
    return 0;
}

/* big-create NAME MIB: create a large array (the test kills us meanwhile). */
static int cmd_big_create(char **argv) {
    int64_t shape[1] = {atoll(argv[1]) << 20};
    sa_array *a;
    printf("starting\n");
    fflush(stdout);
    int rc = sa_create(argv[0], 1, shape, SA_UINT8, 0, &a);
    if (rc) return fail("create", rc);
    printf("created\n");
    return 0;
}

/* mlock NAME: attach and mlock; print the status name and message. */
static int cmd_mlock(char **argv) {
    sa_array *a;
    int rc = sa_attach(argv[0], 0, &a);
    if (rc) return fail("attach", rc);
    rc = sa_mlock(a);
    printf("mlock %s %s\n", sa_status_str(rc), rc ? sa_last_error() : "");
    if (rc == SA_OK) {
        rc = sa_munlock(a);
        printf("munlock %s\n", sa_status_str(rc));
    }
    sa_release(a);
    return 0;
}

/* info NAME: one line with the sa_info fields. */
static int cmd_info(char **argv) {
    sa_list_entry *e;
    int rc = sa_info(argv[0], &e);
    if (rc) return fail("info", rc);
    printf("info %s state %d pid %d alive %d nbytes %llu\n", e->name, e->state, e->creator_pid,
           e->creator_alive, (unsigned long long)e->nbytes);
    sa_list_free(e, 1);
    return 0;
}

/* status NAME: try attach and print the status only. */
static int cmd_status(char **argv) {
    sa_array *a = NULL;
    int rc = sa_attach(argv[0], SA_READONLY, &a);
    printf("%s %s\n", sa_status_str(rc), rc ? sa_last_error() : "");
    sa_release(a);
    return 0;
}

/* attach-flags NAME FLAGS TIMEOUT_MS: sa_attach_ex; print the status and message. */
static int cmd_attach_flags(char **argv) {
    sa_array *a = NULL;
    int rc = sa_attach_ex(argv[0], (uint32_t)strtoul(argv[1], NULL, 0), atoll(argv[2]), -1,
                          NULL, SA_DTYPE_ANY, &a);
    printf("%s %s\n", sa_status_str(rc), rc ? sa_last_error() : "");
    sa_release(a);
    return 0;
}

/* delete NAME FLAGS: sa_delete_ex; print the status and message. */
static int cmd_delete(char **argv) {
    int rc = sa_delete_ex(argv[0], (uint32_t)strtoul(argv[1], NULL, 0));
    printf("%s %s\n", sa_status_str(rc), rc ? sa_last_error() : "");
    return 0;
}

/* create-bytes NAME NBYTES FLAGS FILL: a uint8 array of NBYTES, every byte FILL;
 * print the status and message. */
static int cmd_create_bytes(char **argv) {
    int64_t shape[1] = {atoll(argv[1])};
    sa_array *a = NULL;
    int rc = sa_create(argv[0], 1, shape, SA_UINT8, (uint32_t)strtoul(argv[2], NULL, 0), &a);
    if (rc == SA_OK) {
        memset(sa_data(a), atoi(argv[3]), sa_nbytes(a));
        sa_release(a);
    }
    printf("%s %s\n", sa_status_str(rc), rc ? sa_last_error() : "");
    return 0;
}

/* check-bytes NAME NBYTES FILL: the array holds NBYTES bytes, all FILL ("ok"). */
static int cmd_check_bytes(char **argv) {
    sa_array *a;
    int rc = sa_attach(argv[0], SA_READONLY, &a);
    if (rc) return fail("attach", rc);
    const unsigned char *x = sa_data(a);
    size_t n = sa_nbytes(a);
    int fill = atoi(argv[2]);
    if (n != (size_t)atoll(argv[1])) {
        printf("bad size %zu\n", n);
        return 1;
    }
    for (size_t k = 0; k < n; k++)
        if (x[k] != fill) {
            printf("bad byte %zu: %d\n", k, x[k]);
            return 1;
        }
    sa_release(a);
    printf("ok\n");
    return 0;
}

/* This process's bytes read so far (rchar in /proc/self/io: read, pread and sendfile). */
static unsigned long long rchar(void) {
    FILE *f = fopen("/proc/self/io", "r");
    unsigned long long v = 0;
    char key[64];
    unsigned long long x;
    while (f && fscanf(f, "%63[^:]: %llu\n", key, &x) == 2)
        if (strcmp(key, "rchar") == 0) v = x;
    if (f) fclose(f);
    return v;
}

/* load PATH NAME TIMEOUT_MS: open-or-create from a .npy file; print the outcome, the
 * bytes this process read meanwhile, and a checksum (sum of the 8-byte words). */
static int cmd_load(char **argv) {
    sa_array *a;
    int32_t outcome = -1;
    unsigned long long before = rchar();
    int rc = sa_load(argv[0], SA_FILE_NPY, argv[1], -1, -1, 0, atoll(argv[2]), &a, &outcome);
    unsigned long long read = rchar() - before;
    if (rc) return fail("load", rc);
    const unsigned long long *x = sa_data(a);
    unsigned long long sum = 0;
    for (size_t k = 0; k < sa_nbytes(a) / 8; k++) sum += x[k];
    printf("%s read %llu sum %llu nbytes %zu\n", outcome == SA_CREATED ? "created" : "attached",
           read, sum, sa_nbytes(a));
    sa_release(a);
    return 0;
}

int main(int argc, char **argv) {
    struct { const char *name; int nargs; int (*f)(char **); } cmds[] = {
        {"create", 3, cmd_create},         {"verify", 1, cmd_verify},
        {"attach-loop", 4, cmd_attach_loop}, {"create-loop", 4, cmd_create_loop},
        {"race-create", 1, cmd_race_create}, {"big-create", 2, cmd_big_create},
        {"mlock", 1, cmd_mlock},           {"info", 1, cmd_info},
        {"status", 1, cmd_status},         {"attach-flags", 3, cmd_attach_flags},
        {"delete", 2, cmd_delete},         {"create-bytes", 4, cmd_create_bytes},
        {"check-bytes", 3, cmd_check_bytes}, {"load", 3, cmd_load},
    };
    for (size_t i = 0; argc > 1 && i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(argv[1], cmds[i].name) == 0) {
            if (argc - 2 != cmds[i].nargs) break;
            return cmds[i].f(argv + 2);
        }
    fprintf(stderr, "usage: sa_tool COMMAND ARGS...\n");
    return 2;
}
