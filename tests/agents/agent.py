"""Matrix agent in Python (see PROTOCOL.md)."""

import sys

import numpy as np

import ndshm

DTYPES = ["float64", "float32", "int32", "int64", "uint8"]
ORDERS = ["C", "F"]
i, j, k = np.indices((2, 3, 4))
V = 100 * i + 10 * j + k


def main(cmd, prefix):
    cells = [(d, o) for d in DTYPES for o in ORDERS]
    bad = False
    if cmd == "create":
        arrays = []
        for d, o in cells:
            a = ndshm.create(f"{prefix}-{d}-{o}", (2, 3, 4), dtype=d, order=o)
            a[...] = V
            arrays.append(a)
        print("ready", flush=True)
        sys.stdin.readline()
        for (d, o), a in zip(cells, arrays):
            ok = np.array_equal(a, 127 - V)
            print(f"{d} {o} {'ok' if ok else 'bad: wrong reply'}")
            bad |= not ok
            ndshm.delete(f"{prefix}-{d}-{o}")
        return bad
    for d, o in cells:
        try:
            a = ndshm.attach(f"{prefix}-{d}-{o}")
        except OSError as e:
            print(f"{d} {o} bad: {e}")
            bad = True
            continue
        why = None
        if a.dtype != np.dtype(d):
            why = "wrong dtype"
        elif a.shape != (2, 3, 4):
            why = "wrong shape"
        elif not (a.flags.f_contiguous if o == "F" else a.flags.c_contiguous):
            why = "wrong order"
        elif not np.array_equal(a, V):
            why = "wrong element"
        else:
            a[...] = 127 - V
        print(f"{d} {o} {'ok' if why is None else 'bad: ' + why}")
        bad |= why is not None
    return bad


if __name__ == "__main__":
    sys.exit(1 if main(sys.argv[1], sys.argv[2]) else 0)
