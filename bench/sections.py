"""The one way the benchmark programs update docs/BENCHMARKS.md: each owns a section
between ``<!-- TAG:start -->`` and ``<!-- TAG:end -->`` and replaces only that."""

import pathlib


def replace_section(path, tag, report, append_if_missing=True):
    """Puts ``report`` between the ``tag`` markers in the file ``path``; appends the
    marked section when the file has none (or fails, with ``append_if_missing=False``)."""
    path = pathlib.Path(path)
    start, end = f"<!-- {tag}:start -->", f"<!-- {tag}:end -->"
    text = path.read_text() if path.exists() else ""
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + start + "\n" + report.rstrip("\n") + "\n" + end + rest.split(end, 1)[1]
    elif append_if_missing:
        text += f"\n{start}\n{report.rstrip(chr(10))}\n{end}\n"
    else:
        raise SystemExit(f"{path}: no {start} ... {end} section to replace")
    path.write_text(text)
