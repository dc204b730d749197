"""The README's commands work as written.

The C section's program (the ```c block after the `<!-- app.c: ... -->` marker) is
saved as app.c and the lines of the ```sh block after the `<!-- build: ... -->` marker
(`make lib`, the `cc ...` line, `./app`) run verbatim with bash. `make` runs in the
repository's root; the other lines run in a stand-in for it (app.c next to links to
the repository's include/ and target/), so nothing is written into the work tree.
`NDSHM_DIR` keeps the program's array in a temporary directory, where the test checks
and deletes it. The other commands the README shows are checked cheaply: every
`make TARGET` names a Makefile target, every script or directory they name exists.
"""

import os
import re
import shlex
import subprocess
import sys

from conftest import ROOT, env

README = ROOT / "README.md"


def block_after(marker, lang):
    """The body of the first ```lang block after the HTML comment `<!-- marker`."""
    text = README.read_text()
    i = text.find("<!-- " + marker)
    assert i >= 0, f"README.md has no `<!-- {marker}` marker"
    m = re.compile(r"```" + lang + r"\n(.*?)```", re.S).search(text, i)
    assert m, f"no ```{lang} block after the `{marker}` marker in README.md"
    return m.group(1)


def test_readme_c_program_builds_and_runs_as_documented(tmp_path):
    program = block_after("app.c:", "c")
    script = block_after("build:", "sh")
    lines = [ln for ln in script.splitlines() if ln.strip()]
    assert lines[0].split("#")[0].split() == ["make", "lib"], "the build starts with `make lib`"
    cc = [ln for ln in lines if ln.startswith("cc ")]
    assert len(cc) == 1 and "app.c" in cc[0] and "-o app" in cc[0], lines
    expected = re.search(r"^\./app\s+# prints: (.*)$", script, re.M)
    assert expected, "the block runs ./app and says what it prints"

    # The repository's root, as the compiler and the program see it.
    root = tmp_path / "root"
    root.mkdir()
    (root / "app.c").write_text(program)
    for d in ("include", "target"):
        (root / d).symlink_to(ROOT / d)
    shm = tmp_path / "shm"
    shm.mkdir()
    e = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD")}
    e["NDSHM_DIR"] = str(shm)
    devshm = "/dev/shm/sim-out"
    existed = os.path.exists(devshm)

    # The block verbatim, in one bash with -e; `make` runs in the real root.
    prelude = f"set -e\nmake() {{ command make -s -C {shlex.quote(str(ROOT))} \"$@\"; }}\n"
    r = subprocess.run(["bash", "-c", prelude + script], cwd=root, env=e,
                       capture_output=True, text=True)
    assert r.returncode == 0, f"the README's build lines failed:\n{script}\n{r.stdout}\n{r.stderr}"
    assert r.stdout.splitlines()[-1] == expected.group(1), r.stdout
    assert os.path.exists(devshm) == existed, "the array went to NDSHM_DIR, not /dev/shm"

    # make lib made the SONAME link, and the program loads the library through it.
    lib = ROOT / "target" / "release" / "libndshm.so"
    soname = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True,
                            check=True).stdout.split("Library soname: [")[1].split("]")[0]
    link = lib.parent / soname
    assert link.is_symlink() and link.resolve() == lib.resolve(), f"{link} -> {lib} missing"
    ldd = subprocess.run(["ldd", str(root / "app")], capture_output=True, text=True).stdout
    assert f"{root}/target/release/{soname}" in ldd, ldd

    # What the program made: a 1000x1000 float64 array, zero but x[0] = 42. Then delete it.
    check = ("import ndshm; a = ndshm.attach('shm://sim-out', ro=True); "
             "print(a.shape, a.dtype, a[0, 0], a.sum()); del a; ndshm.delete('shm://sim-out')")
    r = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                       env=dict(env(), NDSHM_DIR=str(shm)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["(1000,", "1000)", "float64", "42.0", "42.0"], r.stdout
    assert list(shm.iterdir()) == [], "the array is deleted"


def test_readme_c_program_compiles_without_warnings(tmp_path):
    src = tmp_path / "app.c"
    src.write_text(block_after("app.c:", "c"))
    subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'include'}",
                    "-c", str(src), "-o", str(tmp_path / "app.o")], check=True)


def readme_commands():
    """Every command line the README shows: lines of ```sh blocks and `inline` spans
    that start with a command word, without trailing comments."""
    text = README.read_text()
    cmds = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        cmds += [ln.split(" #")[0].strip() for ln in block.splitlines()]
    cmds += re.findall(r"`((?:make|bash|python3|pip|cargo|NDSHM_\w+=\S+ cargo) [^`]*)`", text)
    return [c for c in cmds if c]


def make_targets():
    db = subprocess.run(["make", "-C", str(ROOT), "-pRrq"], capture_output=True, text=True).stdout
    return set(re.findall(r"^([A-Za-z0-9_.-]+):(?!=)", db, re.M))


def test_readme_commands_exist():
    cmds = readme_commands()
    assert any(c.startswith("make test") for c in cmds) and any(c.startswith("make demo") for c in cmds)
    targets = make_targets()
    for c in cmds:
        words = shlex.split(c.replace("$(", "(").replace("$", ""))
        if words[0] == "make":
            for t in words[1:]:
                if not t.startswith("-") and "=" not in t:
                    assert t in targets, f"README runs `{c}`: the Makefile has no target {t}"
        # Scripts and directories a command names (`bash .ci/run`, `pip install ./bindings/python`).
        for w in words[1:]:
            if "/" in w and "://" not in w and "=" not in w and not w.startswith(("-", "(")):
                if w.startswith(("target/", "./target/", "/")):
                    continue                                        # made by the build
                assert (ROOT / w).exists(), f"README runs `{c}`: {w} does not exist"
