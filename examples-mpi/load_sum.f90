! One copy of a dataset per node, shared by every MPI rank on it (Fortran, mpi_f08).
!
!   mpirun -np 4 ./load_sum_f data.npy train [--delete]
!
! The same program as load_sum.c: every rank calls ndshm_load on the same file and name;
! on each node exactly one rank reads the file into shared memory, the others wait until
! it is complete and attach. The node communicator (MPI_COMM_TYPE_SHARED) counts the
! loads per node and tells when a node's ranks are done. Each rank sums its slice of
! rows; MPI_Reduce adds the partial sums over the job.
!
! The .npy file is row-major (numpy's x[rows, cols]), so Fortran sees it with the shape
! reversed: a(cols, rows), numpy's row i being column i+1 here.
program load_sum
  use mpi_f08
  use ndshm
  use, intrinsic :: iso_fortran_env, only: real64, int64, error_unit
  implicit none
  real(real64), pointer :: a(:,:)
  type(ndshm_array) :: h
  type(MPI_Comm) :: node
  character(4096) :: path, name, opt
  character(160) :: line
  character(160), allocatable :: lines(:)
  integer :: r
  integer :: rank, nranks, node_rank, node_size, stat, outcome, created, loads, nodes, leader
  integer(int64) :: rows, lo, hi, before, read_bytes
  real(real64) :: partial, total
  logical :: del

  call MPI_Init()
  call MPI_Comm_rank(MPI_COMM_WORLD, rank)
  call MPI_Comm_size(MPI_COMM_WORLD, nranks)
  if (command_argument_count() < 2) then
    if (rank == 0) write (error_unit, '(a)') 'usage: load_sum_f FILE.npy NAME [--delete]'
    call MPI_Abort(MPI_COMM_WORLD, 2)
  end if
  call get_command_argument(1, path)
  call get_command_argument(2, name)
  opt = ''
  if (command_argument_count() > 2) call get_command_argument(3, opt)
  del = trim(opt) == '--delete'

  call MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, node)
  call MPI_Comm_rank(node, node_rank)
  call MPI_Comm_size(node, node_size)

  before = rchar()
  ! Read-only, and no timeout: another rank's load of a big file takes what it takes.
  call ndshm_load(trim(path), trim(name), a, h, stat, outcome=outcome, flags=SA_READONLY)
  if (stat /= SA_OK) then
    write (error_unit, '(a,i0,a,a)') 'rank ', rank, ': ', ndshm_last_error()
    call MPI_Abort(MPI_COMM_WORLD, 1)
  end if
  read_bytes = rchar() - before
  if (ndshm_is_c_order(h) .eqv. .false.) then
    write (error_unit, '(a)') 'expected a row-major (C order) .npy file'
    call MPI_Abort(MPI_COMM_WORLD, 1)
  end if

  rows = size(a, 2, kind=int64)
  lo = rows * rank / nranks
  hi = rows * (rank + 1) / nranks
  partial = sum(a(:, lo + 1:hi))

  call MPI_Reduce(partial, total, 1, MPI_DOUBLE_PRECISION, MPI_SUM, 0, MPI_COMM_WORLD)
  created = merge(1, 0, outcome == SA_CREATED)
  leader = merge(1, 0, node_rank == 0)
  call MPI_Reduce(created, loads, 1, MPI_INTEGER, MPI_SUM, 0, MPI_COMM_WORLD)
  call MPI_Reduce(leader, nodes, 1, MPI_INTEGER, MPI_SUM, 0, MPI_COMM_WORLD)

  ! One line per rank, printed by rank 0 (ranks writing to one stdout would interleave).
  write (line, '(a,i0,a,i0,a,i0,a,a,a,i0,a,i0,a,i0)') 'rank ', rank, ' node_rank ', node_rank, '/', &
    node_size, ' outcome ', trim(merge('created ', 'attached', created == 1)), ' read_bytes ', read_bytes, &
    ' rows ', lo, ':', hi
  allocate (lines(merge(nranks, 1, rank == 0)))
  call MPI_Gather(line, len(line), MPI_CHARACTER, lines, len(line), MPI_CHARACTER, 0, MPI_COMM_WORLD)
  if (rank == 0) then
    do r = 1, nranks
      write (*, '(a)') trim(lines(r))
    end do
  end if

  ! Every rank of this node is done with the data before its loader removes the name.
  call MPI_Barrier(node)
  if (del .and. created == 1) then
    stat = ndshm_delete(trim(name))
    if (stat /= SA_OK) write (error_unit, '(a)') ndshm_last_error()
  end if
  call ndshm_release(h)
  call MPI_Barrier(MPI_COMM_WORLD)
  if (rank == 0) write (*, '(a,i0,a,i0,a,i0,a,es25.17)') 'ranks ', nranks, ' nodes ', nodes, ' loads ', &
    loads, ' sum ', total
  call MPI_Comm_free(node)
  call MPI_Finalize()

contains

  ! Bytes this process has read through read-like system calls (sendfile included).
  integer(int64) function rchar()
    character(256) :: line
    integer :: u, ios
    rchar = -1
    open (newunit=u, file='/proc/self/io', action='read', status='old', iostat=ios)
    if (ios /= 0) return
    do
      read (u, '(a)', iostat=ios) line
      if (ios /= 0) exit
      if (line(1:6) == 'rchar:') then
        read (line(7:), *) rchar
        exit
      end if
    end do
    close (u)
  end function
end program load_sum
