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

# ---------------------------------------------------------------- live data

const SA_ERR_OWNER_DIED = Cint(-10)
const SA_ERR_MISMATCH = Cint(-5)

"""
    Live(name; readonly=false, timeout_ms=0)

A handle for live data (publish, snapshots, waiting, the lock) on the array `name`:

    w = NDShm.Live("shm://state")                 # the writer
    v = NDShm.publish!(w, rand(100, 10))          # new data (and shape), one version
    r = NDShm.Live("shm://state"; readonly=true)  # a reader, in any process
    x, v = NDShm.snapshot(r, Float64)             # a consistent copy and its version
    v = NDShm.wait(r, v; timeout_ms=1000)         # sleeps until a newer version
    NDShm.lock(w) do owner_died ... end           # writers take turns

Released by a finalizer.
"""
mutable struct Live
    h::Ptr{Cvoid}
    function Live(name::AbstractString; readonly::Bool=false, timeout_ms::Integer=0)
        out = Ref{Ptr{Cvoid}}(C_NULL)
        check(ccall((:sa_attach_ex, libndshm), Cint,
                    (Cstring, UInt32, Int64, Int32, Ptr{Int64}, Int32, Ref{Ptr{Cvoid}}),
                    name, readonly ? SA_READONLY : UInt32(0), timeout_ms, -1, C_NULL,
                    SA_DTYPE_ANY, out))
        l = new(out[])
        finalizer(x -> release(x.h), l)
        return l
    end
end

"The latest published version of the array."
function published_version(l::Live)
    v = Ref{UInt64}(0)
    check(ccall((:sa_get_version, libndshm), Cint, (Ptr{Cvoid}, Ref{UInt64}), l.h, v))
    return v[]
end

"""
    publish!(l, a) -> version

Publish `a` (its Julia shape, column-major) as the next version, atomically: readers
see all of it or none. The array takes on `a`'s shape and type, which must fit the
capacity reserved at create.
"""
function publish!(l::Live, a::Array{T}) where {T}
    shape = Int64[d for d in size(a)]
    if ccall((:sa_order, libndshm), Int32, (Ptr{Cvoid},), l.h) == SA_ORDER_C
        reverse!(shape)
    end
    v = Ref{UInt64}(0)
    check(ccall((:sa_publish_shape, libndshm), Cint,
                (Ptr{Cvoid}, Int32, Ptr{Int64}, Int32, Ptr{Cvoid}, Csize_t, UInt32, Ref{UInt64}),
                l.h, length(shape), shape, dtype_code(T), a, sizeof(a), UInt32(0), v))
    return v[]
end

"""
    snapshot(l, T; timeout_ms=1000) -> (Array{T}, version)

A consistent copy of the data (retried while writers write), with its version.
"""
function snapshot(l::Live, ::Type{T}; timeout_ms::Integer=1000) where {T}
    while true
        n = ccall((:sa_nbytes, libndshm), Csize_t, (Ptr{Cvoid},), l.h)
        buf = Vector{UInt8}(undef, n)
        v = Ref{UInt64}(0)
        re = Ref{Int32}(0)
        st = ccall((:sa_read_copy, libndshm), Cint,
                   (Ptr{Cvoid}, Ptr{Cvoid}, Csize_t, Int64, Ref{UInt64}, Ref{Int32}),
                   l.h, buf, n, timeout_ms, v, re)
        st == SA_ERR_MISMATCH && continue          # the shape grew: size the buffer again
        check(st)
        re[] != 0 && ccall((:sa_nbytes, libndshm), Csize_t, (Ptr{Cvoid},), l.h) != n && continue
        ccall((:sa_get_dtype, libndshm), Int32, (Ptr{Cvoid},), l.h) == dtype_code(T) ||
            throw(ArgumentError("the array does not hold $T"))
        nd = ccall((:sa_ndim, libndshm), Int32, (Ptr{Cvoid},), l.h)
        sp = ccall((:sa_shape, libndshm), Ptr{Int64}, (Ptr{Cvoid},), l.h)
        dims = ntuple(i -> Int(unsafe_load(sp, i)), nd)
        if ccall((:sa_order, libndshm), Int32, (Ptr{Cvoid},), l.h) == SA_ORDER_C
            dims = reverse(dims)
        end
        return reshape(reinterpret(T, buf), dims), v[]
    end
end

"""
    wait(l, newer_than; timeout_ms=-1) -> version

Sleep (no CPU) until a version newer than `newer_than` is published.
"""
function wait(l::Live, newer_than::Integer; timeout_ms::Integer=-1)
    v = Ref{UInt64}(0)
    check(ccall((:sa_wait_version, libndshm), Cint, (Ptr{Cvoid}, UInt64, Int64, Ref{UInt64}),
                l.h, newer_than, timeout_ms, v))
    return v[]
end

"""
    lock(f, l; timeout_ms=-1)

Run `f(owner_died)` holding the array's process-shared lock; `owner_died` is true when
the previous holder died holding it (repair what it protects).
"""
function lock(f, l::Live; timeout_ms::Integer=-1)
    st = ccall((:sa_lock, libndshm), Cint, (Ptr{Cvoid}, Int64), l.h, timeout_ms)
    died = st == SA_ERR_OWNER_DIED
    died || check(st)
    try
        return f(died)
    finally
        check(ccall((:sa_unlock, libndshm), Cint, (Ptr{Cvoid},), l.h))
    end
end

end # module
