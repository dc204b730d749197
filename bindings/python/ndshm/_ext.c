/*
 * ndshm._ext: the compiled fast path of the Python binding (optional: ndshm/_lib.py
 * loads it; NDSHM_NO_EXT=1, or its absence, leaves everything to ctypes).
 *
 * A thin layer over the C ABI of include/ndshm.h: it converts Python objects to the C
 * arguments, calls the library, and turns the results into Python objects (numpy
 * arrays over the mapping, ints, ArrayDesc tuples). No logic of the core is repeated
 * here; every check the library makes it still makes. Errors become exceptions through
 * ndshm._lib.error_for, the same function the ctypes path uses, so the exceptions and
 * their messages are the same.
 *
 * Built for the stable ABI (Py_LIMITED_API = 3.9: one cp39-abi3 module for CPython 3.9
 * and newer) against numpy >= 2's headers, which support the limited API, with
 * NPY_TARGET_VERSION 1.21, so the same module runs with numpy 1.21 to 2.x (numpy's
 * documented rule: build against 2.x, run on any version down to the target). See
 * setup.py for why this and not the alternatives.
 *
 * The library is not linked: bind() takes the dlopen handle of the copy ctypes loaded
 * (ctypes.CDLL._handle) and looks the functions up in it, so both paths use one
 * instance of the library (one thread-local last error, whatever NDSHM_LIBRARY or the
 * bundled copy chose). The function types come from the header (__typeof__), so the
 * compiler checks every call against the declarations.
 *
 * The GIL: calls that can block or take long (create, attach, delete, release, list,
 * wait) run with it released, as ctypes calls do. The per-sample calls of live data
 * (version, publish, a snapshot's first attempt) keep it: they take well under a
 * microsecond for small arrays, and sa_publish requires that no other thread uses the
 * handle during the call, which holding the GIL guarantees for Python threads.
 */
#define Py_LIMITED_API 0x03090000
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API NPY_1_21_API_VERSION
#define NPY_TARGET_VERSION NPY_1_21_API_VERSION
#include <numpy/arrayobject.h>

#include <dlfcn.h>
#include <stdint.h>
#include <string.h>

#include "ndshm.h"

/* ------------------------------------------------------------ the library's functions */

#define SA_FUNCTIONS(X)                                                                  \
    X(sa_create) X(sa_create_ex) X(sa_attach_ex) X(sa_release) X(sa_describe)            \
    X(sa_delete_ex) X(sa_get_version) X(sa_wait_version) X(sa_publish) X(sa_read_copy)   \
    X(sa_list) X(sa_list_free) X(sa_dtype_str) X(sa_dtype_from_str) X(sa_store_append)

static struct {
#define DECLARE(f) __typeof__(f) *f;
    SA_FUNCTIONS(DECLARE)
#undef DECLARE
} api;

static int bound = 0;

/* What bind() received from ndshm: owned references, kept for the process's life. */
static PyObject *base_type;   /* ndshm.SharedMemoryBase */
static PyObject *error_for;   /* ndshm._lib.error_for(status) -> exception */
static PyObject *desc_type;   /* ndshm.ArrayDesc */
static PyObject *formats;     /* {SA_FORMAT_*: "v1", ...} */
static newfunc base_new;      /* SharedMemoryBase's tp_new (object's) */
static allocfunc desc_alloc;  /* ArrayDesc's tp_alloc (a tuple subclass: n items, NULL) */

/* Interned attribute names and constant strings. */
static PyObject *s_h, *s_addr, *s_size, *s_readonly, *s_format, *s_given_name, *s_geom, *s_iface;
static PyObject *s_C, *s_F, *s_ready, *s_initialising, *s_shm, *s_file, *s_unknown;

/* numpy dtypes by the library's type string ("<f8"): few, so a small table. The keys
 * are the library's static strings (sa_desc.typestr, sa_dtype_str), compared by
 * content. */
#define DTYPE_CACHE 64
static struct {
    char key[16];
    PyObject *descr; /* owned */
} dtypes[DTYPE_CACHE];
static int n_dtypes = 0;

/* The numpy dtype (a new reference) for a type string of the library. */
static PyArray_Descr *descr_for(const char *typestr) {
    if (typestr == NULL) {
        PyErr_SetString(PyExc_SystemError, "ndshm: the library gave no type string");
        return NULL;
    }
    for (int i = 0; i < n_dtypes; i++) {
        if (strcmp(dtypes[i].key, typestr) == 0) {
            Py_INCREF(dtypes[i].descr);
            return (PyArray_Descr *)dtypes[i].descr;
        }
    }
    PyArray_Descr *d = NULL;
    PyObject *s = PyUnicode_FromString(typestr);
    if (s == NULL)
        return NULL;
    /* PyArray_DescrConverter: numpy's own parsing of a dtype specification. */
    int ok = PyArray_DescrConverter(s, &d);
    Py_DECREF(s);
    if (!ok)
        return NULL;
    if (n_dtypes < DTYPE_CACHE && strlen(typestr) < sizeof dtypes[0].key) {
        strcpy(dtypes[n_dtypes].key, typestr); /* fits: length checked just above */
        Py_INCREF(d);
        dtypes[n_dtypes].descr = (PyObject *)d;
        n_dtypes++;
    }
    return d;
}

/* Raises the exception the ctypes path raises for `status`; returns NULL. Must run on
 * the thread that made the failed call (the message is the library's thread-local last
 * error), with the GIL. */
static PyObject *raise_status(int status) {
    PyObject *exc = PyObject_CallFunction(error_for, "i", status);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static int not_bound(void) {
    if (!bound) {
        PyErr_SetString(PyExc_RuntimeError, "ndshm._ext: bind() was not called");
        return 1;
    }
    return 0;
}

/* A handle as Python sees it: an int (the address), as ctypes' c_void_p takes it, or a
 * ctypes.c_void_p (its value). */
static sa_array *handle_of(PyObject *o) {
    void *p;
    if (PyLong_Check(o)) {
        p = PyLong_AsVoidPtr(o);
    } else {
        PyObject *v = PyObject_GetAttrString(o, "value");
        if (v == NULL)
            return NULL;
        p = v == Py_None ? NULL : PyLong_AsVoidPtr(v);
        Py_DECREF(v);
    }
    if (p == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "ndshm: the array was released");
    return (sa_array *)p;
}

/* ------------------------------------------------------------------------- bind */

PyDoc_STRVAR(bind_doc, "bind(dl_handle, SharedMemoryBase, error_for, ArrayDesc, formats)\n\n"
                       "Looks up the library's functions in the dlopen handle ctypes holds.");

static PyObject *ext_bind(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *handle, *bt, *ef, *dt, *fm;
    if (!PyArg_UnpackTuple(args, "bind", 5, 5, &handle, &bt, &ef, &dt, &fm))
        return NULL;
    if (!PyType_Check(bt) || !PyType_Check(dt) || !PyDict_Check(fm)) {
        PyErr_SetString(PyExc_TypeError, "bind: bad arguments");
        return NULL;
    }
    void *dl = PyLong_AsVoidPtr(handle);
    if (dl == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "bind: NULL library handle");
        return NULL;
    }
    /* SAFETY: dl is the handle ctypes got from dlopen for the library it keeps loaded
     * (ndshm._lib.lib lives as long as the process); dlsym only reads it. Each symbol
     * is the header's function of that name (the library is built from the header's
     * sources; ndshm._lib refuses a library missing any), so calling it through the
     * header's type is calling it as declared. */
#define LOOKUP(f)                                                                        \
    api.f = (__typeof__(f) *)dlsym(dl, #f);                                              \
    if (api.f == NULL) {                                                                 \
        PyErr_Format(PyExc_ImportError, "ndshm._ext: the library has no %s", #f);        \
        return NULL;                                                                     \
    }
    SA_FUNCTIONS(LOOKUP)
#undef LOOKUP
    newfunc nf = (newfunc)PyType_GetSlot((PyTypeObject *)bt, Py_tp_new);
    if (nf == NULL) {
        PyErr_SetString(PyExc_TypeError, "bind: SharedMemoryBase has no tp_new");
        return NULL;
    }
    /* ArrayDesc is a heap type (a NamedTuple class), so PyType_GetSlot may ask it (3.9).
     * Its tp_alloc gives an instance of n items, all NULL, that PyTuple_SetItem fills
     * (a tuple subclass with one reference), as tuple.__new__ itself does. */
    allocfunc da = (allocfunc)PyType_GetSlot((PyTypeObject *)dt, Py_tp_alloc);
    if (da == NULL) {
        PyErr_SetString(PyExc_TypeError, "bind: ArrayDesc has no tp_alloc");
        return NULL;
    }
    /* Each replaces what an earlier bind() gave (references owned by this module). */
    PyObject *old[4] = {base_type, error_for, desc_type, formats};
    Py_INCREF(bt);
    base_type = bt;
    Py_INCREF(ef);
    error_for = ef;
    Py_INCREF(dt);
    desc_type = dt;
    Py_INCREF(fm);
    formats = fm;
    for (int i = 0; i < 4; i++)
        Py_XDECREF(old[i]);
    base_new = nf;
    desc_alloc = da;
    bound = 1;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ create, attach, wrap */

/* shape (a tuple of ints the caller checked against int64) into out[SA_MAX_NDIM];
 * returns ndim, -1 with an exception, or -2 (no exception) for more dimensions than
 * out[] holds: the caller returns NotImplemented and the ctypes path passes them to the
 * library, which refuses them with its own message. */
static int dims_of(PyObject *shape, int64_t *out) {
    if (!PyTuple_Check(shape)) {
        PyErr_SetString(PyExc_TypeError, "shape must be a tuple");
        return -1;
    }
    Py_ssize_t n = PyTuple_Size(shape);
    if (n > SA_MAX_NDIM)
        return -2;
    for (Py_ssize_t i = 0; i < n; i++) {
        /* Borrowed from the tuple, which the caller holds. */
        long long v = PyLong_AsLongLong(PyTuple_GetItem(shape, i));
        if (v == -1 && PyErr_Occurred())
            return -1;
        out[i] = v;
    }
    return (int)n;
}

PyDoc_STRVAR(create_doc, "create(name: bytes, shape: tuple, dtype: int, flags: int, capacity: int | None) -> int\n\n"
                         "sa_create / sa_create_ex; returns the handle.");

static PyObject *ext_create(PyObject *self, PyObject *args) {
    (void)self;
    const char *name;
    PyObject *shape, *capacity;
    int dtype;
    unsigned int flags;
    if (not_bound() || !PyArg_ParseTuple(args, "yOiIO", &name, &shape, &dtype, &flags, &capacity))
        return NULL;
    int64_t dims[SA_MAX_NDIM];
    int ndim = dims_of(shape, dims);
    if (ndim == -2)
        Py_RETURN_NOTIMPLEMENTED;
    if (ndim < 0)
        return NULL;
    unsigned long long cap = 0;
    if (capacity != Py_None) {
        cap = PyLong_AsUnsignedLongLong(capacity);
        if (cap == (unsigned long long)-1 && PyErr_Occurred())
            return NULL;
    }
    sa_array *h = NULL;
    int st;
    /* SAFETY: name points into a bytes object the argument tuple holds (the "y" format
     * refuses embedded NULs), dims holds ndim int64 values, h is writable; the GIL is
     * released but none of these is a Python object's memory that another thread can
     * free: the bytes object is referenced by args until we return. */
    Py_BEGIN_ALLOW_THREADS
    if (capacity == Py_None)
        st = api.sa_create(name, ndim, dims, (sa_dtype)dtype, flags, &h);
    else
        st = api.sa_create_ex(name, ndim, dims, (sa_dtype)dtype, flags, cap, &h);
    Py_END_ALLOW_THREADS
    if (st != SA_OK)
        return raise_status(st);
    PyObject *r = PyLong_FromVoidPtr(h);
    if (r == NULL)
        api.sa_release(h); /* nobody else has the handle: released exactly once */
    return r;
}

PyDoc_STRVAR(attach_doc, "attach(name: bytes, flags: int, timeout_ms: int, shape: tuple | None, dtype: int) -> int\n\n"
                         "sa_attach_ex; returns the handle.");

static PyObject *ext_attach(PyObject *self, PyObject *args) {
    (void)self;
    const char *name;
    PyObject *shape;
    unsigned int flags;
    long long timeout_ms;
    int dtype;
    if (not_bound() || !PyArg_ParseTuple(args, "yILOi", &name, &flags, &timeout_ms, &shape, &dtype))
        return NULL;
    int64_t dims[SA_MAX_NDIM];
    int ndim = -1;
    if (shape != Py_None && (ndim = dims_of(shape, dims)) == -2)
        Py_RETURN_NOTIMPLEMENTED;
    if (ndim == -1 && PyErr_Occurred())
        return NULL;
    sa_array *h = NULL;
    int st;
    /* SAFETY: as in create; dims is read only when ndim >= 0. */
    Py_BEGIN_ALLOW_THREADS
    st = api.sa_attach_ex(name, flags, timeout_ms, ndim, ndim >= 0 ? dims : NULL, (sa_dtype)dtype, &h);
    Py_END_ALLOW_THREADS
    if (st != SA_OK)
        return raise_status(st);
    PyObject *r = PyLong_FromVoidPtr(h);
    if (r == NULL)
        api.sa_release(h);
    return r;
}

PyDoc_STRVAR(release_doc, "release(handle: int) -> None\n\nsa_release (unmap; never deletes).");

static PyObject *ext_release(PyObject *self, PyObject *arg) {
    (void)self;
    if (not_bound())
        return NULL;
    sa_array *h = handle_of(arg);
    if (h == NULL)
        return NULL;
    /* SAFETY: the caller (SharedMemoryBase.__del__) owns the handle and forgets it
     * before calling: released exactly once. */
    Py_BEGIN_ALLOW_THREADS
    api.sa_release(h);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyDoc_STRVAR(delete_doc, "delete(name: bytes, flags: int) -> None\n\nsa_delete_ex.");

static PyObject *ext_delete(PyObject *self, PyObject *args) {
    (void)self;
    const char *name;
    unsigned int flags;
    if (not_bound() || !PyArg_ParseTuple(args, "yI", &name, &flags))
        return NULL;
    int st;
    /* SAFETY: name is kept alive by args for the call. */
    Py_BEGIN_ALLOW_THREADS
    st = api.sa_delete_ex(name, flags);
    Py_END_ALLOW_THREADS
    if (st != SA_OK)
        return raise_status(st);
    Py_RETURN_NONE;
}

/* Sets base.<name> = value (stealing value); -1 on error. */
static int set(PyObject *base, PyObject *name, PyObject *value) {
    if (value == NULL)
        return -1;
    int r = PyObject_SetAttr(base, name, value);
    Py_DECREF(value);
    return r;
}

PyDoc_STRVAR(wrap_doc, "wrap(handle: int) -> numpy.ndarray\n\n"
                       "The numpy array over a handle's data, whose base (a SharedMemoryBase) owns the\n"
                       "handle from here: on any failure the handle is released.");

static PyObject *ext_wrap(PyObject *self, PyObject *arg) {
    (void)self;
    if (not_bound())
        return NULL;
    sa_array *h = handle_of(arg);
    if (h == NULL)
        return NULL;
    sa_desc d;
    /* SAFETY: h is a live handle the caller passes on to us; d is writable. */
    int st = api.sa_describe(h, &d);
    if (st != SA_OK) {
        PyObject *r = raise_status(st);
        api.sa_release(h); /* ours, and nobody else's: released once */
        return r;
    }
    PyObject *empty = PyTuple_New(0);
    PyObject *base = empty ? base_new((PyTypeObject *)base_type, empty, NULL) : NULL;
    Py_XDECREF(empty);
    if (base == NULL) {
        api.sa_release(h);
        return NULL;
    }
    /* From here the base owns the handle: its __del__ releases it (also when one of the
     * next steps fails and the base is dropped). _h is set first for that reason. */
    if (set(base, s_h, PyLong_FromVoidPtr(h)) < 0) {
        Py_DECREF(base); /* _h unset: __del__ has nothing to release... */
        api.sa_release(h); /* ...so release here, once */
        return NULL;
    }
    /* Each value is made only when its turn comes (|| stops at the first failure). */
    if (set(base, s_addr, PyLong_FromVoidPtr(d.data)) < 0 || set(base, s_size, PyLong_FromSize_t(d.nbytes)) < 0 ||
        set(base, s_readonly, PyBool_FromLong(d.readonly != 0)) < 0 ||
        set(base, s_format, PyLong_FromLong(d.format)) < 0 || PyObject_SetAttr(base, s_given_name, Py_None) < 0 ||
        PyObject_SetAttr(base, s_geom, Py_None) < 0) {
        Py_DECREF(base);
        return NULL;
    }
    /* _iface = (shape, strides, typestr), as SharedMemoryBase.__init__ sets it. */
    int nd = d.ndim < 0 ? 0 : d.ndim > SA_MAX_NDIM ? SA_MAX_NDIM : d.ndim;
    npy_intp shape[SA_MAX_NDIM], strides[SA_MAX_NDIM];
    PyObject *tshape = PyTuple_New(nd), *tstrides = PyTuple_New(nd);
    int bad = tshape == NULL || tstrides == NULL;
    for (int i = 0; i < nd; i++) {
        shape[i] = (npy_intp)d.shape[i];
        strides[i] = (npy_intp)d.strides[i];
        if (bad)
            continue;
        /* PyTuple_SetItem steals the item, also on failure; it does not refuse NULL, so
         * a failed PyLong is checked first (its exception is set). */
        PyObject *x = PyLong_FromLongLong(d.shape[i]), *y = PyLong_FromLongLong(d.strides[i]);
        if (x == NULL || y == NULL) {
            Py_XDECREF(x);
            Py_XDECREF(y);
            bad = 1;
        } else {
            int r1 = PyTuple_SetItem(tshape, i, x); /* each steals its item, also on failure */
            int r2 = PyTuple_SetItem(tstrides, i, y);
            bad = r1 < 0 || r2 < 0;
        }
    }
    PyObject *iface = bad ? NULL : Py_BuildValue("(OOs)", tshape, tstrides, d.typestr ? d.typestr : "");
    Py_XDECREF(tshape);
    Py_XDECREF(tstrides);
    if (set(base, s_iface, iface) < 0) {
        Py_DECREF(base);
        return NULL;
    }
    PyArray_Descr *descr = descr_for(d.typestr);
    if (descr == NULL) {
        Py_DECREF(base);
        return NULL;
    }
    /* numpy allocates its own memory when data is NULL; an array of no bytes may have
     * no data pointer from the library: give numpy the mapping's address instead (any
     * non-NULL address is valid for zero bytes, and no byte is ever read). */
    void *data = d.data;
    if (data == NULL)
        data = (void *)h;
    /* SAFETY: d.data points to d.nbytes bytes of the mapping, which stays mapped until
     * the handle is released; the handle belongs to `base`, which becomes the array's
     * base below, so the mapping outlives the array and every view of it (views keep
     * their base). shape and strides are the library's description of exactly that
     * memory (it checked them against the segment's size). PyArray_NewFromDescr steals
     * descr. A read-only mapping gives a read-only array (no WRITEABLE flag), so numpy
     * refuses writes before they would fault. */
    PyObject *a = PyArray_NewFromDescr(&PyArray_Type, descr, nd, shape, strides, data,
                                       d.readonly ? 0 : NPY_ARRAY_WRITEABLE, NULL);
    if (a == NULL) {
        Py_DECREF(base);
        return NULL;
    }
    /* Steals base, also on failure. */
    if (PyArray_SetBaseObject((PyArrayObject *)a, base) < 0) {
        Py_DECREF(a);
        return NULL;
    }
    return a;
}

/* -------------------------------------------------------------------- live data */

/* The base of an ndshm array (a borrowed reference), or NULL (no exception) when `a`
 * is not a plain ndshm array or base whose handle is live; *h gets its handle. */
static PyObject *base_of(PyObject *a, sa_array **h) {
    PyObject *b = a;
    if (PyArray_Check(a)) {
        /* PyArray_BASE: borrowed, alive as long as the array. */
        b = PyArray_BASE((PyArrayObject *)a);
        if (b == NULL)
            return NULL;
    }
    if ((PyObject *)Py_TYPE(b) != base_type)
        return NULL;
    PyObject *ho = PyObject_GetAttr(b, s_h);
    if (ho == NULL) {
        PyErr_Clear();
        return NULL;
    }
    void *p = ho == Py_None ? NULL : PyLong_AsVoidPtr(ho);
    Py_DECREF(ho);
    if (p == NULL) {
        PyErr_Clear();
        return NULL;
    }
    *h = (sa_array *)p;
    return b;
}

PyDoc_STRVAR(version_doc, "version(a) -> int | NotImplemented\n\n"
                          "sa_get_version; NotImplemented when `a` is not a plain ndshm array.");

static PyObject *ext_version(PyObject *self, PyObject *a) {
    (void)self;
    sa_array *h;
    if (not_bound())
        return NULL;
    if (base_of(a, &h) == NULL)
        Py_RETURN_NOTIMPLEMENTED;
    uint64_t v;
    /* SAFETY: h is the live handle of a base we hold a reference to (through `a`, held
     * by the caller), so it is not released during the call; v is writable. */
    int st = api.sa_get_version(h, &v);
    if (st != SA_OK)
        return raise_status(st);
    return PyLong_FromUnsignedLongLong(v);
}

PyDoc_STRVAR(wait_doc, "wait(a, newer_than: int, timeout_ms: int) -> int | NotImplemented\n\nsa_wait_version.");

static PyObject *ext_wait(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *a;
    unsigned long long newer;
    long long ms;
    sa_array *h;
    if (not_bound() || !PyArg_ParseTuple(args, "OKL", &a, &newer, &ms))
        return NULL;
    if (base_of(a, &h) == NULL)
        Py_RETURN_NOTIMPLEMENTED;
    uint64_t v;
    int st;
    /* SAFETY: `a` (held by args) keeps the base and so the handle alive while the GIL
     * is released: a handle is released only by its base's __del__, which cannot run
     * while we hold a reference. */
    Py_BEGIN_ALLOW_THREADS
    st = api.sa_wait_version(h, newer, ms, &v);
    Py_END_ALLOW_THREADS
    if (st != SA_OK)
        return raise_status(st);
    return PyLong_FromUnsignedLongLong(v);
}

/* The geometry the Python side cached on the base (_geom: (shape, dtype, order)), as
 * borrowed references; 0 when not cached (the caller then takes the slow path). */
static int geometry(PyObject *base, PyObject **geom, PyObject **shape, PyObject **dtype, int *f_order) {
    PyObject *g = PyObject_GetAttr(base, s_geom);
    if (g == NULL) {
        PyErr_Clear();
        return 0;
    }
    if (!PyTuple_Check(g) || PyTuple_Size(g) != 3) {
        Py_DECREF(g);
        return 0;
    }
    *geom = g; /* the caller releases it; the items below are borrowed from it */
    *shape = PyTuple_GetItem(g, 0);
    *dtype = PyTuple_GetItem(g, 1);
    PyObject *o = PyTuple_GetItem(g, 2);
    *f_order = o == s_F || (PyUnicode_Check(o) && PyUnicode_CompareWithASCIIString(o, "F") == 0);
    return 1;
}

/* Whether numpy array x has exactly this shape (a tuple of ints) and dtype, and is
 * contiguous in the given order. */
static int matches(PyArrayObject *x, PyObject *shape, PyObject *dtype, int f_order) {
    int nd = PyArray_NDIM(x);
    if (nd != PyTuple_Size(shape))
        return 0;
    npy_intp *dims = PyArray_DIMS(x);
    for (int i = 0; i < nd; i++) {
        long long v = PyLong_AsLongLong(PyTuple_GetItem(shape, i));
        if (v != (long long)dims[i]) {
            PyErr_Clear();
            return 0;
        }
    }
    if (!PyArray_ISALIGNED(x))
        return 0;
    if (!(f_order ? PyArray_IS_F_CONTIGUOUS(x) : PyArray_IS_C_CONTIGUOUS(x)))
        return 0;
    PyArray_Descr *xd = PyArray_DESCR(x);
    return (PyObject *)xd == dtype || PyArray_EquivTypes(xd, (PyArray_Descr *)dtype);
}

PyDoc_STRVAR(publish_doc, "publish(a, data) -> int | NotImplemented\n\n"
                          "sa_publish of a numpy array of the array's cached shape, dtype and order;\n"
                          "NotImplemented for anything else (the Python path handles it).");

static PyObject *ext_publish(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *a, *data, *geom, *shape, *dtype;
    int f_order;
    sa_array *h;
    if (not_bound() || !PyArg_UnpackTuple(args, "publish", 2, 2, &a, &data))
        return NULL;
    PyObject *base = base_of(a, &h);
    if (base == NULL || !PyArray_CheckExact(data) || !geometry(base, &geom, &shape, &dtype, &f_order))
        Py_RETURN_NOTIMPLEMENTED;
    int ok = PyObject_TypeCheck(dtype, &PyArrayDescr_Type) && matches((PyArrayObject *)data, shape, dtype, f_order);
    Py_DECREF(geom);
    if (!ok)
        Py_RETURN_NOTIMPLEMENTED;
    uint64_t v;
    /* SAFETY: data is a numpy array held by args, aligned and contiguous, so its
     * PyArray_NBYTES bytes at PyArray_DATA are readable; `a` keeps the handle alive.
     * The GIL stays held: sa_publish requires that no other thread uses the handle
     * during the call, and it cannot block (a concurrent writer gives SA_ERR_BUSY). */
    int st = api.sa_publish(h, PyArray_DATA((PyArrayObject *)data), (size_t)PyArray_NBYTES((PyArrayObject *)data),
                            &v);
    if (st != SA_OK)
        return raise_status(st);
    return PyLong_FromUnsignedLongLong(v);
}

PyDoc_STRVAR(snapshot_doc, "snapshot(a, out, timeout_ms: int, return_version: bool) -> result | NotImplemented\n\n"
                           "sa_read_copy into `out` or a new array of the cached geometry; NotImplemented\n"
                           "when the geometry is not cached, `out` does not match it, or the shape changed\n"
                           "(the Python path then describes the array and reads again).");

static PyObject *ext_snapshot(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *a, *out, *geom, *shape, *dtype, *pms, *prv;
    int f_order;
    sa_array *h;
    /* Unpacked by hand: PyArg_ParseTuple's format parsing is a measurable part of a
     * call that takes a quarter of a microsecond. */
    if (not_bound() || !PyArg_UnpackTuple(args, "snapshot", 4, 4, &a, &out, &pms, &prv))
        return NULL;
    long long ms = PyLong_AsLongLong(pms);
    if (ms == -1 && PyErr_Occurred())
        return NULL;
    int return_version = PyObject_IsTrue(prv);
    if (return_version < 0)
        return NULL;
    PyObject *base = base_of(a, &h);
    if (base == NULL || !geometry(base, &geom, &shape, &dtype, &f_order))
        Py_RETURN_NOTIMPLEMENTED;
    PyObject *dst = NULL;
    if (out == Py_None) {
        npy_intp dims[SA_MAX_NDIM];
        Py_ssize_t nd = PyTuple_Size(shape);
        int ok = nd <= SA_MAX_NDIM;
        for (Py_ssize_t i = 0; ok && i < nd; i++) {
            dims[i] = (npy_intp)PyLong_AsSsize_t(PyTuple_GetItem(shape, i));
            ok = !(dims[i] == -1 && PyErr_Occurred());
        }
        if (ok && PyObject_TypeCheck(dtype, &PyArrayDescr_Type)) {
            Py_INCREF(dtype); /* stolen by PyArray_NewFromDescr */
            /* A new private array (numpy allocates it), in the array's order. */
            dst = PyArray_NewFromDescr(&PyArray_Type, (PyArray_Descr *)dtype, (int)nd, dims, NULL, NULL,
                                       f_order ? NPY_ARRAY_F_CONTIGUOUS : 0, NULL);
            if (dst == NULL) {
                Py_DECREF(geom);
                return NULL;
            }
        }
        PyErr_Clear();
    } else if (PyArray_CheckExact(out) && PyArray_ISWRITEABLE((PyArrayObject *)out) &&
               PyObject_TypeCheck(dtype, &PyArrayDescr_Type) && matches((PyArrayObject *)out, shape, dtype, f_order)) {
        Py_INCREF(out);
        dst = out;
    }
    Py_DECREF(geom);
    if (dst == NULL)
        Py_RETURN_NOTIMPLEMENTED;
    PyArrayObject *d = (PyArrayObject *)dst;
    uint64_t v = 0;
    int32_t reshaped = 0;
    /* SAFETY: dst is a writeable, aligned, contiguous numpy array we hold a reference
     * to: PyArray_NBYTES bytes at PyArray_DATA are ours to write (the library writes at
     * most dst_bytes); `a` keeps the handle alive. The first attempt (timeout 0: try
     * once) keeps the GIL; if it overlapped a write, the retries wait with the GIL
     * released (up to the caller's timeout), during which dst and `a` stay referenced. */
    int st = api.sa_read_copy(h, PyArray_DATA(d), (size_t)PyArray_NBYTES(d), 0, &v, &reshaped);
    if (st == SA_ERR_TIMEOUT && ms != 0) {
        Py_BEGIN_ALLOW_THREADS
        st = api.sa_read_copy(h, PyArray_DATA(d), (size_t)PyArray_NBYTES(d), ms, &v, &reshaped);
        Py_END_ALLOW_THREADS
    }
    if (st == SA_ERR_MISMATCH || (st == SA_OK && reshaped)) {
        /* The shape changed since it was cached (the library reports a change once per
         * handle): forget the cached geometry, so the Python path describes it again. */
        Py_DECREF(dst);
        if (PyObject_SetAttr(base, s_geom, Py_None) < 0)
            return NULL;
        Py_RETURN_NOTIMPLEMENTED;
    }
    if (st != SA_OK) {
        Py_DECREF(dst);
        return raise_status(st);
    }
    if (!return_version)
        return dst;
    PyObject *pv = PyLong_FromUnsignedLongLong(v);
    if (pv == NULL) {
        Py_DECREF(dst);
        return NULL;
    }
    PyObject *r = PyTuple_Pack(2, dst, pv);
    Py_DECREF(dst);
    Py_DECREF(pv);
    return r;
}

/* ------------------------------------------------------------------------- list */

static PyObject *int_or_none(long long v, int none) {
    if (none)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(v);
}

/* The host string of the last entry listed (see entry_desc); owned. */
static PyObject *last_host;
static size_t last_host_len;
static char last_host_bytes[sizeof(((sa_list_entry *)0)->host)];

/* Takes a new tuple (or tuple subclass instance, e.g. an ArrayDesc) out of the cyclic
 * garbage collector when none of its items is tracked: such a tuple cannot be part of
 * a reference cycle (tuples are immutable, and their items hold no references the
 * collector follows), which is exactly when CPython's collector untracks a tuple itself
 * (at its first collection). Doing it at creation spares listing 50,000 arrays the
 * collections that traverse every entry made so far (~0.8 us per entry measured).
 * NULL is a no-op. */
static void untrack_if_atomic(PyObject *t) {
    if (t == NULL || !PyTuple_Check(t) || !PyObject_GC_IsTracked(t))
        return;
    Py_ssize_t n = PyTuple_Size(t);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyObject_GC_IsTracked(PyTuple_GetItem(t, i))) /* borrowed, alive in t */
            return;
    }
    PyObject_GC_UnTrack(t);
}

/* One ArrayDesc (as ndshm._desc makes it) from an entry; NULL with an exception. */
static PyObject *entry_desc(const sa_list_entry *e) {
    const char *ts = api.sa_dtype_str(e->dtype);
    if (ts == NULL) {
        PyErr_Format(PyExc_SystemError, "ndshm: dtype code %d unknown to the library", (int)e->dtype);
        return NULL;
    }
    /* The ArrayDesc itself (a tuple subclass), allocated as tuple.__new__ would and
     * filled in place: no temporary tuple. Its 15 fields, in its order. */
    PyObject *v = desc_alloc((PyTypeObject *)desc_type, 15);
    if (v == NULL)
        return NULL;
    int nd = e->ndim < 0 ? 0 : e->ndim > SA_MAX_NDIM ? SA_MAX_NDIM : e->ndim;
    PyObject *dims = PyTuple_New(nd);
    for (int i = 0; dims != NULL && i < nd; i++) {
        PyObject *x = PyLong_FromLongLong(e->shape[i]);
        if (x == NULL || PyTuple_SetItem(dims, i, x) < 0) {
            Py_CLEAR(dims);
        }
    }
    untrack_if_atomic(dims);
    PyObject *fmt = PyLong_FromLong(e->format);
    PyObject *fname = fmt ? PyDict_GetItemWithError(formats, fmt) : NULL; /* borrowed */
    Py_XDECREF(fmt);
    if (fname == NULL && !PyErr_Occurred())
        fname = s_unknown;
    Py_XINCREF(fname);
    /* The host: usually the same for every entry, so the last one's string is reused
     * (compared by content; strings are immutable). */
    size_t hlen = strnlen(e->host, sizeof e->host);
    PyObject *host;
    if (last_host != NULL && hlen == last_host_len && memcmp(e->host, last_host_bytes, hlen) == 0) {
        host = last_host;
        Py_INCREF(host);
    } else {
        host = PyUnicode_DecodeUTF8(e->host, (Py_ssize_t)hlen, "replace");
        if (host != NULL) {
            Py_XDECREF(last_host);
            Py_INCREF(host);
            last_host = host;
            last_host_len = hlen;
            memcpy(last_host_bytes, e->host, hlen); /* hlen <= sizeof e->host == sizeof last_host_bytes */
        }
    }
    PyObject *alive = e->creator_alive == 1 ? Py_True : e->creator_alive == 0 ? Py_False : Py_None;
    Py_INCREF(alive);
    PyObject *order = e->order == SA_ORDER_F ? s_F : s_C;
    PyObject *state = e->state == SA_STATE_READY ? s_ready : s_initialising;
    PyObject *backend = e->backend == SA_BACKEND_SHM ? s_shm : s_file;
    Py_INCREF(order);
    Py_INCREF(state);
    Py_INCREF(backend);
    PyObject *items[15] = {
        PyUnicode_DecodeUTF8(e->name, (Py_ssize_t)strlen(e->name), "surrogateescape"),
        (PyObject *)descr_for(ts),
        dims,
        order,
        fname,
        PyLong_FromUnsignedLongLong(e->nbytes),
        PyLong_FromUnsignedLongLong(e->capacity),
        state,
        int_or_none(e->creator_pid, e->creator_pid == 0),
        alive,
        PyLong_FromLongLong(e->created_ns),
        PyLong_FromUnsignedLong(e->mode),
        PyLong_FromUnsignedLong(e->uid),
        host,
        backend,
    };
    int failed = 0;
    for (int i = 0; i < 15; i++) {
        /* PyTuple_SetItem steals the item (also on failure); a NULL item is a failure
         * whose exception is set. */
        if (items[i] == NULL || PyTuple_SetItem(v, i, items[i]) < 0) {
            failed = 1;
            for (int j = i + 1; j < 15; j++)
                Py_XDECREF(items[j]);
            break;
        }
    }
    if (failed) {
        Py_DECREF(v);
        return NULL;
    }
    untrack_if_atomic(v);
    return v;
}

PyDoc_STRVAR(list_doc, "list(where: bytes | None) -> list[ArrayDesc]\n\nsa_list, each entry as an ArrayDesc.");

static PyObject *ext_list(PyObject *self, PyObject *arg) {
    (void)self;
    if (not_bound())
        return NULL;
    const char *where = NULL;
    if (arg != Py_None) {
        if (!PyBytes_Check(arg)) {
            PyErr_SetString(PyExc_TypeError, "where must be bytes or None");
            return NULL;
        }
        where = PyBytes_AsString(arg); /* kept alive by the caller; NUL refused by the caller */
        if (where == NULL)
            return NULL;
    }
    sa_list_entry *entries = NULL;
    size_t count = 0;
    int st;
    /* SAFETY: where is NULL or a NUL-terminated string held by the caller; the outputs
     * are writable. */
    Py_BEGIN_ALLOW_THREADS
    st = api.sa_list(where, &entries, &count);
    Py_END_ALLOW_THREADS
    if (st != SA_OK)
        return raise_status(st);
    PyObject *out = PyList_New((Py_ssize_t)count);
    for (size_t i = 0; out != NULL && i < count; i++) {
        /* SAFETY: entries holds count entries until sa_list_free below. */
        PyObject *d = entry_desc(&entries[i]);
        if (d == NULL || PyList_SetItem(out, (Py_ssize_t)i, d) < 0)
            Py_CLEAR(out);
    }
    /* Freed exactly once, on success and on failure. */
    api.sa_list_free(entries, count);
    return out;
}

/* ----------------------------------------------------------------------- module */

/* The library's dtype code of a numpy dtype, or -1 (not one of ndshm's dtypes: the
 * caller falls back to Python, which names the problem). A small cache keyed by the
 * descriptor (numpy keeps one per builtin type), filled through the library's own
 * parser of numpy type strings. */
#define CODE_CACHE 32
static struct {
    PyObject *descr; /* owned */
    sa_dtype code;
} codes[CODE_CACHE];
static int n_codes = 0;

static sa_dtype code_of(PyArray_Descr *d) {
    for (int i = 0; i < n_codes; i++)
        if (codes[i].descr == (PyObject *)d)
            return codes[i].code;
    PyObject *str = PyObject_GetAttrString((PyObject *)d, "str");
    if (str == NULL) {
        PyErr_Clear();
        return -1;
    }
    /* (PyUnicode_AsUTF8AndSize joined the limited API only in 3.10.) */
    PyObject *bytes = PyUnicode_AsUTF8String(str);
    Py_DECREF(str);
    const char *c = bytes == NULL ? NULL : PyBytes_AsString(bytes);
    sa_dtype code = -1;
    if (c == NULL || api.sa_dtype_from_str(c, &code) != SA_OK)
        code = -1;
    PyErr_Clear();
    Py_XDECREF(bytes);
    if (code >= 0 && n_codes < CODE_CACHE) {
        Py_INCREF(d);
        codes[n_codes].descr = (PyObject *)d;
        codes[n_codes].code = code;
        n_codes++;
    }
    return code;
}

PyDoc_STRVAR(store_append_doc, "store_append(store, name, rows) -> int | NotImplemented\n\n"
             "sa_store_append of a C-contiguous, aligned numpy array of rows (axis 0) of one of "
             "ndshm's dtypes: the new length. NotImplemented for anything else.");

static PyObject *ext_store_append(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *store, *name, *rows;
    if (not_bound() || !PyArg_UnpackTuple(args, "store_append", 3, 3, &store, &name, &rows))
        return NULL;
    if (!PyArray_CheckExact(rows) || !PyBytes_Check(name))
        Py_RETURN_NOTIMPLEMENTED;
    PyArrayObject *r = (PyArrayObject *)rows;
    int nd = PyArray_NDIM(r);
    if (nd < 1 || nd > SA_MAX_NDIM + 1 || !PyArray_IS_C_CONTIGUOUS(r) || !PyArray_ISALIGNED(r))
        Py_RETURN_NOTIMPLEMENTED;
    sa_dtype code = code_of(PyArray_DESCR(r));
    if (code < 0)
        Py_RETURN_NOTIMPLEMENTED;
    void *st = PyLong_AsVoidPtr(store);
    if (st == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "store_append: closed store");
        return NULL;
    }
    const char *cname = PyBytes_AsString(name);
    if (cname == NULL)
        return NULL;
    npy_intp *dims = PyArray_DIMS(r);
    int64_t row_shape[SA_MAX_NDIM];
    for (int i = 1; i < nd; i++)
        row_shape[i - 1] = (int64_t)dims[i];
    int64_t len = 0;
    /* SAFETY: st is the store handle the Store object owns (it calls this only while
     * open; the C store may be used from several threads at once); cname is a
     * NUL-terminated bytes object held by args; rows is a numpy array held by args,
     * aligned and C-contiguous, so dims[0] rows of its row size are readable at
     * PyArray_DATA. The GIL is released, as ctypes does: the append may wait for
     * another process's appender holding the array's lock (args keeps rows and name
     * alive meanwhile). */
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = api.sa_store_append((const sa_store *)st, cname, nd - 1, row_shape, code, PyArray_DATA(r),
                                 (uint64_t)dims[0], &len);
    Py_END_ALLOW_THREADS
    if (status != SA_OK)
        return raise_status(status);
    return PyLong_FromLongLong(len);
}

static PyMethodDef methods[] = {
    {"store_append", ext_store_append, METH_VARARGS, store_append_doc},
    {"bind", ext_bind, METH_VARARGS, bind_doc},
    {"create", ext_create, METH_VARARGS, create_doc},
    {"attach", ext_attach, METH_VARARGS, attach_doc},
    {"wrap", ext_wrap, METH_O, wrap_doc},
    {"release", ext_release, METH_O, release_doc},
    {"delete", ext_delete, METH_VARARGS, delete_doc},
    {"version", ext_version, METH_O, version_doc},
    {"wait", ext_wait, METH_VARARGS, wait_doc},
    {"publish", ext_publish, METH_VARARGS, publish_doc},
    {"snapshot", ext_snapshot, METH_VARARGS, snapshot_doc},
    {"list", ext_list, METH_O, list_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ndshm._ext", "The compiled fast path of the ndshm binding (see ndshm/_fast.py).",
    -1, methods, NULL, NULL, NULL, NULL,
};

static int intern(PyObject **slot, const char *s) {
    *slot = PyUnicode_InternFromString(s);
    return *slot == NULL ? -1 : 0;
}

PyMODINIT_FUNC PyInit__ext(void) {
    /* numpy's C API table (from its capsule), checked against the headers' ABI and
     * the target API version; fails with numpy's own message. */
    import_array();
    if (intern(&s_h, "_h") || intern(&s_addr, "_addr") || intern(&s_size, "_size") ||
        intern(&s_readonly, "_readonly") || intern(&s_format, "_format") || intern(&s_given_name, "_given_name") ||
        intern(&s_geom, "_geom") || intern(&s_iface, "_iface") || intern(&s_C, "C") || intern(&s_F, "F") || intern(&s_ready, "ready") ||
        intern(&s_initialising, "initialising") || intern(&s_shm, "shm") || intern(&s_file, "file") ||
        intern(&s_unknown, "?"))
        return NULL;
    return PyModule_Create(&module);
}
