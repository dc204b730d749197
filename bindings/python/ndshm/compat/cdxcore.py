"""cdxcore.npshm's functions over ndshm: change ``from cdxcore.npshm import ...`` to
``from ndshm.compat.cdxcore import ...``.

What differs from cdxcore, on purpose:

* No ``multiprocessing.shared_memory`` and no resource tracker: an array is never
  deleted because some process that created or attached it exited. ``track`` is
  accepted for compatibility and ignored.
* ``unlink=True`` keeps cdxcore's meaning: the name is deleted when the returned array
  (and all its views) are garbage-collected *in this process*, for every process.
* ``read_only=True`` maps the memory read-only (cdxcore only clears numpy's flag, which
  can be set back).
* Attaching an array whose creator is still writing it raises ``ndshm.NotReadyError``
  (cdxcore read a zero header and raised ``ValueError``).
* ``validate_shape`` accepts lists and tuples alike (cdxcore's ``!=`` against a tuple
  rejected every list).
* ``is_shared_array`` really checks (cdxcore's always returned True).
* ``read_shared_array`` (loading files) is not offered yet: it arrives with ndshm's
  file-loading feature.
"""

import weakref

import ndshm


def _unlink_on_collect(arr, name):
    weakref.finalize(ndshm.base_of(arr), ndshm.delete, name, True)


def create_shared_array(
    name,
    shape,
    dtype,
    *,
    raise_on_error=True,
    full=None,
    force=False,
    track=None,
    unlink=False,
    verbose=None,
):
    """Create a shared array; None instead of ``FileExistsError`` when
    ``raise_on_error=False``. ``full``: scalar or array to fill it with. ``force``:
    replace an existing array."""
    arr = ndshm.create(name, shape, dtype, force=force, full=full, raise_on_error=raise_on_error)
    if arr is not None and unlink:
        _unlink_on_collect(arr, name)
    return arr


def attach_shared_array(
    name,
    *,
    validate_shape=None,
    validate_dtype=None,
    raise_on_error=True,
    read_only=False,
    track=None,
    unlink=False,
    verbose=None,
):
    """Attach a shared array; None instead of ``FileNotFoundError`` when
    ``raise_on_error=False``. A shape or dtype mismatch raises ``ValueError`` always."""
    try:
        arr = ndshm.attach(
            name,
            read_only=read_only,
            validate_shape=None if validate_shape is None else tuple(validate_shape),
            validate_dtype=validate_dtype,
        )
    except FileNotFoundError:
        if raise_on_error:
            raise
        return None
    if unlink:
        _unlink_on_collect(arr, name)
    return arr


def delete_shared_array(name, raise_on_error=True, *, verbose=None):
    """Delete the array's name: True when it is gone (also when it never existed);
    other failures raise, or return False when ``raise_on_error=False``."""
    try:
        ndshm.delete(name, missing_ok=True)
        return True
    except OSError:
        if raise_on_error:
            raise
        return False


def is_shared_array(x):
    """True when ``x`` is a numpy array living in an ndshm mapping."""
    return ndshm.is_shared(x)
