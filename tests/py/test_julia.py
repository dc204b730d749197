"""No Julia here: check the wrapper statically against the header. Every ccall must
name a function that include/ndshm.h declares, with the same number of arguments, and
the dtype codes and flags must match the header's."""

import re

from conftest import ROOT

HEADER = (ROOT / "include" / "ndshm.h").read_text()
JL = (ROOT / "bindings" / "julia" / "src" / "NDShm.jl").read_text()


def header_arity():
    protos = {}
    for m in re.finditer(r"\b(sa_\w+)\(([^)]*)\);", HEADER):
        args = [a for a in m.group(2).split(",") if a.strip() and a.strip() != "void"]
        protos[m.group(1)] = len(args)
    return protos


def ccalls():
    """(function, number of argument types) for every ccall in the wrapper."""
    out = []
    for m in re.finditer(r"ccall\(\(:(\w+),\s*libndshm\),\s*[^,]+,\s*\(", JL):
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(JL[i], 0)
            i += 1
        types = JL[m.end():i - 1].strip()
        n = 0 if not types else len([t for t in split_top(types) if t.strip()])
        out.append((m.group(1), n))
    return out


def split_top(s):
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def test_every_ccall_matches_the_header():
    protos = header_arity()
    calls = ccalls()
    assert len(calls) >= 10
    for fn, n in calls:
        assert fn in protos, f"{fn} is not declared in include/ndshm.h"
        assert protos[fn] == n, f"{fn}: the header has {protos[fn]} arguments, the ccall {n}"


def test_constants_match_the_header():
    defines = {m.group(1): int(eval(m.group(2))) for m in  # noqa: S307 - our header
               re.finditer(r"^#define (SA_\w+) (.+)$", HEADER, re.M)}
    for name, value in re.findall(r"const (SA_\w+) = \w+\((-?\d+)\)", JL):
        assert defines[name] == int(value), name
    julia_types = {"Bool": "SA_BOOL", "Int8": "SA_INT8", "UInt8": "SA_UINT8", "Int16": "SA_INT16",
                   "UInt16": "SA_UINT16", "Int32": "SA_INT32", "UInt32": "SA_UINT32", "Int64": "SA_INT64",
                   "UInt64": "SA_UINT64", "Float16": "SA_FLOAT16", "Float32": "SA_FLOAT32",
                   "Float64": "SA_FLOAT64", "ComplexF32": "SA_COMPLEX64", "ComplexF64": "SA_COMPLEX128"}
    table = dict(re.findall(r"(\w+) => (\d+)", JL.split("const DTYPES")[1].split(")")[0] + ")"))
    assert set(table) == set(julia_types)
    for jt, const in julia_types.items():
        assert int(table[jt]) == defines[const], jt
