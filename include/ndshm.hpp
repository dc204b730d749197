// ndshm.hpp: header-only C++ wrapper over the ndshm C API (ndshm.h).
//
//   ndshm::Array a = ndshm::Array::create("shm://sim-out", {1000, 1000}, SA_FLOAT64);
//   double *x = a.data<double>();            // checks the dtype
//   ndshm::Array b = ndshm::Array::attach("shm://sim-out", SA_READONLY);
//   ndshm::remove("shm://sim-out");          // b stays valid
//
// RAII: the handle is released (unmapped, never deleted) by the destructor; Array is
// movable, not copyable. Failures throw ndshm::Error carrying the status and the
// library's message. With C++20, span<T>() gives a std::span over the elements.
#ifndef NDSHM_HPP
#define NDSHM_HPP

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if __cplusplus >= 202002L
#include <span>
#endif

#include "ndshm.h"

namespace ndshm {

/// A failed ndshm call: status() is the SA_ERR_* code, what() the library's message.
class Error : public std::runtime_error {
  public:
    Error(int status, const std::string &msg) : std::runtime_error(msg), status_(status) {}
    int status() const noexcept { return status_; }

  private:
    int status_;
};

inline void check(int status) {
    if (status != SA_OK) throw Error(status, std::string(sa_status_str(status)) + ": " + sa_last_error());
}

/// The dtype code for a C++ element type.
template <class T> constexpr sa_dtype dtype_of() {
    static_assert(!std::is_same<T, T>::value, "no ndshm dtype for this type");
    return SA_DTYPE_ANY;
}
#define NDSHM_DTYPE(T, code) \
    template <> constexpr sa_dtype dtype_of<T>() { return code; }
NDSHM_DTYPE(int8_t, SA_INT8)
NDSHM_DTYPE(uint8_t, SA_UINT8)
NDSHM_DTYPE(int16_t, SA_INT16)
NDSHM_DTYPE(uint16_t, SA_UINT16)
NDSHM_DTYPE(int32_t, SA_INT32)
NDSHM_DTYPE(uint32_t, SA_UINT32)
NDSHM_DTYPE(int64_t, SA_INT64)
NDSHM_DTYPE(uint64_t, SA_UINT64)
NDSHM_DTYPE(float, SA_FLOAT32)
NDSHM_DTYPE(double, SA_FLOAT64)
#undef NDSHM_DTYPE

class Array {
  public:
    /// sa_create: zero-filled, memory reserved unless SA_SPARSE.
    /// capacity: bytes reserved for data (sa_create_ex), so publish() can later change the
    /// shape and dtype in place; 0 reserves exactly the shape's bytes.
    static Array create(const std::string &name, std::vector<int64_t> shape, sa_dtype dtype,
                        uint32_t flags = 0, uint64_t capacity = 0) {
        sa_array *h = nullptr;
        check(sa_create_ex(name.c_str(), static_cast<int32_t>(shape.size()), shape.data(), dtype, flags,
                           capacity, &h));
        return Array(h);
    }
    /// sa_attach_ex: timeout_ms 0 tries once; expect a shape/dtype or leave them empty/any.
    /// flags: SA_READONLY, SA_POPULATE, SA_ALLOW_OTHER_OWNER (accept another user's
    /// array), SA_FOLLOW_SYMLINKS.
    static Array attach(const std::string &name, uint32_t flags = 0, int64_t timeout_ms = 0,
                        const std::vector<int64_t> *expect_shape = nullptr,
                        sa_dtype expect_dtype = SA_DTYPE_ANY) {
        sa_array *h = nullptr;
        int32_t ndim = expect_shape ? static_cast<int32_t>(expect_shape->size()) : -1;
        check(sa_attach_ex(name.c_str(), flags, timeout_ms, ndim,
                           expect_shape ? expect_shape->data() : nullptr, expect_dtype, &h));
        return Array(h);
    }

    Array(Array &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Array &operator=(Array &&o) noexcept {
        if (this != &o) {
            sa_release(h_);
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }
    Array(const Array &) = delete;
    Array &operator=(const Array &) = delete;
    ~Array() { sa_release(h_); }

    std::string name() const { return sa_name(h_); }
    sa_dtype dtype() const { return sa_get_dtype(h_); }
    int32_t ndim() const { return sa_ndim(h_); }
    std::vector<int64_t> shape() const {
        const int64_t *s = sa_shape(h_);
        return std::vector<int64_t>(s, s + ndim());
    }
    bool fortran_order() const { return sa_order(h_) == SA_ORDER_F; }
    bool readonly() const { return sa_is_readonly(h_) == 1; }
    size_t nbytes() const { return sa_nbytes(h_); }
    size_t size() const { return sa_nbytes(h_) / sa_itemsize(h_); }
    void *raw() const { return sa_data(h_); }
    sa_array *handle() const { return h_; }

    /// Typed pointer; throws Error(SA_ERR_MISMATCH) when T is not the array's dtype.
    template <class T> T *data() const {
        if (dtype_of<T>() != dtype())
            throw Error(SA_ERR_MISMATCH, name() + ": the array holds " + sa_dtype_str(dtype()) +
                                             ", not " + sa_dtype_str(dtype_of<T>()));
        return static_cast<T *>(raw());
    }
#if __cplusplus >= 202002L
    template <class T> std::span<T> span() const { return std::span<T>(data<T>(), size()); }
#endif
    template <class T> void fill(T value) {
        (void)data<T>();
        check(sa_fill(h_, &value));
    }
    void msync(int32_t flags = SA_MS_SYNC) { check(sa_msync(h_, flags)); }
    void mlock() { check(sa_mlock(h_)); }
    void munlock() { check(sa_munlock(h_)); }

    // Live data (see README, "Live data"). Versions count completed writes.

    /// The latest published version.
    uint64_t version() const {
        uint64_t v = 0;
        check(sa_get_version(h_, &v));
        return v;
    }
    /// Publishes `values` (exactly size() elements of the array's dtype) as the next
    /// version: readers' snapshots see all of it or none. Returns the version.
    template <class T> uint64_t publish(const T *values, size_t count) {
        (void)data<T>();
        uint64_t v = 0;
        check(sa_publish(h_, values, count * sizeof(T), &v));
        return v;
    }
    /// Publishes `values` with a new shape (and T's dtype), atomically with the data; it
    /// must fit the capacity (else Error SA_ERR_NO_SPACE), or pass SA_GROW.
    template <class T>
    uint64_t publish(const std::vector<int64_t> &shape, const T *values, size_t count, uint32_t flags = 0) {
        uint64_t v = 0;
        check(sa_publish_shape(h_, static_cast<int32_t>(shape.size()), shape.data(), dtype_of<T>(), values,
                               count * sizeof(T), flags, &v));
        return v;
    }
    /// A consistent snapshot of the data as a vector of T (the snapshot's size), retrying
    /// while writers write for at most timeout_ms (Error SA_ERR_TIMEOUT after). shape()
    /// then describes the snapshot.
    template <class T> std::vector<T> snapshot(uint64_t *version = nullptr, int64_t timeout_ms = 1000) {
        std::vector<T> out(size());
        for (;;) {
            int32_t reshaped = 0;
            int rc = sa_read_copy(h_, out.data(), out.size() * sizeof(T), timeout_ms, version, &reshaped);
            if (rc == SA_ERR_MISMATCH || (rc == SA_OK && reshaped && out.size() * sizeof(T) != nbytes())) {
                out.resize(nbytes() / sizeof(T));
                continue;
            }
            check(rc);
            (void)data<T>();
            return out;
        }
    }
    /// Sleeps (no CPU) until a version newer than `newer_than` is published; returns it.
    /// timeout_ms < 0: no limit. Error SA_ERR_TIMEOUT, SA_ERR_STALE (attach again).
    uint64_t wait(uint64_t newer_than, int64_t timeout_ms = -1) const {
        uint64_t v = 0;
        check(sa_wait_version(h_, newer_than, timeout_ms, &v));
        return v;
    }

    /// RAII write: begins in the constructor, publishes in the destructor.
    class Write {
      public:
        explicit Write(Array &a) : h_(a.h_) {
            int rc = sa_write_begin(h_);
            repair_ = rc == SA_ERR_OWNER_DIED; // begun; the previous writer died mid-write
            if (!repair_) check(rc);
        }
        ~Write() { sa_write_end(h_, nullptr); }
        Write(const Write &) = delete;
        Write &operator=(const Write &) = delete;
        bool repair() const { return repair_; }

      private:
        sa_array *h_;
        bool repair_ = false;
    };

    /// The process-shared lock, as a BasicLockable (std::lock_guard<Array::Lock>).
    /// lock() returns normally also when the previous holder died: owner_died() says so.
    class Lock {
      public:
        explicit Lock(const Array &a) : h_(a.h_) {}
        void lock() {
            int rc = sa_lock(h_, -1);
            owner_died_ = rc == SA_ERR_OWNER_DIED;
            if (!owner_died_) check(rc);
        }
        bool try_lock() {
            int rc = sa_lock(h_, 0);
            if (rc == SA_ERR_BUSY) return false;
            owner_died_ = rc == SA_ERR_OWNER_DIED;
            if (!owner_died_) check(rc);
            return true;
        }
        void unlock() { check(sa_unlock(h_)); }
        bool owner_died() const { return owner_died_; }

      private:
        sa_array *h_;
        bool owner_died_ = false;
    };

  private:
    explicit Array(sa_array *h) : h_(h) {}
    sa_array *h_;
};

/// sa_delete_ex: removes the name (only an array); existing mappings stay valid.
/// flags: SA_DELETE_IN_PROGRESS also removes an array a live creator is still filling.
inline void remove(const std::string &name, uint32_t flags = 0) {
    check(sa_delete_ex(name.c_str(), flags));
}

} // namespace ndshm

#endif // NDSHM_HPP
