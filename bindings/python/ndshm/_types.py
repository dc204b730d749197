"""Type aliases for the public API's annotations (the package ships ``py.typed``).

Annotations live inline in the modules, next to the code they describe, so a signature
and its types change together; these aliases keep them short and uniform. A new public
function gets annotated parameters and return type using them (``mypy --strict`` runs on
a user script calling every public function: bindings/python/tests/typed_usage.py).

Numpy's scalar types are subscriptable (``np.integer[Any]``) from numpy 1.22 on; under
numpy 1.21 the aliases fall back to ``NDArray[Any]`` at run time, while type checkers
always see the precise types.
"""

import os
from typing import TYPE_CHECKING, Any, Optional, Sequence, SupportsIndex, Union

import numpy as np
import numpy.typing as npt

#: A numpy array over shared memory (any dtype, any shape): what create and attach return.
NDArray = npt.NDArray[Any]

if TYPE_CHECKING:
    IntArray = npt.NDArray[np.integer[Any]]
else:
    try:
        IntArray = npt.NDArray[np.integer[Any]]
    except TypeError:  # numpy 1.21
        IntArray = npt.NDArray[Any]

#: An array name: ``"shm://NAME"``, ``"file://PATH"`` or a bare ``"NAME"``, as str or
#: bytes (bytes are passed through exactly).
Name = Union[str, bytes]

#: A shape: an int, a sequence of ints, or a 1-d numpy array of integers (as SharedArray
#: users pass the results of shape arithmetic).
ShapeLike = Union[SupportsIndex, Sequence[SupportsIndex], IntArray]

#: A shape to check against: as :data:`ShapeLike`, where a ``None`` or ``-1`` entry
#: accepts any length in that dimension.
ShapePattern = Union[SupportsIndex, Sequence[Optional[SupportsIndex]], IntArray]

#: Anything ``numpy.dtype()`` accepts: ``np.float64``, ``"f8"``, ``"bool"``, ``float``, ...
DTypeLike = npt.DTypeLike

#: A directory or file path.
PathLike = Union[str, bytes, os.PathLike[str], os.PathLike[bytes]]

__all__ = ["NDArray", "IntArray", "Name", "ShapeLike", "ShapePattern", "DTypeLike", "PathLike"]
