! Attaches a named float64 2-D array read-only and prints its shape and checksum.
!   example NAME
program example
  use, intrinsic :: iso_fortran_env, only: real64
  use ndshm
  implicit none
  real(real64), pointer :: a(:,:)
  type(ndshm_array) :: h
  integer :: stat
  character(len=4096) :: name

  call get_command_argument(1, name)
  call ndshm_attach(trim(name), a, h, stat, flags=SA_READONLY, timeout_ms=1000)
  if (stat /= SA_OK) then
    print '(a, ": ", a)', ndshm_status_name(stat), ndshm_last_error()
    error stop 1
  end if
  print '("fortran: attached ", a, " as a(", i0, ",", i0, ")", a, ", checksum (sum) ", f0.6)', &
    trim(name), size(a, 1), size(a, 2), &
    merge(" (row-major: a(j,i) is numpy's a[i-1,j-1])", "                                          ", &
          ndshm_is_c_order(h)), sum(a)
  call ndshm_release(h)
end program
