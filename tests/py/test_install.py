"""`make install` into a temporary prefix, then consumers that know only the prefix:
a C program built through pkg-config, a C++ program built through CMake's
find_package(ndshm), and a static link."""

import os
import shutil
import subprocess

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    p = tmp_path_factory.mktemp("prefix")
    subprocess.run(["make", "-s", "-C", str(ROOT), "install", f"PREFIX={p}"], check=True)
    return p


def test_installed_layout(prefix):
    lib = prefix / "lib"
    real = lib / "libndshm.so.0.1.0"
    assert real.is_file() and not real.is_symlink()
    assert os.readlink(lib / "libndshm.so.0.1") == "libndshm.so.0.1.0"
    assert os.readlink(lib / "libndshm.so") == "libndshm.so.0.1"
    soname = subprocess.run(["readelf", "-d", str(real)], capture_output=True, text=True).stdout
    assert "Library soname: [libndshm.so.0.1]" in soname
    for f in ["lib/libndshm.a", "include/ndshm.h", "include/ndshm.hpp", "lib/pkgconfig/ndshm.pc",
              "lib/cmake/ndshm/ndshmConfig.cmake", "lib/cmake/ndshm/ndshmConfigVersion.cmake",
              "share/ndshm/fortran/ndshm.f90"]:
        assert (prefix / f).is_file(), f
    # The command-line tool, runnable from the prefix.
    tool = subprocess.run([str(prefix / "bin" / "ndshm"), "--version"], capture_output=True, text=True)
    assert tool.returncode == 0 and tool.stdout.startswith("ndshm "), tool


def test_c_program_through_pkg_config(prefix, tmp_path):
    if not shutil.which("pkg-config"):
        pytest.skip("pkg-config is not installed (apt-get install pkg-config)")
    e = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "ndshm"], capture_output=True, text=True,
                           env=e, check=True).stdout.split()
    incdir = subprocess.run(["pkg-config", "--variable=includedir", "ndshm"], capture_output=True,
                            text=True, env=e, check=True).stdout.strip()
    assert os.path.samefile(incdir, prefix / "include"), "the .pc file is relocatable"
    exe = tmp_path / "consumer"
    subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", str(ROOT / "examples-c/consumer.c"), *flags,
                    f"-Wl,-rpath,{prefix}/lib", "-o", str(exe)], check=True, env=e)
    prod = tmp_path / "producer"
    subprocess.run(["cc", "-std=c11", str(ROOT / "examples-c/producer.c"), *flags,
                    f"-Wl,-rpath,{prefix}/lib", "-o", str(prod)], check=True, env=e)
    name = f"shm://ndshm-pc-{os.getpid()}"
    subprocess.run([str(prod), name, "10", "10"], check=True, capture_output=True)
    r = subprocess.run([str(exe), name, "--delete"], capture_output=True, text=True)
    assert r.returncode == 0 and "shape (10, 10)" in r.stdout, r.stderr
    ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True).stdout
    assert f"{prefix}/lib/libndshm.so.0.1" in ldd, ldd
    # Static: no libndshm.so needed at run time.
    stat = tmp_path / "consumer-static"
    static_flags = subprocess.run(["pkg-config", "--cflags", "--libs", "--static", "ndshm"],
                                  capture_output=True, text=True, env=e, check=True).stdout.split()
    subprocess.run(["cc", "-std=c11", str(ROOT / "examples-c/list.c"), f"-I{prefix}/include",
                    str(prefix / "lib/libndshm.a"), *[f for f in static_flags if f.startswith("-l") and f != "-lndshm"],
                    "-o", str(stat)], check=True)
    assert "libndshm" not in subprocess.run(["ldd", str(stat)], capture_output=True, text=True).stdout
    assert subprocess.run([str(stat)], capture_output=True).returncode == 0


def test_cpp_program_through_cmake(prefix, tmp_path):
    if not shutil.which("cmake"):
        pytest.skip("cmake is not installed (apt-get install cmake)")
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", str(ROOT / "examples-cpp"), "-B", str(build), f"-DCMAKE_PREFIX_PATH={prefix}",
                    "-DCMAKE_BUILD_TYPE=Release"], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    name = f"shm://ndshm-cpp-{os.getpid()}"
    r = subprocess.run([str(build / "ndshm_cpp_example"), name], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"c++: {name} shape (4, 5) sum 190.0" in r.stdout
    assert "expected error -5" in r.stdout and "holds <f8, not <f4" in r.stdout
    assert "after delete: not found" in r.stdout
    # An incompatible version request fails.
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "CMakeLists.txt").write_text("cmake_minimum_required(VERSION 3.16)\nproject(x C)\n"
                                        "find_package(ndshm 1.0 REQUIRED)\n")
    r = subprocess.run(["cmake", "-S", str(bad), "-B", str(bad / "b"), f"-DCMAKE_PREFIX_PATH={prefix}"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "ndshm" in r.stderr
