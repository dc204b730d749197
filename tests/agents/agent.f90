! Matrix agent in Fortran (see PROTOCOL.md). numpy index (i, j, k), 0-based, is
! a(i+1, j+1, k+1) for F order and a(k+1, j+1, i+1) for C order (reversed shape).
program agent
  use, intrinsic :: iso_fortran_env, only: real32, real64, int8, int32, int64
  use ndshm
  implicit none
  character(len=16) :: cmd
  character(len=400) :: prefix
  character(len=8), parameter :: dtypes(5) = [character(len=8) :: "float64", "float32", "int32", "int64", "uint8"]
  character(len=1), parameter :: orders(2) = ["C", "F"]
  type(ndshm_array) :: h(10)
  real(real64), pointer :: r8(:,:,:)
  real(real32), pointer :: r4(:,:,:)
  integer(int32), pointer :: i4(:,:,:)
  integer(int64), pointer :: i8(:,:,:)
  integer(int8), pointer :: u1(:,:,:)
  real(real64) :: vals(2, 3, 4), got(2, 3, 4)
  integer :: d, o, i, j, k, stat, cell
  logical :: create, bad, isc
  character(len=512) :: name
  character(len=64) :: why, line

  call get_command_argument(1, cmd)
  call get_command_argument(2, prefix)
  create = trim(cmd) == "create"
  bad = .false.
  do k = 0, 3
    do j = 0, 2
      do i = 0, 1
        vals(i + 1, j + 1, k + 1) = 100 * i + 10 * j + k
      end do
    end do
  end do

  do d = 1, 5
    do o = 1, 2
      cell = (d - 1) * 2 + o
      name = trim(prefix) // "-" // trim(dtypes(d)) // "-" // orders(o)
      isc = o == 1
      why = ""
      if (create) then
        call make(name, d, isc, h(cell), stat)
        if (stat /= SA_OK) then
          print '(a, " ", a, " bad: ", a)', trim(dtypes(d)), orders(o), ndshm_last_error()
          error stop 1
        end if
        call store(d, isc, vals)
      else
        call open(name, d, h(cell), stat)
        if (stat == SA_ERR_MISMATCH) then
          why = "wrong dtype or shape"
        else if (stat /= SA_OK) then
          why = ndshm_status_name(stat)
        else if (ndshm_is_c_order(h(cell)) .neqv. isc) then
          why = "wrong order"
        else if (any(ndshm_shape(h(cell)) /= [2, 3, 4])) then
          why = "wrong shape"
        else
          call load(d, isc, got)
          if (any(got /= vals)) then
            why = "wrong element"
          else
            call store(d, isc, 127 - vals)
          end if
        end if
        call report(dtypes(d), orders(o), why, bad)
        call ndshm_release(h(cell))
      end if
    end do
  end do

  if (create) then
    print '(a)', "ready"
    flush(6)
    read (*, '(a)') line
    do d = 1, 5
      do o = 1, 2
        cell = (d - 1) * 2 + o
        isc = o == 1
        call point(d, h(cell), isc)
        call load(d, isc, got)
        why = ""
        if (any(got /= 127 - vals)) why = "wrong reply"
        call report(dtypes(d), orders(o), why, bad)
        name = trim(prefix) // "-" // trim(dtypes(d)) // "-" // orders(o)
        call ndshm_release(h(cell))
        stat = ndshm_delete(trim(name))
      end do
    end do
  end if
  if (bad) error stop 1

contains

  subroutine report(dt, ord, why, bad)
    character(*), intent(in) :: dt, ord, why
    logical, intent(inout) :: bad
    if (len_trim(why) == 0) then
      print '(a, " ", a, " ok")', trim(dt), ord
    else
      print '(a, " ", a, " bad: ", a)', trim(dt), ord, trim(why)
      bad = .true.
    end if
  end subroutine

  ! Fortran dims for numpy shape (2, 3, 4).
  function fdims(c) result(f)
    logical, intent(in) :: c
    integer :: f(3)
    f = [2, 3, 4]
    if (c) f = [4, 3, 2]
  end function

  subroutine make(nm, d, c, hh, stat)
    character(*), intent(in) :: nm
    integer, intent(in) :: d
    logical, intent(in) :: c
    type(ndshm_array), intent(inout) :: hh
    integer, intent(out) :: stat
    select case (d)
    case (1); call ndshm_create(trim(nm), fdims(c), r8, hh, stat, c_order=c)
    case (2); call ndshm_create(trim(nm), fdims(c), r4, hh, stat, c_order=c)
    case (3); call ndshm_create(trim(nm), fdims(c), i4, hh, stat, c_order=c)
    case (4); call ndshm_create(trim(nm), fdims(c), i8, hh, stat, c_order=c)
    case (5); call ndshm_create(trim(nm), fdims(c), u1, hh, stat, c_order=c)
    end select
  end subroutine

  subroutine open(nm, d, hh, stat)
    character(*), intent(in) :: nm
    integer, intent(in) :: d
    type(ndshm_array), intent(inout) :: hh
    integer, intent(out) :: stat
    select case (d)
    case (1); call ndshm_attach(trim(nm), r8, hh, stat)
    case (2); call ndshm_attach(trim(nm), r4, hh, stat)
    case (3); call ndshm_attach(trim(nm), i4, hh, stat)
    case (4); call ndshm_attach(trim(nm), i8, hh, stat)
    case (5); call ndshm_attach(trim(nm), u1, hh, stat)
    end select
  end subroutine

  ! Re-point the right pointer at an array this process created.
  subroutine point(d, hh, c)
    integer, intent(in) :: d
    type(ndshm_array), intent(inout) :: hh
    logical, intent(in) :: c
    integer :: st
    type(ndshm_array) :: again
    ! Attach once more (same memory) to get a pointer of the right kind.
    select case (d)
    case (1); call ndshm_attach(trim(name_of(d, c)), r8, again, st)
    case (2); call ndshm_attach(trim(name_of(d, c)), r4, again, st)
    case (3); call ndshm_attach(trim(name_of(d, c)), i4, again, st)
    case (4); call ndshm_attach(trim(name_of(d, c)), i8, again, st)
    case (5); call ndshm_attach(trim(name_of(d, c)), u1, again, st)
    end select
    if (st /= SA_OK) error stop 3
    call ndshm_release(hh)
    hh = again
  end subroutine

  function name_of(d, c) result(nm)
    integer, intent(in) :: d
    logical, intent(in) :: c
    character(len=512) :: nm
    nm = trim(prefix) // "-" // trim(dtypes(d)) // "-" // merge("C", "F", c)
  end function

  ! numpy-indexed values (2,3,4) <-> the Fortran pointer of kind d.
  subroutine store(d, c, v)
    integer, intent(in) :: d
    logical, intent(in) :: c
    real(real64), intent(in) :: v(2, 3, 4)
    real(real64) :: t(4, 3, 2)
    if (c) t = reshape(v, [4, 3, 2], order=[3, 2, 1])
    select case (d)
    case (1); if (c) then; r8 = t; else; r8 = v; end if
    case (2); if (c) then; r4 = real(t, real32); else; r4 = real(v, real32); end if
    case (3); if (c) then; i4 = int(t, int32); else; i4 = int(v, int32); end if
    case (4); if (c) then; i8 = int(t, int64); else; i8 = int(v, int64); end if
    case (5); if (c) then; u1 = int(t, int8); else; u1 = int(v, int8); end if
    end select
  end subroutine

  subroutine load(d, c, v)
    integer, intent(in) :: d
    logical, intent(in) :: c
    real(real64), intent(out) :: v(2, 3, 4)
    real(real64) :: t(4, 3, 2)
    select case (d)
    case (1); if (c) then; t = r8; else; v = r8; end if
    case (2); if (c) then; t = real(r4, real64); else; v = real(r4, real64); end if
    case (3); if (c) then; t = real(i4, real64); else; v = real(i4, real64); end if
    case (4); if (c) then; t = real(i8, real64); else; v = real(i8, real64); end if
    case (5); if (c) then; t = real(iand(int(u1, int32), 255), real64); else; v = real(iand(int(u1, int32), 255), real64); end if
    end select
    if (c) v = reshape(t, [2, 3, 4], order=[3, 2, 1])
  end subroutine
end program
