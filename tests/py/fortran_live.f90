! Fortran writer for tests/py/test_live.py: publishes COUNT versions of the array NAME
! in which every element equals the version, changing shape (and kind, int32 every
! 7th shape) every 5th version, as tests/c/live_tool.c's writer does.
program fortran_live
  use ndshm
  use, intrinsic :: iso_fortran_env, only: real64, int32, int64
  implicit none
  type(ndshm_array) :: h
  real(real64), pointer :: a(:,:)
  real(real64), allocatable :: x(:,:)
  integer(int32), allocatable :: ix(:,:)
  integer :: stat, i, count, m, n
  integer(int64) :: v, k
  character(256) :: name, arg

  call get_command_argument(1, name)
  call get_command_argument(2, arg)
  read (arg, *) count
  call ndshm_attach(trim(name), a, h, stat)
  if (stat /= SA_OK) call die("attach", stat)
  v = ndshm_version(h)
  print '(a)', "ready"
  flush (6)
  do i = 1, count
    k = (v + 1) / 5
    m = 1 + int(mod(k, 13_int64))
    n = 1 + int(mod(k * 7, 17_int64))
    if (mod(k, 7_int64) == 3) then
      allocate (ix(m, n))
      ix = int(v + 1, int32)
      call ndshm_publish(h, ix, stat, v)
      deallocate (ix)
    else
      allocate (x(m, n))
      x = real(v + 1, real64)
      call ndshm_publish(h, x, stat, v)
      deallocate (x)
    end if
    if (stat /= SA_OK) call die("publish", stat)
  end do
  print '(a, i0)', "published ", v
  call ndshm_release(h)

contains

  subroutine die(what, stat)
    character(*), intent(in) :: what
    integer, intent(in) :: stat
    print '(a, 1x, a, 1x, a)', what, ndshm_status_name(stat), ndshm_last_error()
    stop 1
  end subroutine

end program
