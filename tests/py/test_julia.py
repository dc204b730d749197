"""No Julia here: the wrapper is checked statically against include/ndshm.h as
scripts/gen_python.py's parser reads it. Every ccall names a header function, with its
number of arguments and types that match the C types; every SA_* constant has the
header's value; the dtype table has exactly the header's dtypes, each with its code,
and covers every dtype the library knows."""

import ctypes
import importlib.util
import re

import numpy as np

from conftest import ROOT, library

HEADER = (ROOT / "include" / "ndshm.h").read_text()
JL = (ROOT / "bindings" / "julia" / "src" / "NDShm.jl").read_text()


def _generator():
    spec = importlib.util.spec_from_file_location("gen_python", ROOT / "scripts" / "gen_python.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = _generator()
MODEL = gen.parse(HEADER)

# Julia element type -> numpy dtype name (the header's constant is SA_<NAME>).
JULIA_NUMPY = {"Bool": "bool", "Int8": "int8", "UInt8": "uint8", "Int16": "int16", "UInt16": "uint16",
               "Int32": "int32", "UInt32": "uint32", "Int64": "int64", "UInt64": "uint64",
               "Float16": "float16", "Float32": "float32", "Float64": "float64",
               "ComplexF32": "complex64", "ComplexF64": "complex128"}

# C scalar type -> the Julia types that are the same in a ccall.
JULIA_SCALARS = {
    "int": {"Cint", "Int32"}, "unsigned int": {"Cuint", "UInt32"}, "bool": {"Bool"}, "char": {"Cchar", "UInt8"},
    "int8_t": {"Int8"}, "uint8_t": {"UInt8"}, "int16_t": {"Int16"}, "uint16_t": {"UInt16"},
    "int32_t": {"Int32", "Cint"}, "uint32_t": {"UInt32", "Cuint"}, "int64_t": {"Int64"},
    "uint64_t": {"UInt64"}, "size_t": {"Csize_t", "UInt"}, "float": {"Cfloat", "Float32"},
    "double": {"Cdouble", "Float64"},
}


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
    return [p.replace(" ", "") for p in parts if p.strip()]


def ccalls():
    """(function, result type, [argument types]) for every ccall in the wrapper."""
    out = []
    for m in re.finditer(r"ccall\(\(:(\w+),\s*libndshm\),\s*([^,]+),\s*\(", JL):
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(JL[i], 0)
            i += 1
        out.append((m.group(1), m.group(2).strip(), split_top(JL[m.end():i - 1])))
    return out


def julia_types(decl, role):
    """The Julia spellings a ccall may use for a C declaration (a set), or a regex."""
    base, depth = " ".join(decl.base), decl.depth + len(decl.dims)
    while base in MODEL.aliases:
        base = MODEL.aliases[base]
    if base.startswith("enum "):
        base = "int"
    if depth == 0:
        return {"Cvoid", "Nothing"} if base == "void" else JULIA_SCALARS[base]
    opaque = base == "void" or (base.startswith("struct ") and base.split()[1] in MODEL.opaque)
    if depth == 1 and base == "char":
        inner = {"Cstring", "Ptr{UInt8}", "Ptr{Cchar}"}
    elif depth == 1 and opaque:
        inner = {"Ptr{Cvoid}", "Ptr{Nothing}"}
    elif depth == 1 and base.startswith("struct "):
        return re.compile(r"(Ptr|Ref)\{\w+\}")  # a Julia struct: its layout is not checked here
    else:
        pointee = julia_types(gen.Decl(decl.tokens, decl.base, depth - 1, [], None), "pointee")
        inner = {f"Ptr{{{t}}}" for t in pointee} | ({f"Ref{{{t}}}" for t in pointee} if role == "param" else set())
    return inner


def matches(julia, allowed):
    return bool(allowed.fullmatch(julia)) if isinstance(allowed, re.Pattern) else julia in allowed


def test_every_ccall_matches_the_header():
    calls = ccalls()
    assert len(calls) >= 10 and len(calls) == JL.count("ccall("), "a ccall this test cannot read"
    assert "@ccall" not in JL
    for fn, result, args in calls:
        assert fn in MODEL.functions, f"{fn} is not declared in include/ndshm.h"
        f = MODEL.functions[fn]
        assert len(f.params) == len(args), f"{fn}: the header has {len(f.params)} arguments, the ccall {len(args)}"
        assert matches(result, julia_types(f.result, "result")), (
            f"{fn}: returns {f.result.c_spelling()}, the ccall says {result}")
        for i, (d, jt) in enumerate(zip(f.params, args)):
            assert matches(jt, julia_types(d, "param")), (
                f"{fn} argument {i + 1} ({d.name}): {d.c_spelling()} in the header, {jt} in the ccall")


def _julia_int(expr, where):
    """The value of a Julia integer constant: 5, -1, 0x100, 1 << 8, a | b, T(...)."""
    expr = re.sub(r"^\w+\((.*)\)$", r"\1", expr.strip())
    try:
        return gen.c_int_value(expr, {k: v for k, v in MODEL.constants.items() if isinstance(v, int)}, where)
    except gen.HeaderError:
        raise AssertionError(f"{where}: cannot read {expr!r} as an integer") from None


def test_constants_match_the_header():
    lines = [line for line in JL.splitlines() if re.match(r"\s*const SA_", line)]
    assert len(lines) >= 5
    for line in lines:
        m = re.fullmatch(r"\s*const (SA_\w+)\s*=\s*(.+?)\s*(#.*)?", line)
        assert m, f"cannot read {line!r}"
        name, expr = m.group(1), m.group(2)
        assert name in MODEL.constants, f"{name} is not in include/ndshm.h"
        assert _julia_int(expr, name) == MODEL.constants[name], name


def header_dtypes():
    """{constant: code} for the header's dtype constants: SA_<numpy dtype name>."""
    out = {}
    for name, value in MODEL.constants.items():
        suffix = name[3:].lower()
        try:
            is_dtype = name.startswith("SA_") and np.dtype(suffix).name == suffix
        except TypeError:
            is_dtype = False
        if is_dtype:
            out[name] = value
    return out


def julia_dtypes():
    block = re.search(r"const DTYPES = Dict\{DataType,\s*Int32\}\((.*?)\n\)", JL, re.S)
    assert block, "the DTYPES table is not where this test looks for it"
    entries = split_top(block.group(1).replace("\n", " "))
    table = {}
    for e in entries:
        m = re.fullmatch(r"(\w+)=>(.+)", e)
        assert m, f"cannot read DTYPES entry {e!r}"
        assert m.group(1) not in table, f"{m.group(1)} twice in DTYPES"
        table[m.group(1)] = _julia_int(m.group(2), f"DTYPES {m.group(1)}")
    return table


def test_dtype_table_matches_the_header_and_the_library():
    header = header_dtypes()
    table = julia_dtypes()
    assert len(header) >= 14
    for jt, code in table.items():
        assert jt in JULIA_NUMPY, f"{jt}: add its numpy dtype to JULIA_NUMPY in this test"
        const = "SA_" + JULIA_NUMPY[jt].upper()
        assert header.get(const) == code, f"DTYPES {jt} => {code}, the header has {const} = {header.get(const)}"
    missing = {n for n, v in header.items() if v not in table.values()}
    assert not missing, f"dtypes of the header without a Julia type in DTYPES: {sorted(missing)}"
    # The library's own list: every code it names is in the table, with the same type.
    ns = {}
    exec(gen.generate(HEADER), ns)  # noqa: S102 - the generated _abi.py
    lib = ctypes.CDLL(str(library()))
    lib.sa_dtype_str.restype, lib.sa_dtype_str.argtypes = ns["DECLARATIONS"]["sa_dtype_str"]
    by_code = {code: jt for jt, code in table.items()}
    known = [c for c in range(-256, 256) if lib.sa_dtype_str(c) is not None]
    assert len(known) >= 14
    for code in known:
        assert code in by_code, f"the library's dtype {code} ({lib.sa_dtype_str(code).decode()}) is not in DTYPES"
        assert np.dtype(lib.sa_dtype_str(code).decode()) == np.dtype(JULIA_NUMPY[by_code[code]]), by_code[code]
