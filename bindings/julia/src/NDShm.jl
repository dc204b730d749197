"""
    NDShm

Julia wrapper of the ndshm C library: named N-dimensional arrays in shared memory,
shared with C, C++, Fortran, Python and Rust processes with zero copies.

    using NDShm
    a = NDShm.create("shm://sim-out", Float64, (1000, 500))   # Array{Float64,2}, zeroed
    a[1, 1] = 42
    b = NDShm.attach("shm://sim-out", Float64, 2; readonly=true)
    NDShm.delete("shm://sim-out")

Arrays are column-major, as in Fortran: Julia's shape is the stored shape (numpy sees
an F-contiguous array of the same shape). Attaching a row-major (C order) array gives
the reversed shape, i.e. its transpose. The handle is released by a finalizer on the
array, so the mapping lives as long as the array. The library is found through
`ENV["NDSHM_LIBRARY"]`, else `libndshm` on the loader path.
"""
module NDShm

const libndshm = get(ENV, "NDSHM_LIBRARY", "libndshm")

const SA_OK = Cint(0)
const SA_ERR_NOT_FOUND = Cint(-2)
const SA_ERR_EXISTS = Cint(-3)
const SA_ORDER_C = Int32(0)
const SA_ORDER_F = UInt32(1)
const SA_FORCE = UInt32(2)
const SA_READONLY = UInt32(256)
const SA_DTYPE_ANY = Int32(-1)

const DTYPES = Dict{DataType,Int32}(
    Bool => 0, Int8 => 1, UInt8 => 2, Int16 => 3, UInt16 => 4, Int32 => 5, UInt32 => 6,
    Int64 => 7, UInt64 => 8, Float16 => 9, Float32 => 10, Float64 => 11,
    ComplexF32 => 12, ComplexF64 => 13,
)

"An ndshm failure: the status code and the library's message."
struct NDShmError <: Exception
    status::Cint
    msg::String
end
Base.showerror(io::IO, e::NDShmError) = print(io, "NDShmError(", e.status, "): ", e.msg)

function check(status::Cint)
    status == SA_OK && return nothing
    msg = unsafe_string(ccall((:sa_last_error, libndshm), Cstring, ()))
    throw(NDShmError(status, msg))
end

dtype_code(::Type{T}) where {T} = haskey(DTYPES, T) ? DTYPES[T] :
    throw(ArgumentError("ndshm has no dtype for $T"))

release(h::Ptr{Cvoid}) = ccall((:sa_release, libndshm), Cvoid, (Ptr{Cvoid},), h)

function wrap(::Type{T}, h::Ptr{Cvoid}) where {T}
    nd = ccall((:sa_ndim, libndshm), Int32, (Ptr{Cvoid},), h)
    sp = ccall((:sa_shape, libndshm), Ptr{Int64}, (Ptr{Cvoid},), h)
    dims = ntuple(i -> Int(unsafe_load(sp, i)), nd)
    order = ccall((:sa_order, libndshm), Int32, (Ptr{Cvoid},), h)
    if order == SA_ORDER_C
        dims = reverse(dims)          # row-major data is the transpose, column-major
    end
    p = ccall((:sa_data, libndshm), Ptr{Cvoid}, (Ptr{Cvoid},), h)
    a = unsafe_wrap(Array, Ptr{T}(p), dims; own=false)
    finalizer(_ -> release(h), a)     # the mapping lives as long as the array
    return a
end

"""
    create(name, T, dims; force=false, flags=0) -> Array{T}

Create a zero-filled shared array of element type `T` and Julia shape `dims`
(column-major). Memory is reserved up front: a full /dev/shm is an error here.
"""
function create(name::AbstractString, ::Type{T}, dims::Dims; force::Bool=false,
                flags::Integer=0) where {T}
    shape = Int64[d for d in dims]
    f = UInt32(flags) | SA_ORDER_F | (force ? SA_FORCE : UInt32(0))
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:sa_create, libndshm), Cint,
                (Cstring, Int32, Ptr{Int64}, Int32, UInt32, Ref{Ptr{Cvoid}}),
                name, length(shape), shape, dtype_code(T), f, out))
    return wrap(T, out[])
end

"""
    attach(name, T, N; readonly=false, timeout_ms=0) -> Array{T,N}

Attach an existing array, which must hold `T` elements in `N` dimensions (waiting up
to `timeout_ms` for it to exist and be ready).
"""
function attach(name::AbstractString, ::Type{T}, N::Integer; readonly::Bool=false,
                timeout_ms::Integer=0) where {T}
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:sa_attach_ex, libndshm), Cint,
                (Cstring, UInt32, Int64, Int32, Ptr{Int64}, Int32, Ref{Ptr{Cvoid}}),
                name, readonly ? SA_READONLY : UInt32(0), timeout_ms, N, C_NULL,
                dtype_code(T), out))
    return wrap(T, out[])
end

"Remove an array's name; arrays already attached stay valid."
delete(name::AbstractString) = check(ccall((:sa_delete, libndshm), Cint, (Cstring,), name))

"The library version."
version() = unsafe_string(ccall((:sa_version, libndshm), Cstring, ()))

end # module
