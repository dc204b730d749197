// The C++ wrapper's live-data calls (include/ndshm.hpp), run by tests/py/test_live.py:
// publish (same shape, then a new shape and dtype), an RAII write, a snapshot from a
// read-only handle, the lock as a BasicLockable, and a wait that times out.
#include <ndshm.hpp>
#include <cstdio>
#include <mutex>
int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const std::string name = argv[1];
    auto a = ndshm::Array::create(name, {4}, SA_FLOAT64, 0, 1024);
    double x[4] = {1, 2, 3, 4};
    uint64_t v = a.publish(x, 4);
    {
        ndshm::Array::Write w(a);
        a.data<double>()[0] = 9;
    }
    int32_t y[6] = {5, 5, 5, 5, 5, 5};
    v = a.publish<int32_t>({2, 3}, y, 6);
    auto b = ndshm::Array::attach(name, SA_READONLY);
    uint64_t sv = 0;
    auto s = b.snapshot<int32_t>(&sv);
    ndshm::Array::Lock lk(a);
    { std::lock_guard<ndshm::Array::Lock> g(lk); }
    std::printf("%llu %llu %zu %d %lld\n", (unsigned long long)v, (unsigned long long)sv, s.size(), s[5],
                (long long)b.shape()[1]);
    try {
        b.wait(v, 10);
    } catch (const ndshm::Error &e) {
        std::printf("%s\n", e.status() == SA_ERR_TIMEOUT ? "timeout" : e.what());
    }
    ndshm::remove(name);
}
