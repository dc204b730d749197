/* ndshm against the system-call floor, side by side in one run.
 *
 *   bench [--quick] [--dir DIR]
 *
 * Every operation is timed per call (clock_gettime, monotonic) in alternating batches
 * of the floor and ndshm, so noise on this shared machine hits both alike. Prints one
 * JSON object per (operation, size, implementation): median, min, max in microseconds. */
#define _GNU_SOURCE
#include <ndshm.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec * 1e-3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what) {
    fprintf(stderr, "bench: %s: %s | %s\n", what, strerror(errno), sa_last_error());
    exit(1);
}

static void report(const char *op, const char *size, const char *impl, double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp);
    printf("{\"op\": \"%s\", \"size\": \"%s\", \"impl\": \"%s\", \"median_us\": %.3f, "
           "\"min_us\": %.3f, \"max_us\": %.3f, \"n\": %d}\n",
           op, size, impl, t[n / 2], t[0], t[n - 1], n);
    fflush(stdout);
}

static char shm_name[64], sa_name_buf[80];

/* ---- the floor: raw system calls only ---- */

static void floor_create(size_t size, int reserve, int populate, int touch) {
    int fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) die("shm_open");
    if (reserve) {
        if (posix_fallocate(fd, 0, (off_t)size)) die("posix_fallocate");
    } else if (ftruncate(fd, (off_t)size)) die("ftruncate");
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | (populate ? MAP_POPULATE : 0), fd, 0);
    if (p == MAP_FAILED) die("mmap");
    if (touch)
        for (size_t o = 0; o < size; o += 4096) p[o] = 1;
    munmap(p, size);
    close(fd);
    shm_unlink(shm_name);
}

static void floor_attach(size_t size_hint) {
    (void)size_hint;
    int fd = shm_open(shm_name, O_RDWR, 0);
    if (fd < 0) die("shm_open attach");
    struct stat st;
    fstat(fd, &st);
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) die("mmap attach");
    munmap(p, (size_t)st.st_size);
    close(fd);
}

static void floor_list(const char *dir, size_t expect) {
    DIR *d = opendir(dir);
    if (!d) die("opendir");
    char buf[4096];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY);
        if (fd < 0) continue;
        if (pread(fd, buf, sizeof buf, 0) > 0) n++;
        close(fd);
    }
    closedir(d);
    if (n != expect) die("floor list count");
}

/* ---- ndshm through its C API ---- */

static void nd_create(size_t size, uint32_t flags, int touch) {
    int64_t shape[1] = {(int64_t)size};
    sa_array *a;
    if (sa_create(sa_name_buf, 1, shape, SA_UINT8, flags, &a)) die("sa_create");
    if (touch) {
        char *p = sa_data(a);
        for (size_t o = 0; o < size; o += 4096) p[o] = 1;
    }
    sa_release(a);
    if (sa_delete(sa_name_buf)) die("sa_delete");
}

static void nd_attach(size_t size, int checked) {
    sa_array *a;
    int64_t shape[1] = {(int64_t)size};
    int rc = checked ? sa_attach_checked(sa_name_buf, 0, 1, shape, SA_UINT8, &a)
                     : sa_attach(sa_name_buf, 0, &a);
    if (rc) die("sa_attach");
    sa_release(a);
}

static void nd_list(const char *dir, size_t expect) {
    sa_list_entry *e;
    size_t n;
    if (sa_list(dir, &e, &n)) die("sa_list");
    if (n != expect) die("sa_list count");
    sa_list_free(e, n);
}

/* Runs floor and ndshm alternately in batches; reports both. */
#define PAIR(op, size_label, reps, floor_call, nd_call)                                   \
    do {                                                                                  \
        double *tf = malloc(sizeof(double) * (reps)), *tn = malloc(sizeof(double) * (reps)); \
        int batch = (reps) >= 50 ? 10 : 1;                                                \
        { floor_call; } { nd_call; } /* warm-up, untimed: first touches of fresh memory */ \
        for (int i = 0; i < (reps); i += batch)                                           \
            for (int side = 0; side < 2; side++)                                          \
                for (int j = i; j < i + batch && j < (reps); j++) {                       \
                    double t0 = now_us();                                                 \
                    if (side == 0) { floor_call; } else { nd_call; }                      \
                    (side == 0 ? tf : tn)[j] = now_us() - t0;                             \
                }                                                                         \
        report(op, size_label, "floor", tf, (reps));                                      \
        report(op, size_label, "ndshm", tn, (reps));                                      \
        free(tf);                                                                         \
        free(tn);                                                                         \
    } while (0)

int main(int argc, char **argv) {
    int quick = 0;
    const char *base = "/dev/shm";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) base = argv[++i];
    }
    snprintf(shm_name, sizeof shm_name, "/ndshm-bench-floor-%d", (int)getpid());
    snprintf(sa_name_buf, sizeof sa_name_buf, "shm://ndshm-bench-nd-%d", (int)getpid());
    int small = quick ? 400 : 4000, big = quick ? 10 : 60, lists = quick ? 10 : 60, huge = quick ? 1 : 3;
    struct { const char *label; size_t size; int reps; } sizes[] = {
        {"4 KiB", 4096, small}, {"64 MiB", 64u << 20, big}};

    for (int s = 0; s < 2; s++) {
        size_t z = sizes[s].size;
        int r = sizes[s].reps;
        PAIR("create+release+delete (reserved)", sizes[s].label, r, floor_create(z, 1, 0, 0), nd_create(z, 0, 0));
        PAIR("create+release+delete (sparse)", sizes[s].label, r, floor_create(z, 0, 0, 0), nd_create(z, SA_SPARSE, 0));
        /* Attach: both segments exist for the whole measurement. */
        int fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd < 0 || posix_fallocate(fd, 0, (off_t)z)) die("floor setup");
        close(fd);
        int64_t shape[1] = {(int64_t)z};
        sa_array *keep;
        if (sa_create(sa_name_buf, 1, shape, SA_UINT8, 0, &keep)) die("setup");
        PAIR("attach+release", sizes[s].label, r, floor_attach(z), nd_attach(z, 0));
        PAIR("attach checked (shape, dtype)+release", sizes[s].label, r, floor_attach(z), nd_attach(z, 1));
        sa_release(keep);
        sa_delete(sa_name_buf);
        shm_unlink(shm_name);
    }

    /* Listing 1000 arrays in a directory of their own on tmpfs. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/ndshm-bench-list-%d", base, (int)getpid());
    if (mkdir(dir, 0700)) die("mkdir");
    for (int i = 0; i < 1000; i++) {
        char nm[4200];
        snprintf(nm, sizeof nm, "file://%s/a%04d", dir, i);
        int64_t shape[2] = {8, 64};
        sa_array *a;
        if (sa_create(nm, 2, shape, SA_FLOAT64, 0, &a)) die("list setup");
        sa_release(a);
    }
    PAIR("list 1000 arrays", "-", lists, floor_list(dir, 1000), nd_list(dir, 1000));
    for (int i = 0; i < 1000; i++) {
        char nm[4200];
        snprintf(nm, sizeof nm, "%s/a%04d", dir, i);
        unlink(nm);
    }
    rmdir(dir);

    /* First write of every page of a 1 GiB array (create, touch, release, delete). */
    size_t gib = 1u << 30;
    PAIR("first write of every page", "1 GiB", huge, floor_create(gib, 1, 0, 1), nd_create(gib, 0, 1));
    PAIR("first write of every page (populate)", "1 GiB", huge, floor_create(gib, 1, 1, 1),
         nd_create(gib, SA_POPULATE, 1));
    return 0;
}
