"""The binding's view of the C API, ndshm/_abi.py, is generated from include/ndshm.h
(scripts/gen_python.py) and must match both the header and the C compiler: constants'
values, every struct's size, alignment and field offsets, and each parameter's size
and signedness, as a C program compiled against the header prints them."""

import ctypes
import difflib
import importlib.util
import re
import subprocess

import pytest

from conftest import ROOT

from ndshm import _abi, _lib

HEADER = (ROOT / "include" / "ndshm.h").read_text()


def _generator():
    spec = importlib.util.spec_from_file_location("gen_python", ROOT / "scripts" / "gen_python.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = _generator()
SIMPLE = type(ctypes.c_int)  # the metaclass of ctypes' scalar types
MODEL = gen.parse(HEADER)

# Functions whose integer result is a number, not a status. Every other integer result
# is a status, and ctypes must check it (ndshm/_lib.py: STATUS_FUNCTIONS).
VALUE_RESULTS = {
    "sa_ndim", "sa_get_dtype", "sa_itemsize", "sa_nbytes", "sa_capacity", "sa_order", "sa_format",
    "sa_is_readonly", "sa_dtype_itemsize", "sa_last_errno", "sa_format_version",
}


def test_abi_is_generated_from_the_current_header():
    fresh = gen.generate(HEADER)
    current = gen.OUT.read_text()
    if current != fresh:
        diff = "".join(list(difflib.unified_diff(current.splitlines(True), fresh.splitlines(True),
                                                 "_abi.py (committed)", "_abi.py (from the header)"))[:60])
        pytest.fail(f"bindings/python/ndshm/_abi.py is stale: run `{gen.COMMAND}`\n{diff}")


def test_the_parser_finds_every_function_a_plain_regex_finds():
    """A second, cruder reading of the header: the same functions with the same arity."""
    code = re.sub(r"/\*.*?\*/", "", HEADER, flags=re.S)
    protos = {}
    for m in re.finditer(r"^[A-Za-z_][\w \*]*?\b(sa_\w+)\(([^)]*)\);", code, re.M):
        args = [a for a in m.group(2).split(",") if a.strip() and a.strip() != "void"]
        protos[m.group(1)] = len(args)
    assert len(protos) > 30
    assert {n: len(a) for n, (_, a) in _abi.DECLARATIONS.items()} == protos
    defines = set(re.findall(r"^#define (SA_\w+) ", code, re.M))
    assert defines <= set(_abi.__all__)


def test_the_library_functions_are_declared_from_the_abi():
    for name, (restype, argtypes) in _abi.DECLARATIONS.items():
        f = getattr(_lib.lib, name)
        assert (f.restype, f.argtypes) == (restype, argtypes), name
    for name in _abi.__all__:
        if name.startswith("SA_"):
            assert getattr(_lib, name) == getattr(_abi, name)


def test_every_status_is_checked():
    """A nonzero status raises: every function returning one has ctypes' errcheck."""
    for name, fn in MODEL.functions.items():
        restype = _abi.DECLARATIONS[name][0]
        if not isinstance(restype, SIMPLE) or restype._type_ in "PzZ?fdg":
            continue  # void, pointers, strings, floats
        if name in VALUE_RESULTS:
            assert name not in _lib.STATUS_FUNCTIONS, name
            assert getattr(_lib.lib, name).errcheck is None, name
        else:
            assert name in _lib.STATUS_FUNCTIONS, (
                f"{name} returns {fn.result.c_spelling()}: a status (then ndshm/_lib.py must treat "
                f"it as one) or a number (then add it to VALUE_RESULTS here)?")
            assert getattr(_lib.lib, name).errcheck is _lib._errcheck, name
    with pytest.raises(ValueError, match="NUL|empty|name") as e:
        _lib.lib.sa_delete(b"")
    assert e.value.status == _abi.SA_ERR_INVALID


def test_every_status_code_has_an_exception():
    codes = {n: v for n, v in MODEL.constants.items() if n.startswith("SA_ERR_")}
    assert len(codes) >= 14
    for name, value in codes.items():
        assert value in _lib._EXCEPTIONS, f"{name} ({value}) has no exception in ndshm/_lib.py"
    exc = _lib.error_for(-1000)
    assert isinstance(exc, OSError) and exc.status == -1000 and "(-1000)" in str(exc)


def _c_program():
    """C that prints, as the compiler sees them, what the test compares with ctypes."""
    out = ["#include <stddef.h>", "#include <stdio.h>", "#include <ndshm.h>", "",
           "#define SIGNED(T) ((T)-1 < (T)1)", "", "int main(void) {"]
    p = out.append
    for name, value in MODEL.constants.items():
        if isinstance(value, int):
            p(f'  printf("const {name} %lld\\n", (long long)({name}));')
        else:
            p(f'  printf("const {name} \\"%s\\"\\n", {name});')
    for alias, target in MODEL.aliases.items():
        if not target.startswith("struct "):
            p(f'  printf("type {alias} %zu %d\\n", sizeof({alias}), (int)SIGNED({alias}));')
    for pyname, s in MODEL.structs.items():
        p(f'  printf("struct {pyname} %zu %zu\\n", sizeof({s.c_name}), _Alignof({s.c_name}));')
        for field, _, _ in s.fields:
            p(f'  printf("field {pyname}.{field} %zu %zu\\n", offsetof({s.c_name}, {field}), '
              f"sizeof((({s.c_name} *)0)->{field}));")
    for fname, fn in MODEL.functions.items():
        for i, d in enumerate([fn.result] + fn.params):
            t = d.c_spelling()
            if t == "void" or d.dims:
                continue
            signed = "0" if d.depth or t in ("char", "bool") else f"(int)SIGNED({t})"
            p(f'  printf("arg {fname} {i} %zu %d\\n", sizeof({t}), {signed});')
    p("  return 0;")
    p("}")
    # Redeclaring every function with the types as the parser read them: a conflict
    # with the header's prototype does not compile.
    redecl = [f"{fn.result.c_spelling()} {name}("
              + (", ".join(d.c_spelling() for d in fn.params) or "void") + ");"
              for name, fn in MODEL.functions.items()]
    return "\n".join(out[:3] + redecl + out[3:]) + "\n"


@pytest.fixture(scope="module")
def compiler_view(tmp_path_factory):
    d = tmp_path_factory.mktemp("layout")
    (d / "layout.c").write_text(_c_program())
    subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'include'}",
                    str(d / "layout.c"), "-o", str(d / "layout")], check=True)
    lines = subprocess.run([str(d / "layout")], check=True, capture_output=True, text=True).stdout
    return [line.split(" ", 2) for line in lines.splitlines()]


def _signed(t):
    return isinstance(t, SIMPLE) and t._type_ in "bhilqfdg"


def test_constants_types_and_struct_layouts_match_the_compiler(compiler_view):
    kinds = {}
    for kind, name, rest in compiler_view:
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == "const":
            value = getattr(_abi, name)
            assert (f'"{value}"' if isinstance(value, str) else str(value)) == rest, name
        elif kind == "type":
            size, signed = map(int, rest.split())
            t = getattr(_abi, name)
            assert (ctypes.sizeof(t), _signed(t)) == (size, bool(signed)), name
        elif kind == "struct":
            size, align = map(int, rest.split())
            cls = getattr(_abi, name)
            assert (ctypes.sizeof(cls), ctypes.alignment(cls)) == (size, align), name
        elif kind == "field":
            struct, field = name.split(".")
            offset, size = map(int, rest.split())
            desc = getattr(getattr(_abi, struct), field)
            assert (desc.offset, desc.size) == (offset, size), name
        elif kind == "arg":
            i, size, signed = map(int, rest.split())
            restype, argtypes = _abi.DECLARATIONS[name]
            t = ([restype] + argtypes)[i]
            what = f"{name} {'result' if i == 0 else f'parameter {i}'}"
            assert ctypes.sizeof(t) == size, what
            if signed or _signed(t):
                assert _signed(t) == bool(signed), what
    assert kinds["struct"] == len(MODEL.structs) >= 2
    assert kinds["field"] == sum(len(s.fields) for s in MODEL.structs.values())
    assert kinds["const"] == len(MODEL.constants) and kinds["arg"] > 60


def test_the_generator_refuses_what_it_cannot_read():
    end = "#endif  /* NDSHM_H */"
    for bad in ["typedef union u { int a; } u;", "struct q { int a : 3; };", "typedef int (*cb)(int);",
                "int f(foo_t x);", "#if defined(__linux__)\n#endif", "int g(int, ...);",
                "#define SA_X (uint32_t)1", "#define SA_Y(a) a"]:
        with pytest.raises(gen.HeaderError):
            gen.parse(HEADER.replace(end, bad + "\n" + end))


def test_the_generator_reads_enums_forward_declarations_and_nested_arrays():
    extra = """
typedef enum sa_kind { K_A, K_B = SA_MAX_NDIM, K_C } sa_kind;
typedef struct node node;
struct node { struct node *next; const struct sa_desc *d; int64_t grid[SA_MAX_NDIM][2]; sa_kind k; bool b; };
sa_dtype sa_walk(node *n, const char *const *names,
                 int64_t dims[4]);
"""
    end = "#endif  /* NDSHM_H */"
    ns = {}
    exec(gen.generate(HEADER.replace(end, extra + end)), ns)  # noqa: S102 - our generator's output
    assert (ns["K_A"], ns["K_B"], ns["K_C"]) == (0, 32, 33)
    node = ns["node"]
    assert [f for f, _ in node._fields_] == ["next", "d", "grid", "k", "b"]
    assert node.next.size == 8 and node.grid.size == 32 * 2 * 8 and ctypes.sizeof(ns["sa_kind"]) == 4
    restype, argtypes = ns["DECLARATIONS"]["sa_walk"]
    assert restype is ctypes.c_int32
    assert argtypes == [ctypes.POINTER(node), ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_int64)]
    assert ns["C_RESULTS"]["sa_walk"] == "sa_dtype"
