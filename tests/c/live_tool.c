/* Live-data test helper driven by tests/live.rs and tests/py/test_live.py: each
 * subcommand is one process's part in a multi-process scenario (snapshots, waiting,
 * the lock). Prints result lines; exit status 0 = as expected. */
#define _POSIX_C_SOURCE 200809L
#include <ndshm.h>
#include <signal.h>
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

/* The shape and dtype of version v in the pattern the writers publish: a new shape
 * every 5th version, float64 mostly and int32 every 7th shape (a smaller dtype). */
static int pattern(uint64_t v, int64_t shape[2], sa_dtype *dtype) {
    uint64_t k = v / 5;
    shape[0] = 1 + (int64_t)(k % 13);
    shape[1] = 1 + (int64_t)((k * 7) % 17);
    *dtype = (k % 7 == 3) ? SA_INT32 : SA_FLOAT64;
    return 2;
}

/* writer NAME [COUNT]: publishes versions with every element equal to the version,
 * changing shape and dtype as `pattern` says, COUNT times (0: until killed). */
static int cmd_writer(char **argv) {
    sa_array *a;
    int rc = sa_attach(argv[0], 0, &a);
    if (rc) return fail("attach", rc);
    long count = argv[1] ? atol(argv[1]) : 0;
    static double buf[13 * 17];
    uint64_t v;
    if ((rc = sa_get_version(a, &v))) return fail("version", rc);
    printf("ready\n");
    fflush(stdout);
    for (long i = 0; count == 0 || i < count; i++) {
        int64_t shape[2];
        sa_dtype dt;
        pattern(v + 1, shape, &dt);
        size_t n = (size_t)(shape[0] * shape[1]);
        if (dt == SA_INT32) {
            int32_t *p = (int32_t *)buf;
            for (size_t k = 0; k < n; k++) p[k] = (int32_t)(v + 1);
        } else {
            for (size_t k = 0; k < n; k++) buf[k] = (double)(v + 1);
        }
        size_t nb = n * (dt == SA_INT32 ? 4 : 8);
        if ((rc = sa_publish_shape(a, 2, shape, dt, buf, nb, 0, &v))) return fail("publish", rc);
    }
    sa_release(a);
    printf("published %llu\n", (unsigned long long)v);
    return 0;
}

/* reader NAME SNAPSHOTS: takes SNAPSHOTS consistent snapshots, checks that each is
 * uniform (every element equals its version), has the pattern's shape and dtype for
 * that version, and that versions never go back. */
static int cmd_reader(char **argv) {
    sa_array *a;
    int rc = sa_attach(argv[0], SA_READONLY, &a);
    if (rc) return fail("attach", rc);
    long want = atol(argv[1]);
    static double buf[13 * 17];
    uint64_t last = 0, distinct = 0, reshapes = 0;
    /* At least SNAPSHOTS, and until 50 versions were seen (a fast reader can take
     * many snapshots of one version), for at most 30 s. */
    double give_up = now() + 30;
    long i;
    for (i = 0; i < want || (distinct < 50 && now() < give_up); i++) {
        uint64_t v;
        int32_t reshaped;
        rc = sa_read_copy(a, buf, sizeof buf, 5000, &v, &reshaped);
        if (rc) return fail("read_copy", rc);
        if (v < last) {
            printf("version went back: %llu after %llu\n", (unsigned long long)v,
                   (unsigned long long)last);
            return 1;
        }
        distinct += v != last;
        reshapes += reshaped != 0;
        last = v;
        if (v == 0) continue; /* nothing published yet: zeros */
        int64_t shape[2];
        sa_dtype dt;
        pattern(v, shape, &dt);
        const int64_t *s = sa_shape(a);
        if (sa_ndim(a) != 2 || s[0] != shape[0] || s[1] != shape[1] || sa_get_dtype(a) != dt) {
            printf("version %llu: shape %lldx%lld dtype %d, expected %lldx%lld dtype %d\n",
                   (unsigned long long)v, (long long)s[0], (long long)s[1], sa_get_dtype(a),
                   (long long)shape[0], (long long)shape[1], dt);
            return 1;
        }
        size_t n = (size_t)(shape[0] * shape[1]);
        for (size_t k = 0; k < n; k++) {
            double x = dt == SA_INT32 ? (double)((int32_t *)buf)[k] : buf[k];
            if (x != (double)v) {
                printf("torn snapshot: version %llu element %zu is %g\n", (unsigned long long)v,
                       k, x);
                return 1;
            }
        }
    }
    sa_release(a);
    printf("snapshots %ld versions %llu reshapes %llu last %llu\n", i,
           (unsigned long long)distinct, (unsigned long long)reshapes,
           (unsigned long long)last);
    return 0;
}

/* wait NAME NEWER_THAN TIMEOUT_MS: prints "woke VERSION T" (T: CLOCK_MONOTONIC
 * seconds at wake-up) or the error with the time waited. */
static int cmd_wait(char **argv) {
    sa_array *a;
    int rc = sa_attach(argv[0], SA_READONLY, &a);
    if (rc) return fail("attach", rc);
    printf("waiting\n");
    fflush(stdout);
    uint64_t v = 0;
    double t0 = now();
    rc = sa_wait_version(a, strtoull(argv[1], NULL, 10), atoll(argv[2]), &v);
    double t1 = now();
    if (rc) {
        printf("%s after %.3f s: %s\n", sa_status_str(rc), t1 - t0, sa_last_error());
        return rc == SA_ERR_TIMEOUT ? 0 : 1;
    }
    printf("woke %llu %.9f\n", (unsigned long long)v, t1);
    sa_release(a);
    return 0;
}

/* hold NAME: takes the lock, says so, and sleeps until killed. */
static int cmd_hold(char **argv) {
    sa_array *a;
    int rc = sa_attach(argv[0], 0, &a);
    if (rc) return fail("attach", rc);
    rc = sa_lock(a, -1);
    if (rc && rc != SA_ERR_OWNER_DIED) return fail("lock", rc);
    printf("locked %d\n", (int)getpid());
    fflush(stdout);
    for (;;) pause();
}

/* die-mid-write NAME: begins a write and exits without ending it. */
static int cmd_die_mid_write(char **argv) {
    sa_array *a;
    int rc = sa_attach(argv[0], 0, &a);
    if (rc) return fail("attach", rc);
    if ((rc = sa_write_begin(a))) return fail("write_begin", rc);
    double *x = sa_data(a);
    x[0] = -1;
    _exit(0);
}

/* torn NAME: begins an in-place read, waits for a line on stdin (another process
 * publishes meanwhile), then ends it and prints the outcome. */
static int cmd_torn(char **argv) {
    sa_array *a;
    int rc = sa_attach(argv[0], SA_READONLY, &a);
    if (rc) return fail("attach", rc);
    uint64_t token, v;
    if ((rc = sa_read_begin(a, 1000, &token))) return fail("read_begin", rc);
    double first = ((const double *)sa_data(a))[0];
    printf("begun %g\n", first);
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 1;
    rc = sa_read_end(a, token, &v);
    printf("%s\n", sa_status_str(rc));
    sa_release(a);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: live_tool CMD NAME ...\n");
        return 2;
    }
    const char *c = argv[1];
    char **rest = argv + 2;
    if (!strcmp(c, "writer")) return cmd_writer(rest);
    if (!strcmp(c, "reader") && argc >= 4) return cmd_reader(rest);
    if (!strcmp(c, "wait") && argc >= 5) return cmd_wait(rest);
    if (!strcmp(c, "hold")) return cmd_hold(rest);
    if (!strcmp(c, "die-mid-write")) return cmd_die_mid_write(rest);
    if (!strcmp(c, "torn")) return cmd_torn(rest);
    fprintf(stderr, "unknown command %s\n", c);
    return 2;
}
