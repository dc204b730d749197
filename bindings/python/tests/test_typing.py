"""Typed and documented: `mypy --strict` accepts a user script (typed_usage.py) calling
every public function, the script runs, and every public function and method has
annotations and a docstring saying what it takes, returns and raises."""

import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys

import pytest

import ndshm
import ndshm.compat
from conftest import INSTALLED, PKG_PATH

HERE = os.path.dirname(os.path.abspath(__file__))
USAGE = os.path.join(HERE, "typed_usage.py")


def public_modules():
    """ndshm and every compat module (new ones are found, not listed here)."""
    mods = [ndshm]
    for m in pkgutil.iter_modules(ndshm.compat.__path__):
        if not m.name.startswith("_"):
            mods.append(importlib.import_module(f"ndshm.compat.{m.name}"))
    return mods


def public_names(mod):
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n, v in vars(mod).items() if not n.startswith("_")
                 and getattr(v, "__module__", None) == mod.__name__]
    return sorted(names)


def functions():
    """(qualified name, function) for every public function, class and method."""
    out = []
    for mod in public_modules():
        for n in public_names(mod):
            v = getattr(mod, n)
            if inspect.isfunction(v):
                out.append((f"{mod.__name__}.{n}", v))
            elif inspect.isclass(v) and not issubclass(v, BaseException) and not issubclass(v, tuple):
                for mn, mv in vars(v).items():
                    if mn.startswith("_"):
                        continue
                    if isinstance(mv, property):  # an attribute: its type and a line of text
                        out.append((f"{mod.__name__}.{n}.{mn} (property)", mv.fget))
                    elif inspect.isfunction(mv):
                        out.append((f"{mod.__name__}.{n}.{mn}", mv))
    return out


def test_every_public_name_is_used_in_the_typed_script():
    text = open(USAGE).read()
    aliases = {"ndshm": "ndshm"}
    for m in re.finditer(r"^import (ndshm\.compat\.\w+) as (\w+)$", text, re.M):
        aliases[m.group(1)] = m.group(2)
    missing = []
    for mod in public_modules():
        alias = aliases.get(mod.__name__)
        if alias is None:
            missing.append(f"import {mod.__name__} as ...")
            continue
        for n in public_names(mod):
            if not re.search(rf"\b{alias}\.{n}\b", text):
                missing.append(f"{mod.__name__}.{n}")
    for qual, _ in functions():
        if qual.count(".") >= 2 and "SharedMemoryBase" in qual:  # methods, via a base object
            meth = qual.split(" ")[0].rsplit(".", 1)[1]
            if not re.search(rf"\.{meth}\b", text):
                missing.append(qual)
    assert not missing, f"call these in {USAGE}: {missing}"


@pytest.mark.parametrize("qual,fn", functions(), ids=[q for q, _ in functions()])
def test_public_function_is_annotated_and_documented(qual, fn):
    sig = inspect.signature(fn)
    params = [p for p in sig.parameters.values() if p.name not in ("self", "cls")]
    unannotated = [p.name for p in params if p.annotation is inspect.Parameter.empty]
    assert not unannotated, f"{qual}: annotate {unannotated}"
    assert sig.return_annotation is not inspect.Signature.empty, f"{qual}: annotate the return type"
    doc = inspect.getdoc(fn) or ""
    assert doc, f"{qual}: no docstring"
    if qual.endswith("(property)"):
        return
    if params:
        assert "Args:" in doc, f"{qual}: document the parameters (Args:)"
        for p in params:
            assert re.search(rf"^\s+\*{{0,2}}{p.name}:", doc, re.M), f"{qual}: document parameter {p.name}"
    if sig.return_annotation not in (None, "None"):
        assert "Returns:" in doc, f"{qual}: document the return value (Returns:)"
    assert "Raises:" in doc or "Never raises" in doc, f"{qual}: document the exceptions (Raises:)"


def test_mypy_strict_accepts_the_typed_script(tmp_path):
    pytest.importorskip("mypy", reason="pip install mypy (make test's python-deps installs it)")
    args = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), USAGE]
    env = dict(os.environ)
    if not INSTALLED:
        # The source tree is not an installed package: use its types but report errors
        # only in the user's script, as mypy does for an installed package.
        env["MYPYPATH"] = PKG_PATH
        args[3:3] = ["--follow-imports=silent"]
    r = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_typed_script_runs(uname):
    n = uname()
    r = subprocess.run([sys.executable, USAGE, n], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=PKG_PATH))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "typed usage ok"
    assert not os.path.exists(f"/dev/shm/{n}")


def test_help_is_useful():
    doc = inspect.getdoc(ndshm.create)
    for word in ("Args:", "name:", "shape:", "force:", "Returns:", "Raises:", "FileExistsError"):
        assert word in doc, word
    p = inspect.signature(ndshm.create).parameters["raise_on_error"]
    assert p.default is True and p.annotation in (bool, "bool")
