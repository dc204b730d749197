/* Matrix agent in C (see PROTOCOL.md). */
#define _POSIX_C_SOURCE 200809L
#include <ndshm.h>
#include <stdio.h>
#include <string.h>

static const char *dtypes[] = {"float64", "float32", "int32", "int64", "uint8"};
static const sa_dtype codes[] = {SA_FLOAT64, SA_FLOAT32, SA_INT32, SA_INT64, SA_UINT8};
static const char *orders[] = {"C", "F"};
static const int64_t shape[3] = {2, 3, 4};

static size_t offset(int f, int i, int j, int k) {
    return f ? (size_t)(i + 2 * (j + 3 * k)) : (size_t)((i * 3 + j) * 4 + k);
}

static double get(void *p, sa_dtype t, size_t o) {
    switch (t) {
    case SA_FLOAT64: return ((double *)p)[o];
    case SA_FLOAT32: return ((float *)p)[o];
    case SA_INT32: return ((int32_t *)p)[o];
    case SA_INT64: return (double)((int64_t *)p)[o];
    default: return ((uint8_t *)p)[o];
    }
}

static void set(void *p, sa_dtype t, size_t o, int v) {
    switch (t) {
    case SA_FLOAT64: ((double *)p)[o] = v; break;
    case SA_FLOAT32: ((float *)p)[o] = (float)v; break;
    case SA_INT32: ((int32_t *)p)[o] = v; break;
    case SA_INT64: ((int64_t *)p)[o] = v; break;
    default: ((uint8_t *)p)[o] = (uint8_t)v; break;
    }
}

/* Checks every element == (reply ? 127 - v : v); writes the other pattern if asked. */
static const char *check_and(void *p, sa_dtype t, int f, int reply, int write_reply) {
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) {
                int v = 100 * i + 10 * j + k;
                size_t o = offset(f, i, j, k);
                if (get(p, t, o) != (reply ? 127 - v : v)) return "wrong element";
                if (write_reply) set(p, t, o, 127 - v);
            }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int create = strcmp(argv[1], "create") == 0, bad = 0;
    sa_array *arrs[10] = {0};
    char name[512];
    for (int d = 0; d < 5; d++)
        for (int f = 0; f < 2; f++) {
            snprintf(name, sizeof name, "%s-%s-%s", argv[2], dtypes[d], orders[f]);
            sa_array *a;
            const char *why = NULL;
            if (create) {
                if (sa_create(name, 3, shape, codes[d], f ? SA_ORDER_F : 0, &a) != SA_OK) {
                    printf("%s %s bad: %s\n", dtypes[d], orders[f], sa_last_error());
                    return 1;
                }
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 3; j++)
                        for (int k = 0; k < 4; k++)
                            set(sa_data(a), codes[d], offset(f, i, j, k), 100 * i + 10 * j + k);
                arrs[d * 2 + f] = a;
                continue;
            }
            if (sa_attach(name, 0, &a) != SA_OK) why = sa_last_error();
            else if (sa_get_dtype(a) != codes[d]) why = "wrong dtype";
            else if (sa_ndim(a) != 3 || memcmp(sa_shape(a), shape, sizeof shape)) why = "wrong shape";
            else if (sa_order(a) != (f ? SA_ORDER_F : SA_ORDER_C)) why = "wrong order";
            else why = check_and(sa_data(a), codes[d], f, 0, 1);
            printf("%s %s %s%s\n", dtypes[d], orders[f], why ? "bad: " : "ok", why ? why : "");
            bad |= why != NULL;
            sa_release(a);
        }
    if (!create) return bad;
    printf("ready\n");
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 1;
    for (int d = 0; d < 5; d++)
        for (int f = 0; f < 2; f++) {
            sa_array *a = arrs[d * 2 + f];
            const char *why = check_and(sa_data(a), codes[d], f, 1, 0);
            printf("%s %s %s%s\n", dtypes[d], orders[f], why ? "bad: " : "ok", why ? why : "");
            bad |= why != NULL;
            snprintf(name, sizeof name, "%s", sa_name(a));
            sa_release(a);
            sa_delete(name);
        }
    return bad;
}
