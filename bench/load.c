/* Loading a page-cached file into a fresh shared-memory file: ndshm's sa_load against
 * the raw kernel methods, in one run, interleaved.
 *
 *   load FILE.npy DIR ROUNDS
 *
 * DIR is where the copies go (/dev/shm, or a tmpfs mounted huge=within_size). Prints one
 * JSON line per method with the median seconds and GB/s over ROUNDS. Every method ends
 * with the data in a file of DIR; the file is removed before the next round.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <ndshm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static const char *src_path, *dir;
static off_t src_size, data_off, data_len;
static const char *map_src; /* the source mapped read-only, populated */

static int open_dst(char *path, size_t n) {
    snprintf(path, n, "%s/ndshm-bench-load-%d", dir, (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) { perror(path); exit(1); }
    return fd;
}

static void reserve(int fd, off_t len) {
    int r = posix_fallocate(fd, 0, len);
    if (r) { fprintf(stderr, "fallocate: %s\n", strerror(r)); exit(1); }
}

/* sendfile from the page cache, after reserving (as ndshm does). */
static void m_sendfile(void) {
    char p[4096];
    int in = open(src_path, O_RDONLY | O_CLOEXEC), out = open_dst(p, sizeof p);
    reserve(out, data_len);
    off_t off = data_off, left = data_len;
    while (left > 0) {
        ssize_t k = sendfile(out, in, &off, left > 0x7ffff000 ? 0x7ffff000 : (size_t)left);
        if (k <= 0) { perror("sendfile"); exit(1); }
        left -= k;
    }
    close(in); close(out); unlink(p);
}

/* sendfile without reserving first (the kernel allocates pages as it copies). */
static void m_sendfile_noreserve(void) {
    char p[4096];
    int in = open(src_path, O_RDONLY | O_CLOEXEC), out = open_dst(p, sizeof p);
    off_t off = data_off, left = data_len;
    while (left > 0) {
        ssize_t k = sendfile(out, in, &off, left > 0x7ffff000 ? 0x7ffff000 : (size_t)left);
        if (k <= 0) { perror("sendfile"); exit(1); }
        left -= k;
    }
    close(in); close(out); unlink(p);
}

struct part { int fd; off_t from, len; const char *src; };

/* One thread's share of a sendfile copy: its own descriptors, so its own positions. */
static void *sendfile_part(void *arg) {
    struct part *pt = arg;
    int in = open(src_path, O_RDONLY | O_CLOEXEC);
    off_t off = data_off + pt->from, left = pt->len;
    if (lseek(pt->fd, pt->from, SEEK_SET) < 0) { perror("lseek"); exit(1); }
    while (left > 0) {
        ssize_t k = sendfile(pt->fd, in, &off, left > 0x7ffff000 ? 0x7ffff000 : (size_t)left);
        if (k <= 0) { perror("sendfile"); exit(1); }
        left -= k;
    }
    close(in);
    return NULL;
}

/* sendfile split across 2 threads (no fallocate), each with its own descriptor. */
static void m_sendfile2(void) {
    char p[4096];
    int out = open_dst(p, sizeof p);
    if (ftruncate(out, data_len)) { perror("ftruncate"); exit(1); }
    int out2 = open(p, O_RDWR | O_CLOEXEC);
    off_t half = (data_len / 2 + 4095) & ~(off_t)4095;
    struct part parts[2] = {{out, 0, half, NULL}, {out2, half, data_len - half, NULL}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, sendfile_part, &parts[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    close(out); close(out2); unlink(p);
}

/* fallocate, then read() into a 4 MiB buffer and pwrite() it: two copies, no mapping. */
static void m_readpwrite(void) {
    char p[4096];
    static char buf[4 << 20];
    int in = open(src_path, O_RDONLY | O_CLOEXEC), out = open_dst(p, sizeof p);
    reserve(out, data_len);
    for (off_t done = 0; done < data_len;) {
        ssize_t k = pread(in, buf, sizeof buf, data_off + done);
        if (k <= 0) { perror("pread"); exit(1); }
        if (pwrite(out, buf, (size_t)k, done) != k) { perror("pwrite"); exit(1); }
        done += k;
    }
    close(in); close(out); unlink(p);
}

static void *pwrite_part(void *arg) {
    struct part *pt = arg;
    off_t done = 0;
    while (done < pt->len) {
        off_t n = pt->len - done > (64 << 20) ? (64 << 20) : pt->len - done;
        ssize_t k = pwrite(pt->fd, map_src + data_off + pt->from + done, (size_t)n, pt->from + done);
        if (k <= 0) { perror("pwrite"); exit(1); }
        done += k;
    }
    return NULL;
}

/* fallocate, then pwrite from a mapping of the source (made and populated here, so its
 * cost counts), by `threads` threads. */
static void m_pwrite(int threads) {
    char p[4096];
    int in = open(src_path, O_RDONLY | O_CLOEXEC), out = open_dst(p, sizeof p);
    map_src = mmap(NULL, (size_t)src_size, PROT_READ, MAP_SHARED | MAP_POPULATE, in, 0);
    if (map_src == MAP_FAILED) { perror("mmap"); exit(1); }
    reserve(out, data_len);
    pthread_t t[8];
    struct part parts[8];
    off_t per = (data_len / threads + 4095) & ~(off_t)4095;
    for (int i = 0; i < threads; i++) {
        off_t from = per * i;
        parts[i] = (struct part){out, from, from >= data_len ? 0 : (data_len - from < per ? data_len - from : per), NULL};
        pthread_create(&t[i], NULL, pwrite_part, &parts[i]);
    }
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    munmap((void *)map_src, (size_t)src_size);
    close(in); close(out); unlink(p);
}
static void m_pwrite1(void) { m_pwrite(1); }
static void m_pwrite2(void) { m_pwrite(2); }

/* ndshm: open-or-create from the .npy file (it creates: the name is new each round). */
static void m_ndshm(void) {
    char name[256];
    snprintf(name, sizeof name, "ndshm-bench-load-%d", (int)getpid());
    sa_array *a;
    int32_t outcome;
    int rc = sa_load(src_path, SA_FILE_NPY, name, -1, -1, 0, -1, &a, &outcome);
    if (rc || outcome != SA_CREATED) { fprintf(stderr, "sa_load: %s\n", sa_last_error()); exit(1); }
    sa_release(a);
    sa_delete(name);
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: load FILE.npy DIR ROUNDS\n"); return 2; }
    src_path = argv[1];
    dir = argv[2];
    int rounds = atoi(argv[3]);
    int fd = open(src_path, O_RDONLY);
    struct stat st;
    fstat(fd, &st);
    src_size = st.st_size;
    /* The data starts after the .npy header, whose length is at bytes 8-9 (version 1). */
    unsigned char h[10];
    if (pread(fd, h, 10, 0) != 10) { perror("read"); return 1; }
    data_off = 10 + (h[8] | h[9] << 8);
    data_len = src_size - data_off;
    close(fd);
    /* The NDSHM_DIR redirect makes sa_load create in DIR, like the raw methods. */
    setenv("NDSHM_DIR", dir, 1);
    struct { const char *name; void (*f)(void); } m[] = {
        {"ndshm sa_load", m_ndshm},
        {"raw: fallocate + sendfile", m_sendfile},
        {"raw: sendfile (no fallocate)", m_sendfile_noreserve},
        {"raw: sendfile (no fallocate), 2 threads", m_sendfile2},
        {"raw: fallocate + read/pwrite, 4 MiB buffer", m_readpwrite},
        {"raw: fallocate + pwrite from mmap", m_pwrite1},
        {"raw: fallocate + pwrite from mmap, 2 threads", m_pwrite2},
    };
    enum { M = sizeof m / sizeof m[0] };
    double t[M][64];
    for (int i = 0; i < M; i++) m[i].f(); /* warm-up */
    for (int r = 0; r < rounds && r < 64; r++)
        for (int i = 0; i < M; i++) {
            double a = now();
            m[i].f();
            t[i][r] = now() - a;
        }
    for (int i = 0; i < M; i++) {
        qsort(t[i], (size_t)rounds, sizeof(double), cmp);
        double med = t[i][rounds / 2];
        printf("{\"method\": \"%s\", \"dir\": \"%s\", \"seconds\": %.4f, \"min\": %.4f, \"max\": %.4f, "
               "\"gbps\": %.3f, \"bytes\": %lld}\n",
               m[i].name, dir, med, t[i][0], t[i][rounds - 1], (double)data_len / med / 1e9,
               (long long)data_len);
    }
    return 0;
}
