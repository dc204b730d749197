#!/usr/bin/env python3
"""Generates bindings/python/ndshm/_abi.py from include/ndshm.h: every integer and string
constant, a ctypes Structure for every struct (fields, types and array sizes as in the
header), and DECLARATIONS, name -> (restype, argtypes), for every function.

Run: python3 scripts/gen_python.py [--check]

The header is cbindgen's output and very regular; this reads the C subset cbindgen
writes (object-like #defines, #ifdef __cplusplus blocks, typedefs, structs, enums and
prototypes) and stops with an error naming anything else (unions, bit-fields, function
pointers, casts in constants, unknown type names) rather than guess. parse() is also
what the tests use to compile a C program that checks the layouts against the compiler.
"""

import ast
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEADER = ROOT / "include" / "ndshm.h"
OUT = ROOT / "bindings" / "python" / "ndshm" / "_abi.py"
COMMAND = "python3 scripts/gen_python.py"

# C scalar type (qualifiers removed, words in the header's order) -> ctypes name.
SCALARS = {
    "bool": "c_bool", "_Bool": "c_bool",
    "char": "c_char", "signed char": "c_byte", "unsigned char": "c_ubyte",
    "short": "c_short", "unsigned short": "c_ushort",
    "int": "c_int", "signed int": "c_int", "signed": "c_int",
    "unsigned int": "c_uint", "unsigned": "c_uint",
    "long": "c_long", "unsigned long": "c_ulong",
    "long long": "c_longlong", "unsigned long long": "c_ulonglong",
    "int8_t": "c_int8", "uint8_t": "c_uint8", "int16_t": "c_int16", "uint16_t": "c_uint16",
    "int32_t": "c_int32", "uint32_t": "c_uint32", "int64_t": "c_int64", "uint64_t": "c_uint64",
    "size_t": "c_size_t", "ssize_t": "c_ssize_t", "ptrdiff_t": "c_ssize_t",
    "intptr_t": "c_ssize_t", "uintptr_t": "c_size_t",
    "float": "c_float", "double": "c_double",
}
QUALIFIERS = {"const", "volatile", "restrict"}


class HeaderError(Exception):
    pass


def fail(msg):
    raise HeaderError(f"include/ndshm.h: {msg}")


# ---------------------------------------------------------------- the header's text


def strip_comments(text):
    def blank(m):  # keep line numbers
        return "\n" * m.group(0).count("\n") if m.group(0)[0] == "/" else m.group(0)

    return re.sub(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"', blank, text, flags=re.S)


# What the C compiler predefines that the header may test (C17; the header's C23-only
# branches declare the same ABI).
PREDEFINED = {"__STDC__": 1, "__STDC_VERSION__": 201710}


def preprocess(text):
    """({name: value} of the object-like #defines with a value, in order; the code a C compiler
    sees: conditionals evaluated as for C17, so without __cplusplus)."""
    lines = text.replace("\\\n", " ").split("\n")
    every_defined = {m.group(1) for m in re.finditer(r"^\s*#\s*define\s+(\w+)", text, re.M)}
    constants, values, code = {}, {}, []
    stack = []  # per open conditional: [this branch is active, a branch was taken]

    def active():
        return all(s[0] for s in stack)

    def condition(expr, lineno):
        where = f"line {lineno}: #if {expr}"

        def is_defined(m):
            name = m.group(1) or m.group(2)
            if name in PREDEFINED or name in values:
                return " 1 "
            if name == "__cplusplus" or name in every_defined:  # the latter defined later
                return " 0 "
            fail(f"{where}: cannot tell whether {name} is defined")

        def value(m):
            name = m.group(0)
            if name in ("and", "or", "not"):
                return name
            if name in PREDEFINED:
                return str(PREDEFINED[name])
            if isinstance(values.get(name), int):
                return str(values[name])
            fail(f"{where}: cannot tell the value of {name}")

        e = re.sub(r"defined\s*\(\s*(\w+)\s*\)|defined\s+(\w+)", is_defined, expr)
        e = re.sub(r"\b(\d+)[uUlL]+\b", r"\1", e)
        e = e.replace("&&", " and ").replace("||", " or ")
        e = re.sub(r"!(?!=)", " not ", e)
        e = re.sub(r"\b[A-Za-z_]\w*\b", value, e)
        try:
            tree = ast.parse(e.strip(), mode="eval").body
        except SyntaxError:
            fail(f"{where}: unsupported condition")

        def ev(n):
            if isinstance(n, ast.Constant) and type(n.value) is int:
                return n.value
            if isinstance(n, ast.BoolOp):
                vals = [ev(v) for v in n.values]
                return int(all(vals) if isinstance(n.op, ast.And) else any(vals))
            if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.Not, ast.USub)):
                v = ev(n.operand)
                return int(not v) if isinstance(n.op, ast.Not) else -v
            if isinstance(n, ast.Compare) and len(n.ops) == 1:
                a, b = ev(n.left), ev(n.comparators[0])
                ops = {ast.Eq: a == b, ast.NotEq: a != b, ast.Lt: a < b, ast.LtE: a <= b,
                       ast.Gt: a > b, ast.GtE: a >= b}
                if type(n.ops[0]) in ops:
                    return int(ops[type(n.ops[0])])
            fail(f"{where}: unsupported condition")

        return bool(ev(tree))

    for lineno, line in enumerate(lines, 1):
        m = re.match(r"\s*#\s*(\w+)\s*(.*?)\s*$", line)
        if not m:
            if active():
                code.append(line)
            continue
        directive, rest = m.groups()
        if directive in ("if", "ifdef", "ifndef"):
            if not active():  # a skipped group: not evaluated, as by the compiler
                stack.append([False, True])
                continue
            c = condition(rest if directive == "if" else f"defined({rest})", lineno)
            c = c if directive != "ifndef" else not c
            stack.append([c, c])
        elif directive in ("elif", "else", "endif"):
            if not stack:
                fail(f"line {lineno}: #{directive} without #if")
            if directive == "endif":
                stack.pop()
                continue
            taken = stack.pop()[1]
            c = not taken and active() and (directive == "else" or condition(rest, lineno))
            stack.append([c, taken or c])
        elif not active():
            continue
        elif directive == "define":
            d = re.match(r"(\w+)(\(?)\s*(.*)$", rest)
            if d.group(2):
                fail(f"line {lineno}: function-like macro {d.group(1)} is not supported")
            values[d.group(1)] = None
            if d.group(3):
                values[d.group(1)] = constants[d.group(1)] = constant_value(d.group(1), d.group(3), values)
        elif directive == "undef":
            fail(f"line {lineno}: #undef is not supported")
        elif directive in ("include", "pragma"):
            continue
        else:
            fail(f"line {lineno}: unsupported directive #{directive}")
    if stack:
        fail("unterminated #if")
    return constants, "\n".join(code)


def c_int_value(expr, consts, what):
    """The value of an integer constant expression: literals (any suffix), earlier
    constants, parentheses, + - * << >> | & ^ ~."""
    def literal(m):
        tok, suffix = m.group(1), m.group(2)
        if suffix and "u" in suffix.lower() and re.search(r"[~-]", expr):
            fail(f"{what}: unsigned literal with - or ~ in {expr!r} (its value depends on C types)")
        return str(int(tok, 0) if not re.fullmatch(r"0\d+", tok) else int(tok, 8))

    py = re.sub(r"\b(0[xX][0-9a-fA-F]+|\d+)([uUlL]*)\b", literal, expr)
    try:
        tree = ast.parse(py.strip(), mode="eval")
    except SyntaxError:
        fail(f"{what}: cannot read {expr!r} as an integer constant")
    ops = (ast.Add, ast.Sub, ast.Mult, ast.LShift, ast.RShift, ast.BitOr, ast.BitAnd, ast.BitXor,
           ast.USub, ast.UAdd, ast.Invert)

    def ev(n):
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Constant) and type(n.value) is int:
            return n.value
        if isinstance(n, ast.Name) and isinstance(consts.get(n.id), int):
            return consts[n.id]
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ops):
            v = ev(n.operand)
            return {ast.USub: lambda: -v, ast.UAdd: lambda: v, ast.Invert: lambda: ~v}[type(n.op)]()
        if isinstance(n, ast.BinOp) and isinstance(n.op, ops):
            a, b = ev(n.left), ev(n.right)
            return {ast.Add: a.__add__, ast.Sub: a.__sub__, ast.Mult: a.__mul__, ast.LShift: a.__lshift__,
                    ast.RShift: a.__rshift__, ast.BitOr: a.__or__, ast.BitAnd: a.__and__,
                    ast.BitXor: a.__xor__}[type(n.op)](b)
        fail(f"{what}: unsupported integer constant expression {expr!r}")

    return ev(tree)


def constant_value(name, text, consts):
    text = text.strip()
    if re.fullmatch(r'"[^"\\]*"', text):
        return text[1:-1]
    return c_int_value(text, consts, f"#define {name}")


# ---------------------------------------------------------------- declarations


def tokenize(code):
    return re.findall(r"[A-Za-z_]\w*|0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*|\"(?:\\.|[^\"\\])*\"|\.\.\.|\S", code)


def statements(tokens):
    """Top-level statements (lists of tokens), each ended by ';' outside braces."""
    out, cur, depth = [], [], 0
    for t in tokens:
        if t == "{":
            depth += 1
        elif t == "}":
            depth -= 1
            if depth < 0:
                fail("unbalanced '}'")
        if t == ";" and depth == 0:
            out.append(cur)
            cur = []
        else:
            cur.append(t)
    if cur:
        fail(f"declaration without ';' at the end: {' '.join(cur)}")
    return out


class Model:
    """What the header declares, in header order."""

    def __init__(self):
        self.constants = {}  # name -> int or str
        self.aliases = {}  # typedef name -> C spelling of its type (after typedef)
        self.structs = {}  # Python name -> Struct
        self.struct_tags = {}  # tag -> Python name of a defined struct
        self.opaque = set()  # tags of structs never defined (handles)
        self.enums = set()  # enum tags and typedef names of enums
        self.functions = {}  # name -> Function
        self.order = []  # ("alias", name) / ("struct", name), header order


class Struct:
    def __init__(self, pyname, c_name):
        self.pyname, self.c_name, self.fields = pyname, c_name, []  # [(name, Decl, ctypes text)]


class Function:
    def __init__(self, result, params, restype, argtypes):
        self.result, self.params = result, params  # Decl, [Decl]
        self.restype, self.argtypes = restype, argtypes  # ctypes text


class Decl:
    """A declaration of a field, parameter or result: the type's tokens as written, its
    base type words (no qualifiers), pointer depth, array dimensions (text) and name."""

    def __init__(self, tokens, base, depth, dims, name):
        self.tokens, self.base, self.depth, self.dims, self.name = tokens, base, depth, dims, name

    def c_spelling(self):
        """The type as written in the header, e.g. `const int64_t *`, `int64_t[32]`."""
        return re.sub(r"\*\s+(?=\*)", "*", " ".join(self.tokens)) + "".join(f"[{d}]" for d in self.dims)


def parse_decl(toks, model, where, named=True):
    """A field or parameter declaration -> Decl."""
    toks = list(toks)
    dims = []
    while toks and toks[-1] == "]":
        i = len(toks) - 1 - toks[::-1].index("[")
        dims.insert(0, " ".join(toks[i + 1:-1]))
        toks = toks[:i]
    for t in toks:
        if t in ("(", ")"):
            fail(f"{where}: function pointers are not supported: {' '.join(toks)}")
        if t == ":":
            fail(f"{where}: bit-fields are not supported: {' '.join(toks)}")
    name = None
    if named and toks and re.fullmatch(r"[A-Za-z_]\w*", toks[-1]) and toks[-1] not in SCALAR_WORDS | QUALIFIERS:
        rest = [t for t in toks[:-1] if t not in QUALIFIERS]
        if rest and rest[-1] not in ("struct", "enum", "union"):
            name = toks.pop()
    stars = [i for i, t in enumerate(toks) if t == "*"]
    base = [t for t in toks if t not in QUALIFIERS and t != "*"]
    if stars and any(t not in QUALIFIERS and t != "*" for t in toks[stars[0]:]):
        fail(f"{where}: cannot read the type {' '.join(toks)}")
    if not base:
        fail(f"{where}: missing type in {' '.join(toks)}")
    return Decl(toks, base, len(stars), dims, name)


SCALAR_WORDS = {w for k in SCALARS for w in k.split()} | {"void"}


def ctype(decl, model, where, role):
    """ctypes source text for a declaration. role: 'field', 'param' or 'result'."""
    base = decl.base
    depth = decl.depth
    dims = list(decl.dims)
    if role == "param" and dims:  # an array parameter is a pointer
        dims.pop(0)
        depth += 1
    if dims and role != "field":
        fail(f"{where}: arrays of arrays as parameters are not supported")
    key = " ".join(base)
    if base[0] in ("struct", "enum"):
        if len(base) != 2:
            fail(f"{where}: cannot read the type {key}")
        tag = base[1]
        if base[0] == "enum":
            inner = "c_int"
            if tag not in model.enums:
                fail(f"{where}: unknown enum {tag}")
        elif tag in model.struct_tags:
            inner = model.struct_tags[tag]
        elif tag in model.opaque:
            inner = None  # opaque: only pointers to it
        else:
            fail(f"{where}: unknown struct {tag}")
    elif key == "void":
        inner = "void"
    elif key in SCALARS:
        inner = SCALARS[key]
    elif len(base) == 1 and key in model.aliases:
        target = model.aliases[key].split()
        if target[0] != "struct":
            inner = key
        elif target[1] in model.struct_tags:
            inner = model.struct_tags[target[1]]
        else:
            inner = None  # an opaque struct's typedef
    elif base[0] == "union":
        fail(f"{where}: unions are not supported")
    else:
        fail(f"{where}: unknown type {key!r}; add it to SCALARS in scripts/gen_python.py")

    if inner is None:  # opaque handle
        if depth == 0:
            fail(f"{where}: an opaque struct ({key}) used by value")
        text, depth = "c_void_p", depth - 1
    elif inner == "void":
        if depth == 0:
            if role != "result":
                fail(f"{where}: void {role}")
            return "None"
        text, depth = "c_void_p", depth - 1
    elif inner == "c_char" and depth > 0:
        text, depth = "c_char_p", depth - 1
    else:
        text = inner
    for _ in range(depth):
        text = f"POINTER({text})"
    for d in reversed(dims):
        size = d if re.fullmatch(r"\w+", d) else None
        if size is None or (not size.isdigit() and size not in model.constants):
            fail(f"{where}: array size {d!r} is not a number or a constant")
        c_int_value(d, model.constants, where)
        text = f"{text} * {size}"  # int x[4][3] is c_int * 3 * 4
    return text


def parse_fields(body, model, where):
    fields = []
    for st in statements(body):
        if "{" in st:
            fail(f"{where}: nested struct/union definitions are not supported")
        if "," in st:  # int a, b;
            fail(f"{where}: several declarators in one field declaration: {' '.join(st)}")
        d = parse_decl(st, model, where)
        if d.name is None:
            fail(f"{where}: field without a name: {' '.join(st)}")
        fields.append(d)
    return fields


def parse_enum_body(body, model, where):
    items, cur = [], []
    for t in body + [","]:
        if t == ",":
            if cur:
                items.append(cur)
            cur = []
        else:
            cur.append(t)
    nxt = 0
    for it in items:
        name = it[0]
        if len(it) > 1:
            if it[1] != "=":
                fail(f"{where}: cannot read enumerator {' '.join(it)}")
            nxt = c_int_value(" ".join(it[2:]), model.constants, f"{where} {name}")
        model.constants[name] = nxt
        nxt += 1


def braces(st):
    """(before '{', inside, after '}') of a statement with one braced body."""
    i = st.index("{")
    depth = 0
    for j in range(i, len(st)):
        depth += {"{": 1, "}": -1}.get(st[j], 0)
        if depth == 0:
            return st[:i], st[i + 1:j], st[j + 1:]
    fail("unbalanced '{'")


def parse(text):
    """Parse the header's text into a Model."""
    model = Model()
    model.constants, code = preprocess(strip_comments(text))
    for st in statements(tokenize(code)):
        where = " ".join(st[:6]) + (" ..." if len(st) > 6 else "")
        if not st:
            continue
        if st[0] == "extern":
            fail(f"{where}: extern blocks outside #ifdef __cplusplus are not supported")
        typedef = st[0] == "typedef"
        body_st = st[1:] if typedef else st
        if "{" in body_st:
            head, body, tail = braces(body_st)
            kind = head[0] if head else None
            if kind not in ("struct", "enum") or len(head) > 2:
                fail(f"{where}: unsupported definition ({kind})")
            tag = head[1] if len(head) == 2 else None
            if typedef:
                if len(tail) != 1:
                    fail(f"{where}: expected one typedef name after '}}'")
                tname = tail[0]
            elif tail:
                fail(f"{where}: declaring objects with a definition is not supported")
            else:
                tname = None
            if not tag and not tname:
                fail(f"{where}: anonymous {kind} without a typedef")
            if kind == "enum":
                parse_enum_body(body, model, where)
                model.enums.update(n for n in (tag, tname) if n)
                if tname:
                    model.aliases[tname] = "int"
                    model.order.append(("alias", tname))
                continue
            pyname = tname or tag
            s = Struct(pyname, f"struct {tag}" if tag else tname)
            if tag:
                model.opaque.discard(tag)
                model.struct_tags[tag] = pyname
            fields = parse_fields(body, model, f"struct {pyname}")
            s.fields = [(d.name, d, ctype(d, model, f"{pyname}.{d.name}", "field")) for d in fields]
            model.structs[pyname] = s
            if tname:
                model.aliases[tname] = s.c_name
            model.order.append(("struct", pyname))
            continue
        if typedef:
            d = parse_decl(st[1:], model, where)
            if d.name is None:
                fail(f"{where}: typedef without a name")
            if d.base[0] == "struct" and len(d.base) == 2 and d.depth == 0 and not d.dims:
                tag = d.base[1]
                if tag not in model.struct_tags:
                    model.opaque.add(tag)
                model.aliases[d.name] = f"struct {tag}"
                continue
            if d.depth or d.dims or d.base[0] == "union":
                fail(f"{where}: only typedefs of scalar types, structs and enums are supported")
            ctype(d, model, where, "field")  # the type must be known
            model.aliases[d.name] = " ".join(d.base)
            model.order.append(("alias", d.name))
            continue
        if st[0] in ("struct", "enum", "union") and len(st) == 2:
            if st[0] == "struct" and st[1] not in model.struct_tags:
                model.opaque.add(st[1])
            elif st[0] != "struct":
                fail(f"{where}: forward declaration of {st[0]} {st[1]} is not supported")
            continue
        if "(" in st and st[-1] == ")":
            i = st.index("(")
            name = st[i - 1]
            if "(" in st[i + 1:-1] or "(" in st[:i]:
                fail(f"{where}: function pointers are not supported")
            ret = parse_decl(st[:i - 1], model, f"{name} result", named=False)
            params = []
            ptoks = st[i + 1:-1]
            if ptoks and ptoks != ["void"]:
                cur = []
                for t in ptoks + [","]:
                    if t == ",":
                        if cur == ["..."]:
                            fail(f"{name}: variadic functions are not supported")
                        params.append(parse_decl(cur, model, f"{name} parameter {len(params) + 1}"))
                        cur = []
                    else:
                        cur.append(t)
            if name in model.functions:
                fail(f"{name} is declared twice")
            model.functions[name] = Function(
                ret, params, ctype(ret, model, f"{name} result", "result"),
                [ctype(d, model, f"{name} parameter {i + 1}", "param") for i, d in enumerate(params)])
            continue
        fail(f"cannot read the declaration {where}")
    return model


# ---------------------------------------------------------------- _abi.py


def generate(text):
    model = parse(text)
    out = []
    w = out.append
    w('"""ctypes view of include/ndshm.h: its constants, structs and function declarations.\n\n'
      f"GENERATED by scripts/gen_python.py from include/ndshm.h; do not edit by hand. Refresh:\n"
      f"    {COMMAND}\n"
      "Opaque handles (struct sa_array *) are c_void_p.\n"
      '"""\n')
    body = []
    b = body.append

    b("# Constants: the #defines, then the enumerators, each in header order.")
    for name, value in model.constants.items():
        b(f'{name} = "{value}"' if isinstance(value, str) else f"{name} = {value}")
    b("")

    deferred = []
    done = set()
    for kind, name in model.order:
        if kind == "alias":
            target = model.aliases[name]
            decl = Decl(target.split(), target.split(), 0, [], name)
            if target.startswith("struct "):
                continue
            t = ctype(decl, model, f"typedef {name}", "field")
            b("")
            b(f"{name} = {t}")
            continue
        s = model.structs[name]
        fields = [(f, t) for f, _, t in s.fields]
        refs = {m for _, t in fields for m in re.findall(r"\w+", t) if m in model.structs}
        b("")
        b("")
        b(f"class {name}(Structure):")
        lines = [f'    ("{f}", {t}),' for f, t in fields]
        if refs - done:  # refers to itself or a later struct: fields after every class
            b("    pass")
            deferred.append(f"{name}._fields_ = [\n" + "\n".join(lines) + "\n]")
        else:
            b("    _fields_ = [")
            body.extend("    " + line for line in lines)
            b("    ]")
        done.add(name)
    for d in deferred:
        b("")
        b(d)
    b("")
    b("")
    b("# name: (restype, argtypes), in header order.")
    b("DECLARATIONS = {")
    for fname, fn in model.functions.items():
        r, args = fn.restype, fn.argtypes
        line = f'    "{fname}": ({r}, [{", ".join(args)}]),'
        if len(line) > 100:
            line = f'    "{fname}": (\n        {r},\n        [{", ".join(args)}],\n    ),'
            if max(map(len, line.split("\n"))) > 100:
                inner = "".join(f"            {a},\n" for a in args)
                line = f'    "{fname}": (\n        {r},\n        [\n{inner}        ],\n    ),'
        b(line)
    b("}")
    b("")
    b("# The header's names of each function's parameters.")
    b("PARAMETERS = {")
    for fname, fn in model.functions.items():
        params = fn.params
        names = [f'"{p.name or f"arg{i + 1}"}"' for i, p in enumerate(params)]
        line = f'    "{fname}": ({", ".join(names)}{"," if len(names) == 1 else ""}),'
        if len(line) > 100:
            line = f'    "{fname}": (\n' + "".join(f"        {n},\n" for n in names) + "    ),"
        b(line)
    b("}")
    b("")
    b("# The header's spelling of each function's result type (c_int and c_int32 are one")
    b("# ctypes type; the binding tells statuses from values by this).")
    b("C_RESULTS = {")
    for fname, fn in model.functions.items():
        b(f'    "{fname}": "{fn.result.c_spelling()}",')
    b("}")
    text_body = "\n".join(body) + "\n"
    names = sorted(set(re.findall(r"\b(POINTER|Structure|c_\w+)\b", text_body)))
    w("from ctypes import " + ", ".join(names) if len(", ".join(names)) < 80 else
      "from ctypes import (\n" + "".join(f"    {n},\n" for n in names) + ")")
    w("")
    exported = [*model.constants, *(n for k, n in model.order if k == "alias"
                                    and not model.aliases[n].startswith("struct ")),
                *model.structs, "DECLARATIONS", "PARAMETERS", "C_RESULTS"]
    w("__all__ = [" + "".join(f'\n    "{n}",' for n in exported) + "\n]")
    w("")
    return "\n".join(out) + "\n" + text_body


def main(argv):
    text = generate(HEADER.read_text())
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text() != text:
            sys.exit(f"{OUT.relative_to(ROOT)} is stale: run {COMMAND}")
        return
    OUT.write_text(text)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except HeaderError as e:
        sys.exit(f"gen_python.py: {e}")
