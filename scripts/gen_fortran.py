#!/usr/bin/env python3
"""Generates bindings/fortran/ndshm.f90 from include/ndshm.h (constants) and the table of
Fortran kinds below. Run: python3 scripts/gen_fortran.py [--check]"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEADER = (ROOT / "include" / "ndshm.h").read_text()
OUT = ROOT / "bindings" / "fortran" / "ndshm.f90"

# suffix, Fortran type, dtype constant
KINDS = [
    ("r4", "real(real32)", "SA_FLOAT32"),
    ("r8", "real(real64)", "SA_FLOAT64"),
    ("i4", "integer(int32)", "SA_INT32"),
    ("i8", "integer(int64)", "SA_INT64"),
    ("u1", "integer(int8)", "SA_UINT8"),
]
RANKS = [1, 2, 3]
CONSTANTS = [
    "SA_OK", "SA_ERR_INVALID", "SA_ERR_NOT_FOUND", "SA_ERR_EXISTS", "SA_ERR_FORMAT",
    "SA_ERR_MISMATCH", "SA_ERR_NO_SPACE", "SA_ERR_PERMISSION", "SA_ERR_NOT_READY",
    "SA_ERR_TIMEOUT", "SA_ERR_OWNER_DIED", "SA_ERR_READ_ONLY", "SA_ERR_UNSUPPORTED",
    "SA_ERR_IO", "SA_ERR_PANIC", "SA_ORDER_F", "SA_ORDER_C", "SA_FORCE", "SA_SPARSE",
    "SA_POPULATE", "SA_HUGEPAGES", "SA_SHARE_GROUP", "SA_SHARE_ALL", "SA_READONLY",
    "SA_MS_ASYNC", "SA_MS_SYNC", "SA_MS_INVALIDATE", "SA_UINT8", "SA_INT32", "SA_INT64",
    "SA_FLOAT32", "SA_FLOAT64", "SA_DTYPE_ANY", "SA_ALLOW_OTHER_OWNER", "SA_FOLLOW_SYMLINKS",
    "SA_DELETE_IN_PROGRESS", "SA_FILE_NPY", "SA_FILE_NPIO", "SA_CREATED", "SA_ATTACHED",
    "SA_EXCLUSIVE", "SA_ERR_BUSY", "SA_ERR_STALE", "SA_ERR_TORN", "SA_GROW",
]


def value(name):
    # A #define, or an enumerator (the status codes are `enum sa_status`).
    m = re.search(rf"^#define {name} (.+)$", HEADER, re.M) or re.search(
        rf"^\s+{name} = (-?\d+),?$", HEADER, re.M
    )
    if not m:
        sys.exit(f"{name} is not in include/ndshm.h")
    return int(eval(m.group(1)))  # noqa: S307 - our own header: integer expressions


def colons(rank):
    return ",".join([":"] * rank)


def procedures():
    out = []
    for suffix, ftype, dtype in KINDS:
        for r in RANKS:
            out.append(f"""
  !> Creates NAME with Fortran shape DIMS and points A at it: column-major, or with
  !> C_ORDER row-major with numpy shape reversed(DIMS).
  !> CAPACITY: bytes to reserve for data, so later shape changes up to it (ndshm_publish
  !> with another shape) happen in place.
  subroutine create_{suffix}_{r}(name, dims, a, arr, stat, flags, c_order, capacity)
    character(*), intent(in) :: name
    integer, intent(in) :: dims({r})
    {ftype}, pointer, intent(out) :: a({colons(r)})
    type(ndshm_array), intent(inout) :: arr
    integer, intent(out) :: stat
    integer, intent(in), optional :: flags
    logical, intent(in), optional :: c_order
    integer(int64), intent(in), optional :: capacity
    nullify(a)
    stat = create_raw(name, dims, {dtype}, flags, c_order, arr, capacity)
    if (stat == SA_OK) call c_f_pointer(sa_data(arr%h), a, dims)
  end subroutine

  !> Attaches NAME, which must hold {dtype} data of rank {r}, and points A at it.
  subroutine attach_{suffix}_{r}(name, a, arr, stat, flags, timeout_ms)
    character(*), intent(in) :: name
    {ftype}, pointer, intent(out) :: a({colons(r)})
    type(ndshm_array), intent(inout) :: arr
    integer, intent(out) :: stat
    integer, intent(in), optional :: flags, timeout_ms
    integer :: fdims({r})
    nullify(a)
    stat = attach_raw(name, {r}, {dtype}, flags, timeout_ms, arr, fdims)
    if (stat == SA_OK) call c_f_pointer(sa_data(arr%h), a, fdims)
  end subroutine

  !> Loads the .npy file PATH into the shared array NAME once per node (open-or-create:
  !> however many processes call this, one reads the file, the others wait and attach)
  !> and points A at it; the file must hold {dtype} data of rank {r} (else SA_ERR_MISMATCH).
  !> OUTCOME: SA_CREATED (this call read the file) or SA_ATTACHED. TIMEOUT_MS: default no limit.
  subroutine load_{suffix}_{r}(path, name, a, arr, stat, outcome, flags, timeout_ms)
    character(*), intent(in) :: path, name
    {ftype}, pointer, intent(out) :: a({colons(r)})
    type(ndshm_array), intent(inout) :: arr
    integer, intent(out) :: stat
    integer, intent(out), optional :: outcome
    integer, intent(in), optional :: flags, timeout_ms
    integer :: fdims({r})
    nullify(a)
    stat = load_raw(path, name, {r}, {dtype}, flags, timeout_ms, arr, fdims, outcome)
    if (stat == SA_OK) call c_f_pointer(sa_data(arr%h), a, fdims)
  end subroutine

  !> Publishes SRC as the next version of the array, in one call: readers' snapshots
  !> see all of it or none. When SRC's shape or kind differs from the array's, the
  !> array takes them on, atomically with the data (they must fit the capacity reserved
  !> at create, else SA_ERR_NO_SPACE; FLAGS=SA_GROW replaces the array by a larger one).
  !> Pointers from ndshm_create/ndshm_attach keep their old shape. VERSION: the version.
  subroutine publish_{suffix}_{r}(arr, src, stat, version, flags)
    type(ndshm_array), intent(inout) :: arr
    {ftype}, intent(in), target, contiguous :: src({colons(r)})
    integer, intent(out) :: stat
    integer(int64), intent(out), optional :: version
    integer, intent(in), optional :: flags
    stat = publish_raw(arr, c_loc(src), shape(src), int(storage_size(src) / 8, c_size_t) * &
        int(size(src), c_size_t), {dtype}, flags, version)
  end subroutine

  !> Copies a consistent snapshot of the array into DST, which must hold at least the
  !> snapshot's bytes (else SA_ERR_MISMATCH; also when the kind differs): retries while
  !> writers write, at most TIMEOUT_MS
  !> (default 1000; SA_ERR_TIMEOUT after). VERSION: the snapshot's version. RESHAPED:
  !> true when the shape or kind changed since the handle's last look (ndshm_shape).
  subroutine snapshot_{suffix}_{r}(arr, dst, stat, version, timeout_ms, reshaped)
    type(ndshm_array), intent(inout) :: arr
    {ftype}, intent(inout), target, contiguous :: dst({colons(r)})
    integer, intent(out) :: stat
    integer(int64), intent(out), optional :: version
    integer, intent(in), optional :: timeout_ms
    logical, intent(out), optional :: reshaped
    stat = snapshot_raw(arr, c_loc(dst), int(storage_size(dst) / 8, c_size_t) * &
        int(size(dst), c_size_t), {dtype}, version, timeout_ms, reshaped)
  end subroutine""")
    return "\n".join(out)


def generate():
    consts = "\n".join(
        f"  integer(c_int32_t), parameter, public :: {c} = {value(c)}" for c in CONSTANTS
    )
    names = [f"create_{s}_{r}" for s, _, _ in KINDS for r in RANKS]
    anames = [f"attach_{s}_{r}" for s, _, _ in KINDS for r in RANKS]
    lnames = [f"load_{s}_{r}" for s, _, _ in KINDS for r in RANKS]
    pnames = [f"publish_{s}_{r}" for s, _, _ in KINDS for r in RANKS]
    snames = [f"snapshot_{s}_{r}" for s, _, _ in KINDS for r in RANKS]
    return f"""! GENERATED by scripts/gen_fortran.py from include/ndshm.h: do not edit by hand.
!
! ndshm for Fortran: Fortran array pointers onto named shared arrays.
!
!   use ndshm
!   real(real64), pointer :: a(:,:)
!   type(ndshm_array) :: h
!   integer :: stat
!   call ndshm_create("shm://sim-out", [1000, 500], a, h, stat)   ! a(1000,500), zeroed
!   if (stat /= SA_OK) print *, ndshm_last_error()
!   a(1, 1) = 42
!   call ndshm_release(h)                                         ! unmaps; a is invalid
!   call ndshm_attach("shm://sim-out", a, h, stat, flags=SA_READONLY, timeout_ms=5000)
!   call ndshm_load("/data/train.npy", "train", a, h, stat, outcome=oc)  ! once per node
!
! Live data: call ndshm_write_begin(h, stat); a = ...; call ndshm_write_end(h, stat, v)
! (or call ndshm_publish(h, values, stat, v)); readers call ndshm_snapshot(h, copy, stat,
! v) and ndshm_wait(h, v, timeout_ms, stat, newer); writers take turns with ndshm_lock
! and ndshm_unlock (SA_ERR_OWNER_DIED: the previous holder died; the lock is held).
!
! Arrays are created column-major (SA_ORDER_F) with the Fortran shape, so numpy sees the
! same shape and indices (F-contiguous). Attaching a row-major (C order) array of rank
! >= 2 gives a pointer with the shape reversed: numpy's a[i, j] is a(j+1, i+1) here
! (ndshm_is_c_order tells which). Kinds: real(real32), real(real64), integer(int32),
! integer(int64), and integer(int8) for SA_UINT8 bytes (values >= 128 read negative).
! Errors: STAT is an SA_* status (SA_OK = 0); ndshm_last_error() is the message.
module ndshm
  use, intrinsic :: iso_c_binding
  use, intrinsic :: iso_fortran_env, only: real32, real64, int8, int32, int64
  implicit none
  private

{consts}

  !> A handle: release it with ndshm_release.
  type, public :: ndshm_array
    type(c_ptr) :: h = c_null_ptr
  end type

  public :: ndshm_create, ndshm_attach, ndshm_release, ndshm_delete, ndshm_last_error
  public :: ndshm_status_name, ndshm_is_c_order, ndshm_shape, ndshm_load
  public :: ndshm_publish, ndshm_snapshot, ndshm_write_begin, ndshm_write_end, ndshm_wait
  public :: ndshm_version, ndshm_lock, ndshm_unlock

  interface ndshm_create
{chr(10).join("    module procedure " + n for n in names)}
  end interface

  interface ndshm_attach
{chr(10).join("    module procedure " + n for n in anames)}
  end interface

  interface ndshm_load
{chr(10).join("    module procedure " + n for n in lnames)}
  end interface

  interface ndshm_publish
{chr(10).join("    module procedure " + n for n in pnames)}
  end interface

  interface ndshm_snapshot
{chr(10).join("    module procedure " + n for n in snames)}
  end interface

  interface
    integer(c_int) function sa_create_ex(name, ndim, shape, dtype, flags, capacity, out) &
        bind(C, name="sa_create_ex")
      import :: c_int, c_int32_t, c_int64_t, c_char, c_ptr
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int32_t), value :: ndim, dtype, flags
      integer(c_int64_t), intent(in) :: shape(*)
      integer(c_int64_t), value :: capacity
      type(c_ptr), intent(out) :: out
    end function
    integer(c_int) function sa_publish_shape(arr, ndim, shape, dtype, src, nbytes, flags, version) &
        bind(C, name="sa_publish_shape")
      import :: c_int, c_int32_t, c_int64_t, c_ptr, c_size_t
      type(c_ptr), value :: arr, src
      integer(c_int32_t), value :: ndim, dtype, flags
      integer(c_int64_t), intent(in) :: shape(*)
      integer(c_size_t), value :: nbytes
      integer(c_int64_t), intent(out) :: version
    end function
    integer(c_int) function sa_read_copy(arr, dst, dst_bytes, timeout_ms, version, reshaped) &
        bind(C, name="sa_read_copy")
      import :: c_int, c_int32_t, c_int64_t, c_ptr, c_size_t
      type(c_ptr), value :: arr, dst
      integer(c_size_t), value :: dst_bytes
      integer(c_int64_t), value :: timeout_ms
      integer(c_int64_t), intent(out) :: version
      integer(c_int32_t), intent(out) :: reshaped
    end function
    integer(c_int) function sa_write_begin(arr) bind(C, name="sa_write_begin")
      import :: c_int, c_ptr
      type(c_ptr), value :: arr
    end function
    integer(c_int) function sa_write_end(arr, version) bind(C, name="sa_write_end")
      import :: c_int, c_int64_t, c_ptr
      type(c_ptr), value :: arr
      integer(c_int64_t), intent(out) :: version
    end function
    integer(c_int) function sa_wait_version(arr, newer_than, timeout_ms, version) &
        bind(C, name="sa_wait_version")
      import :: c_int, c_int64_t, c_ptr
      type(c_ptr), value :: arr
      integer(c_int64_t), value :: newer_than, timeout_ms
      integer(c_int64_t), intent(out) :: version
    end function
    integer(c_int) function sa_get_version(arr, version) bind(C, name="sa_get_version")
      import :: c_int, c_int64_t, c_ptr
      type(c_ptr), value :: arr
      integer(c_int64_t), intent(out) :: version
    end function
    integer(c_int) function sa_lock(arr, timeout_ms) bind(C, name="sa_lock")
      import :: c_int, c_int64_t, c_ptr
      type(c_ptr), value :: arr
      integer(c_int64_t), value :: timeout_ms
    end function
    integer(c_int) function sa_unlock(arr) bind(C, name="sa_unlock")
      import :: c_int, c_ptr
      type(c_ptr), value :: arr
    end function
    integer(c_int) function sa_attach_ex(name, flags, timeout_ms, ndim, shape, dtype, out) &
        bind(C, name="sa_attach_ex")
      import :: c_int, c_int32_t, c_int64_t, c_char, c_ptr
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int32_t), value :: flags, ndim, dtype
      integer(c_int64_t), value :: timeout_ms
      type(c_ptr), value :: shape
      type(c_ptr), intent(out) :: out
    end function
    integer(c_int) function sa_load(path, format, name, row_start, row_end, flags, timeout_ms, out, &
        outcome) bind(C, name="sa_load")
      import :: c_int, c_int32_t, c_int64_t, c_char, c_ptr
      character(kind=c_char), intent(in) :: path(*), name(*)
      integer(c_int32_t), value :: format, flags
      integer(c_int64_t), value :: row_start, row_end, timeout_ms
      type(c_ptr), intent(out) :: out
      integer(c_int32_t), intent(out) :: outcome
    end function
    integer(c_int32_t) function sa_get_dtype(arr) bind(C, name="sa_get_dtype")
      import :: c_int32_t, c_ptr
      type(c_ptr), value :: arr
    end function
    subroutine sa_release(arr) bind(C, name="sa_release")
      import :: c_ptr
      type(c_ptr), value :: arr
    end subroutine
    integer(c_int) function sa_delete_ex(name, flags) bind(C, name="sa_delete_ex")
      import :: c_int, c_char, c_int32_t
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int32_t), value :: flags
    end function
    type(c_ptr) function sa_data(arr) bind(C, name="sa_data")
      import :: c_ptr
      type(c_ptr), value :: arr
    end function
    integer(c_int32_t) function sa_ndim(arr) bind(C, name="sa_ndim")
      import :: c_int32_t, c_ptr
      type(c_ptr), value :: arr
    end function
    type(c_ptr) function sa_shape(arr) bind(C, name="sa_shape")
      import :: c_ptr
      type(c_ptr), value :: arr
    end function
    integer(c_int32_t) function sa_order(arr) bind(C, name="sa_order")
      import :: c_int32_t, c_ptr
      type(c_ptr), value :: arr
    end function
    type(c_ptr) function sa_last_error() bind(C, name="sa_last_error")
      import :: c_ptr
    end function
    type(c_ptr) function sa_status_str(status) bind(C, name="sa_status_str")
      import :: c_ptr, c_int
      integer(c_int), value :: status
    end function
  end interface

contains

  function c_str(s) result(c)
    character(*), intent(in) :: s
    character(kind=c_char, len=len_trim(s) + 1) :: c
    c = trim(s) // c_null_char
  end function

  function from_c(p) result(s)
    type(c_ptr), intent(in) :: p
    character(:), allocatable :: s
    character(kind=c_char), pointer :: chars(:)
    integer :: n
    n = 0
    if (c_associated(p)) then
      call c_f_pointer(p, chars, [65536])
      do while (chars(n + 1) /= c_null_char)
        n = n + 1
      end do
    end if
    allocate(character(n) :: s)
    if (n > 0) s = transfer(chars(1:n), s)
  end function

  !> The message of the last failed call on this thread.
  function ndshm_last_error() result(msg)
    character(:), allocatable :: msg
    msg = from_c(sa_last_error())
  end function

  !> The name of a status code, e.g. "SA_ERR_NOT_FOUND".
  function ndshm_status_name(status) result(s)
    integer, intent(in) :: status
    character(:), allocatable :: s
    s = from_c(sa_status_str(int(status, c_int)))
  end function

  !> Unmaps the array (never deletes it). Pointers onto it become invalid.
  subroutine ndshm_release(arr)
    type(ndshm_array), intent(inout) :: arr
    call sa_release(arr%h)
    arr%h = c_null_ptr
  end subroutine

  !> Removes the array's name; existing mappings stay valid. Returns the status.
  !> FLAGS: SA_DELETE_IN_PROGRESS also removes an array a live creator is still filling.
  integer function ndshm_delete(name, flags)
    character(*), intent(in) :: name
    integer, intent(in), optional :: flags
    integer(c_int32_t) :: f
    f = 0
    if (present(flags)) f = int(flags, c_int32_t)
    ndshm_delete = sa_delete_ex(c_str(name), f)
  end function

  !> True when the array is row-major (its Fortran pointer has the reversed shape).
  logical function ndshm_is_c_order(arr)
    type(ndshm_array), intent(in) :: arr
    ndshm_is_c_order = sa_order(arr%h) == SA_ORDER_C .and. sa_ndim(arr%h) > 1
  end function

  !> The shape as stored (numpy's order of axes).
  function ndshm_shape(arr) result(s)
    type(ndshm_array), intent(in) :: arr
    integer(int64), allocatable :: s(:)
    integer(c_int64_t), pointer :: p(:)
    allocate(s(sa_ndim(arr%h)))
    if (size(s) == 0) return
    call c_f_pointer(sa_shape(arr%h), p, [size(s)])
    s = p
  end function

  integer function create_raw(name, dims, dtype, flags, c_order, arr, capacity) result(stat)
    character(*), intent(in) :: name
    integer, intent(in) :: dims(:)
    integer(c_int32_t), intent(in) :: dtype
    integer, intent(in), optional :: flags
    logical, intent(in), optional :: c_order
    type(ndshm_array), intent(inout) :: arr
    integer(int64), intent(in), optional :: capacity
    integer(c_int64_t) :: cap
    integer(c_int32_t) :: f
    integer(c_int64_t) :: shape(max(1, size(dims)))
    f = SA_ORDER_F
    shape(1:size(dims)) = dims
    if (present(c_order)) then
      if (c_order) then
        f = 0
        shape(1:size(dims)) = dims(size(dims):1:-1)
      end if
    end if
    if (present(flags)) f = ior(f, int(flags, c_int32_t))
    cap = 0
    if (present(capacity)) cap = capacity
    stat = sa_create_ex(c_str(name), int(size(dims), c_int32_t), shape, dtype, f, cap, arr%h)
  end function

  !> Begins a write: readers' snapshots wait for ndshm_write_end and never see half of
  !> it. Write through the array pointer in between. STAT: SA_OK, SA_ERR_BUSY (another
  !> writer is writing: take turns with ndshm_lock), SA_ERR_OWNER_DIED (begun, but the
  !> previous writer died mid-write: rewrite all the data).
  subroutine ndshm_write_begin(arr, stat)
    type(ndshm_array), intent(inout) :: arr
    integer, intent(out) :: stat
    stat = sa_write_begin(arr%h)
  end subroutine

  !> Ends the write: publishes it as the next version (VERSION) and wakes the waiters.
  subroutine ndshm_write_end(arr, stat, version)
    type(ndshm_array), intent(inout) :: arr
    integer, intent(out) :: stat
    integer(int64), intent(out), optional :: version
    integer(c_int64_t) :: v
    stat = sa_write_end(arr%h, v)
    if (present(version)) version = v
  end subroutine

  !> Sleeps (no CPU) until a version newer than NEWER_THAN is published, at most
  !> TIMEOUT_MS (negative: no limit); VERSION: that version. STAT: SA_OK, SA_ERR_TIMEOUT,
  !> SA_ERR_STALE (the array was replaced or deleted under its name: attach it again).
  subroutine ndshm_wait(arr, newer_than, timeout_ms, stat, version)
    type(ndshm_array), intent(in) :: arr
    integer(int64), intent(in) :: newer_than
    integer, intent(in) :: timeout_ms
    integer, intent(out) :: stat
    integer(int64), intent(out), optional :: version
    integer(c_int64_t) :: v
    stat = sa_wait_version(arr%h, newer_than, int(timeout_ms, c_int64_t), v)
    if (present(version)) version = v
  end subroutine

  !> The latest published version (0 before the first write; -1 on error).
  integer(int64) function ndshm_version(arr)
    type(ndshm_array), intent(in) :: arr
    integer(c_int64_t) :: v
    ndshm_version = -1
    if (sa_get_version(arr%h, v) == SA_OK) ndshm_version = v
  end function

  !> Takes the array's process-shared lock, at most TIMEOUT_MS (default: no limit; 0:
  !> try once, SA_ERR_BUSY). SA_ERR_OWNER_DIED: the previous holder died holding it; the
  !> lock is held now and what it protects may need repair.
  subroutine ndshm_lock(arr, stat, timeout_ms)
    type(ndshm_array), intent(in) :: arr
    integer, intent(out) :: stat
    integer, intent(in), optional :: timeout_ms
    integer(c_int64_t) :: t
    t = -1
    if (present(timeout_ms)) t = int(timeout_ms, c_int64_t)
    stat = sa_lock(arr%h, t)
  end subroutine

  !> Releases the lock held by this thread.
  subroutine ndshm_unlock(arr, stat)
    type(ndshm_array), intent(in) :: arr
    integer, intent(out) :: stat
    stat = sa_unlock(arr%h)
  end subroutine

  integer function publish_raw(arr, src, fdims, nbytes, dtype, flags, version) result(stat)
    type(ndshm_array), intent(inout) :: arr
    type(c_ptr), intent(in) :: src
    integer, intent(in) :: fdims(:)
    integer(c_size_t), intent(in) :: nbytes
    integer(c_int32_t), intent(in) :: dtype
    integer, intent(in), optional :: flags
    integer(int64), intent(out), optional :: version
    integer(c_int64_t) :: shape(max(1, size(fdims))), v
    integer(c_int32_t) :: f
    ! The array's axes in its own order: reversed for a row-major array.
    if (sa_order(arr%h) == SA_ORDER_C) then
      shape(1:size(fdims)) = fdims(size(fdims):1:-1)
    else
      shape(1:size(fdims)) = fdims
    end if
    f = 0
    if (present(flags)) f = int(flags, c_int32_t)
    stat = sa_publish_shape(arr%h, int(size(fdims), c_int32_t), shape, dtype, src, nbytes, f, v)
    if (present(version) .and. stat == SA_OK) version = v
  end function

  integer function snapshot_raw(arr, dst, nbytes, dtype, version, timeout_ms, reshaped) result(stat)
    type(ndshm_array), intent(inout) :: arr
    type(c_ptr), intent(in) :: dst
    integer(c_size_t), intent(in) :: nbytes
    integer(c_int32_t), intent(in) :: dtype
    integer(int64), intent(out), optional :: version
    integer, intent(in), optional :: timeout_ms
    logical, intent(out), optional :: reshaped
    integer(c_int64_t) :: t, v
    integer(c_int32_t) :: r
    t = 1000
    if (present(timeout_ms)) t = int(timeout_ms, c_int64_t)
    stat = sa_read_copy(arr%h, dst, nbytes, t, v, r)
    if (stat /= SA_OK) return
    if (sa_get_dtype(arr%h) /= dtype) then
      stat = SA_ERR_MISMATCH
      return
    end if
    if (present(version)) version = v
    if (present(reshaped)) reshaped = r /= 0
  end function

  integer function attach_raw(name, rank, dtype, flags, timeout_ms, arr, fdims) result(stat)
    character(*), intent(in) :: name
    integer, intent(in) :: rank
    integer(c_int32_t), intent(in) :: dtype
    integer, intent(in), optional :: flags, timeout_ms
    type(ndshm_array), intent(inout) :: arr
    integer, intent(out) :: fdims(rank)
    integer(c_int32_t) :: f
    integer(c_int64_t) :: t
    integer(c_int64_t), pointer :: s(:)
    f = 0
    t = 0
    if (present(flags)) f = int(flags, c_int32_t)
    if (present(timeout_ms)) t = int(timeout_ms, c_int64_t)
    stat = sa_attach_ex(c_str(name), f, t, int(rank, c_int32_t), c_null_ptr, dtype, arr%h)
    if (stat /= SA_OK) return
    ! The attach checked that ndim == rank.
    call c_f_pointer(sa_shape(arr%h), s, [rank])
    if (ndshm_is_c_order(arr)) then
      fdims = int(s(rank:1:-1))
    else
      fdims = int(s)
    end if
  end function

  integer function load_raw(path, name, rank, dtype, flags, timeout_ms, arr, fdims, outcome) result(stat)
    character(*), intent(in) :: path, name
    integer, intent(in) :: rank
    integer(c_int32_t), intent(in) :: dtype
    integer, intent(in), optional :: flags, timeout_ms
    type(ndshm_array), intent(inout) :: arr
    integer, intent(out) :: fdims(rank)
    integer, intent(out), optional :: outcome
    integer(c_int32_t) :: f, oc
    integer(c_int64_t) :: t
    integer(c_int64_t), pointer :: s(:)
    f = 0
    ! A load can take long (a big file): wait for another process's load without limit
    ! unless told otherwise.
    t = -1
    if (present(flags)) f = int(flags, c_int32_t)
    if (present(timeout_ms)) t = int(timeout_ms, c_int64_t)
    oc = -1
    stat = sa_load(c_str(path), SA_FILE_NPY, c_str(name), -1_c_int64_t, -1_c_int64_t, f, t, arr%h, oc)
    if (present(outcome)) outcome = int(oc)
    if (stat /= SA_OK) return
    ! sa_load takes the shape and dtype from the file: check they fit the pointer.
    if (sa_ndim(arr%h) /= rank .or. sa_get_dtype(arr%h) /= dtype) then
      call ndshm_release(arr)
      stat = SA_ERR_MISMATCH
      return
    end if
    call c_f_pointer(sa_shape(arr%h), s, [rank])
    if (ndshm_is_c_order(arr)) then
      fdims = int(s(rank:1:-1))
    else
      fdims = int(s)
    end if
  end function
{procedures()}

end module ndshm
"""


if __name__ == "__main__":
    text = generate()
    if "--check" in sys.argv:
        if OUT.read_text() != text:
            sys.exit("bindings/fortran/ndshm.f90 is stale: run python3 scripts/gen_fortran.py")
    else:
        OUT.write_text(text)
