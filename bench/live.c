/* Live-data benchmark, C part (driven by bench/live.py, which prints the table).
 *
 * Publish-to-read round trips between two processes: the writer publishes, the reader
 * notices (busy-polling, or blocked in a wait), copies the data into a private buffer
 * and acknowledges through a shared counter, on which the writer spins. One sample is
 * one whole round trip, measured by the writer.
 *
 *   floor-spin   raw shared memory: memcpy + a release store of a counter; the reader
 *                spins on it (acquire), memcpys, acknowledges. Nothing else.
 *   floor-futex  the same, but the reader sleeps in FUTEX_WAIT and the writer calls
 *                FUTEX_WAKE after every publish: the floor for a blocked reader.
 *   ndshm-spin   sa_publish; the reader polls sa_get_version, then sa_read_copy.
 *   ndshm-wait   sa_publish; the reader blocks in sa_wait_version, then sa_read_copy.
 *
 * Also the snapshot copy bandwidth (sa_read_copy against memcpy, one process).
 * Output: one JSON object per line.
 *
 *   live ITERATIONS_SMALL ITERATIONS_LARGE
 */
#define _GNU_SOURCE
#include <ndshm.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Spin loops pause: on a machine whose two CPUs are hyperthreads of one core, a tight
 * spin would slow the other process's copy. */
#if defined(__x86_64__) || defined(__i386__)
#define RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define RELAX() __asm__ __volatile__("yield")
#else
#define RELAX() ((void)0)
#endif

/* Blocked-reader modes: the writer lets the reader fall asleep before each publish
 * (busy-waiting this long, not timed), so a sample is a real wake-up. */
#define SETTLE_NS 50000.0

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void die(const char *what, int rc) {
    fprintf(stderr, "%s: %s %s\n", what, sa_status_str(rc), sa_last_error());
    exit(1);
}

/* The control page: the floor's counter and futex word, and everyone's ack. */
struct ctl {
    _Atomic uint64_t counter;
    char pad1[56];
    _Atomic uint32_t futex;
    char pad2[60];
    _Atomic uint64_t ack;
};

static void *map_shm(const char *name, size_t size) {
    int fd = shm_open(name, O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
        perror("shm");
        exit(1);
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *impl, size_t n, double *s, long iters) {
    qsort(s, (size_t)iters, sizeof *s, cmp);
    printf("{\"impl\": \"%s\", \"elements\": %zu, \"median_us\": %.3f, \"p99_us\": %.3f, "
           "\"min_us\": %.3f, \"samples\": %ld}\n",
           impl, n, s[iters / 2] / 1e3, s[(long)((double)iters * 0.99)] / 1e3, s[0] / 1e3, iters);
    fflush(stdout);
}

static long futex(_Atomic uint32_t *w, int op, uint32_t val) {
    return syscall(SYS_futex, (uint32_t *)w, op, val, NULL, NULL, 0);
}

/* Raw floor: mode 0 spins, mode 1 sleeps on a futex. */
static void floor_run(size_t n, long iters, int mode, const char *ctlname, const char *dataname) {
    struct ctl *c = map_shm(ctlname, 4096);
    double *data = map_shm(dataname, n * 8);
    double *src = malloc(n * 8), *dst = malloc(n * 8), *samples = malloc((size_t)iters * sizeof(double));
    for (size_t k = 0; k < n; k++) src[k] = (double)k;
    memset(data, 0, n * 8);
    pid_t pid = fork();
    if (pid == 0) {
        uint64_t last = 0;
        while (last < (uint64_t)iters) {
            uint64_t v;
            if (mode == 0) {
                while ((v = atomic_load_explicit(&c->counter, memory_order_acquire)) == last) RELAX();
            } else {
                for (;;) {
                    uint32_t f = atomic_load_explicit(&c->futex, memory_order_acquire);
                    v = atomic_load_explicit(&c->counter, memory_order_acquire);
                    if (v != last) break;
                    futex(&c->futex, FUTEX_WAIT, f);
                }
            }
            memcpy(dst, data, n * 8);
            last = v;
            atomic_store_explicit(&c->ack, v, memory_order_release);
        }
        _exit(dst[n - 1] == (double)(n - 1) ? 0 : 1);
    }
    for (long i = 1; i <= iters; i++) {
        if (mode == 1)
            for (double t = now_ns(); now_ns() - t < SETTLE_NS;) RELAX();
        double t0 = now_ns();
        memcpy(data, src, n * 8);
        atomic_store_explicit(&c->counter, (uint64_t)i, memory_order_release);
        if (mode == 1) {
            atomic_fetch_add_explicit(&c->futex, 1, memory_order_release);
            futex(&c->futex, FUTEX_WAKE, 1);
        }
        while (atomic_load_explicit(&c->ack, memory_order_acquire) != (uint64_t)i) RELAX();
        samples[i - 1] = now_ns() - t0;
    }
    int st;
    waitpid(pid, &st, 0);
    report(mode == 0 ? "floor-spin" : "floor-futex", n, samples, iters);
    munmap(c, 4096);
    munmap(data, n * 8);
    shm_unlink(ctlname);
    shm_unlink(dataname);
    free(src);
    free(dst);
    free(samples);
}

/* ndshm: mode 0 polls sa_get_version, mode 1 blocks in sa_wait_version. */
static void ndshm_run(size_t n, long iters, int mode, const char *ctlname, const char *name) {
    struct ctl *c = map_shm(ctlname, 4096);
    int64_t shape[1] = {(int64_t)n};
    sa_array *a;
    int rc = sa_create(name, 1, shape, SA_FLOAT64, SA_FORCE, &a);
    if (rc) die("create", rc);
    double *src = malloc(n * 8), *dst = malloc(n * 8), *samples = malloc((size_t)iters * sizeof(double));
    for (size_t k = 0; k < n; k++) src[k] = (double)k;
    pid_t pid = fork();
    if (pid == 0) {
        sa_array *b;
        if ((rc = sa_attach(name, SA_READONLY, &b))) die("attach", rc);
        uint64_t last = 0, v = 0;
        while (last < (uint64_t)iters) {
            if (mode == 0) {
                for (sa_get_version(b, &v); v == last; sa_get_version(b, &v)) RELAX();
            } else if ((rc = sa_wait_version(b, last, -1, &v))) {
                die("wait", rc);
            }
            if ((rc = sa_read_copy(b, dst, n * 8, -1, &v, NULL))) die("read_copy", rc);
            last = v;
            atomic_store_explicit(&c->ack, v, memory_order_release);
        }
        _exit(dst[n - 1] == (double)(n - 1) ? 0 : 1);
    }
    for (long i = 1; i <= iters; i++) {
        if (mode == 1)
            for (double t = now_ns(); now_ns() - t < SETTLE_NS;) RELAX();
        double t0 = now_ns();
        uint64_t v;
        if ((rc = sa_publish(a, src, n * 8, &v))) die("publish", rc);
        while (atomic_load_explicit(&c->ack, memory_order_acquire) != v) RELAX();
        samples[i - 1] = now_ns() - t0;
    }
    int st;
    waitpid(pid, &st, 0);
    report(mode == 0 ? "ndshm-spin" : "ndshm-wait", n, samples, iters);
    sa_release(a);
    sa_delete(name);
    munmap(c, 4096);
    shm_unlink(ctlname);
    free(src);
    free(dst);
    free(samples);
}

/* Snapshot copy bandwidth against memcpy, in one process, on pages already touched. */
static void bandwidth(size_t bytes, int reps, const char *name) {
    int64_t shape[1] = {(int64_t)(bytes / 8)};
    sa_array *a;
    int rc = sa_create(name, 1, shape, SA_FLOAT64, SA_FORCE, &a);
    if (rc) die("create", rc);
    char *dst = malloc(bytes);
    memset(dst, 1, bytes);
    memset(sa_data(a), 2, bytes);
    double best_copy = 1e30, best_memcpy = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_ns();
        if ((rc = sa_read_copy(a, dst, bytes, -1, NULL, NULL))) die("read_copy", rc);
        double t1 = now_ns();
        memcpy(dst, sa_data(a), bytes);
        double t2 = now_ns();
        if (t1 - t0 < best_copy) best_copy = t1 - t0;
        if (t2 - t1 < best_memcpy) best_memcpy = t2 - t1;
    }
    printf("{\"impl\": \"bandwidth\", \"bytes\": %zu, \"snapshot_gbs\": %.2f, \"memcpy_gbs\": %.2f}\n", bytes,
           (double)bytes / best_copy, (double)bytes / best_memcpy);
    fflush(stdout);
    sa_release(a);
    sa_delete(name);
    free(dst);
}

int main(int argc, char **argv) {
    long small = argc > 1 ? atol(argv[1]) : 20000, large = argc > 2 ? atol(argv[2]) : 1000;
    char ctl[64], data[64], name[80];
    snprintf(ctl, sizeof ctl, "/ndshm-bench-ctl-%d", (int)getpid());
    snprintf(data, sizeof data, "/ndshm-bench-data-%d", (int)getpid());
    snprintf(name, sizeof name, "shm://ndshm-bench-live-%d", (int)getpid());
    size_t sizes[2] = {100, (1 << 20) / 8};
    for (int s = 0; s < 2; s++) {
        long it = s == 0 ? small : large;
        /* Floor and ndshm alternate, so the machine's noise hits both alike. */
        for (int rep = 0; rep < 2; rep++) {
            floor_run(sizes[s], it / 2, 0, ctl, data);
            ndshm_run(sizes[s], it / 2, 0, ctl, name);
        }
        floor_run(sizes[s], it / 2, 1, ctl, data);
        ndshm_run(sizes[s], it / 2, 1, ctl, name);
    }
    bandwidth(1 << 20, 200, name);
    bandwidth(64 << 20, 10, name);
    return 0;
}
