! Fortran test program: create, errors as status + message, kinds and ranks.
program fortran_errors
  use, intrinsic :: iso_fortran_env, only: real32, real64, int32, int64
  use ndshm
  implicit none
  character(len=256) :: base
  real(real64), pointer :: a(:,:), b(:,:)
  real(real32), pointer :: w(:)
  integer(int64), pointer :: c(:,:,:)
  type(ndshm_array) :: ha, hb, hw, hc
  integer :: stat, i, j

  call get_command_argument(1, base)
  ! Create a(3,4), fill a(i,j) = 10*i + j, leave it for Python to check.
  call ndshm_create(trim(base) // "-a", [3, 4], a, ha, stat)
  if (stat /= SA_OK) error stop 1
  do j = 1, 4
    do i = 1, 3
      a(i, j) = 10 * i + j
    end do
  end do
  ! Attach it again: same memory, same Fortran shape.
  call ndshm_attach(trim(base) // "-a", b, hb, stat, flags=SA_READONLY)
  if (stat /= SA_OK .or. any(shape(b) /= [3, 4]) .or. b(2, 3) /= 23) error stop 2
  call ndshm_release(hb)
  ! Errors: status and message.
  call ndshm_attach(trim(base) // "-missing", b, hb, stat)
  print '(a, " ", a)', ndshm_status_name(stat), ndshm_last_error()
  call ndshm_attach(trim(base) // "-a", w, hw, stat)
  print '(a, " ", a)', ndshm_status_name(stat), ndshm_last_error()
  call ndshm_create(trim(base) // "-a", [1, 1], b, hb, stat)
  print '(a, " ", a)', ndshm_status_name(stat), ndshm_last_error()
  call ndshm_create("bad/name", [2], w, hw, stat)
  print '(a, " ", a)', ndshm_status_name(stat), ndshm_last_error()
  if (associated(w)) error stop 3
  ! int64 rank 3 with a zero extent.
  call ndshm_create(trim(base) // "-c", [2, 0, 5], c, hc, stat)
  if (stat /= SA_OK .or. size(c) /= 0) error stop 4
  call ndshm_release(hc)
  stat = ndshm_delete(trim(base) // "-c")
  call ndshm_release(ha)
  print '(a)', "fortran done"
end program
