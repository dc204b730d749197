// C++ consumer built through CMake's find_package(ndshm): creates an array with the
// RAII wrapper, attaches it again with a shape check, and shows errors as exceptions.
#include <ndshm.hpp>

#include <cstdio>
#include <numeric>

int main(int argc, char **argv) {
    std::string name = argc > 1 ? argv[1] : "shm://ndshm-cpp-example";
    try {
        auto a = ndshm::Array::create(name, {4, 5}, SA_FLOAT64, SA_FORCE);
        double *x = a.data<double>();
        for (size_t i = 0; i < a.size(); i++) x[i] = double(i);
        std::vector<int64_t> want{4, 5};
        auto b = ndshm::Array::attach(name, SA_READONLY, 1000, &want, SA_FLOAT64);
#if __cplusplus >= 202002L
        auto s = b.span<double>();
        double sum = std::accumulate(s.begin(), s.end(), 0.0);
#else
        double sum = std::accumulate(b.data<double>(), b.data<double>() + b.size(), 0.0);
#endif
        std::printf("c++: %s shape (%lld, %lld) sum %.1f\n", b.name().c_str(),
                    (long long)b.shape()[0], (long long)b.shape()[1], sum);
        try {
            (void)b.data<float>();
        } catch (const ndshm::Error &e) {
            std::printf("c++: expected error %d: %s\n", e.status(), e.what());
        }
        ndshm::remove(name);
        try {
            ndshm::Array::attach(name);
        } catch (const ndshm::Error &e) {
            std::printf("c++: after delete: %s\n", e.status() == SA_ERR_NOT_FOUND ? "not found" : e.what());
        }
    } catch (const ndshm::Error &e) {
        std::fprintf(stderr, "c++: %s\n", e.what());
        return 1;
    }
    return 0;
}
