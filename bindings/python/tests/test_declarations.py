"""The ctypes declarations and constants must match include/ndshm.h."""

import re

from conftest import ROOT

from ndshm import _lib

HEADER = (ROOT / "include" / "ndshm.h").read_text()


def test_every_declared_function_is_in_the_header_with_its_arity():
    protos = {}
    for m in re.finditer(r"^[\w\s\*]*?\b(sa_\w+)\(([^)]*)\);", HEADER, re.M):
        args = [a for a in m.group(2).split(",") if a.strip() and a.strip() != "void"]
        protos[m.group(1)] = len(args)
    assert len(protos) > 30
    for name, (_, argtypes) in _lib.DECLARATIONS.items():
        assert name in protos, f"{name} is not in include/ndshm.h"
        assert protos[name] == len(argtypes), f"{name}: header has {protos[name]} args"
    missing = set(protos) - set(_lib.DECLARATIONS)
    assert not missing, f"declare these in ndshm/_lib.py: {sorted(missing)}"


def test_constants_match_the_header():
    defines = {}
    for m in re.finditer(r"^#define (SA_\w+) (.+)$", HEADER, re.M):
        defines[m.group(1)] = eval(m.group(2).replace("(", "(").strip())  # noqa: S307 - our header
    checked = 0
    for name, value in vars(_lib).items():
        if name.startswith("SA_") and name in defines:
            assert value == defines[name], name
            checked += 1
    assert checked >= 35
    # Every status code and flag of the header is known to the binding.
    for name in defines:
        if name.startswith(("SA_ERR_", "SA_MS_")) or name in ("SA_READONLY", "SA_FORCE"):
            assert hasattr(_lib, name), name


def test_list_entry_layout_matches():
    m = re.search(r"typedef struct sa_list_entry \{(.*?)\} sa_list_entry;", HEADER, re.S)
    fields = re.findall(r"^\s+[\w ]+?\*?\s*\*?(\w+)(?:\[\d+\])?;", m.group(1), re.M)
    assert fields == [f for f, _ in _lib.sa_list_entry._fields_]
