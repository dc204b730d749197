//! Typed options of the safe API. The C layer converts its flag bits into these; the
//! core never sees a bit mask.

use std::time::Duration;

use crate::dtype::Dtype;
use crate::format::Order;

/// Builder-style setters: `fn field(mut self, v) -> Self`.
macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty;)*) => {$(
        $(#[$doc])*
        pub fn $field(mut self, v: $ty) -> Self {
            self.$field = v;
            self
        }
    )*};
}

/// Who may open a new array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Share {
    /// 0600: the owner only (default).
    #[default]
    Owner,
    /// 0660: owner and group.
    Group,
    /// 0666: everybody.
    All,
}

impl Share {
    /// The permission bits.
    pub fn mode(self) -> u32 {
        match self {
            Share::Owner => 0o600,
            Share::Group => 0o660,
            Share::All => 0o666,
        }
    }
}

/// How to create an array. Build with `CreateOptions::default()` and the setters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// Storage order (default C).
    pub order: Order,
    /// Replace an existing array of that name. The replacement is atomic (`rename`):
    /// attachers see the old array or the new one, and a failed create leaves the old
    /// one as it was. Only arrays are replaced, never other files.
    pub force: bool,
    /// Do not reserve memory (pages are allocated on first write; a full filesystem
    /// then means SIGBUS, as with the tools ndshm replaces).
    pub sparse: bool,
    /// Prefault every page at create.
    pub populate: bool,
    /// Advise transparent huge pages on the data.
    pub hugepages: bool,
    /// Permissions.
    pub share: Share,
    /// Write SharedArray's layout instead of v1.
    pub sharedarray_format: bool,
    /// Bytes to reserve for data, when more than the initial shape needs: later shape
    /// (and dtype) changes up to this size happen in place (`Array::write_shape`).
    /// `None` reserves exactly the initial shape's bytes. v1 only.
    pub capacity: Option<u64>,
}

impl CreateOptions {
    setters! {
        /// Sets the storage order.
        order: Order;
        /// Replace an existing array.
        force: bool;
        /// Do not reserve memory.
        sparse: bool;
        /// Prefault pages.
        populate: bool;
        /// Advise huge pages.
        hugepages: bool;
        /// Permissions.
        share: Share;
        /// SharedArray layout.
        sharedarray_format: bool;
        /// Data bytes to reserve (see [`CreateOptions::capacity`]).
        capacity: Option<u64>;
    }
}

/// How to attach.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttachOptions {
    /// Map read-only: writes through the mapping fault, and mutating calls fail with
    /// [`ErrorKind::ReadOnly`](crate::ErrorKind::ReadOnly).
    pub readonly: bool,
    /// Prefault every page.
    pub populate: bool,
    /// Wait up to this long for the array to exist and be ready; `None` tries once.
    /// [`Duration::MAX`] waits without limit. A creator that dies while the array is
    /// being initialised ends the wait at once with
    /// [`ErrorKind::OwnerDied`](crate::ErrorKind::OwnerDied).
    pub wait: Option<Duration>,
    /// Attach to an array owned by another user. Off by default: whoever can write a
    /// segment can also truncate it, which kills every process reading the lost pages
    /// with SIGBUS, and any user can create a name in /dev/shm before you do.
    pub allow_other_owner: bool,
    /// Follow a symbolic link at the array's name (off by default).
    pub follow_symlinks: bool,
}

impl AttachOptions {
    setters! {
        /// Read-only.
        readonly: bool;
        /// Prefault pages.
        populate: bool;
        /// Trust arrays owned by other users.
        allow_other_owner: bool;
        /// Follow a symbolic link at the name.
        follow_symlinks: bool;
    }
    /// Wait up to `timeout` for the array (see [`AttachOptions::wait`]).
    pub fn wait(mut self, timeout: Duration) -> Self {
        self.wait = Some(timeout);
        self
    }
}

/// The shape a checked attach expects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ShapeExpect {
    /// Any shape.
    #[default]
    Any,
    /// Any shape with this many dimensions.
    Ndim(usize),
    /// Exactly these dimensions; `None` accepts any length on that axis.
    Dims(Vec<Option<i64>>),
}

/// What a checked attach expects; the default accepts anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    /// Expected shape.
    pub shape: ShapeExpect,
    /// Expected dtype.
    pub dtype: Option<Dtype>,
    /// Expected order (ignored for arrays of fewer than two dimensions, where both
    /// orders are the same layout).
    pub order: Option<Order>,
}

impl Expect {
    /// Expects exactly this shape.
    pub fn shape(mut self, shape: &[i64]) -> Self {
        self.shape = ShapeExpect::Dims(shape.iter().map(|&d| Some(d)).collect());
        self
    }
    /// Expects any shape of `ndim` dimensions.
    pub fn ndim(mut self, ndim: usize) -> Self {
        self.shape = ShapeExpect::Ndim(ndim);
        self
    }
    /// Expects this dtype.
    pub fn dtype(mut self, d: Dtype) -> Self {
        self.dtype = Some(d);
        self
    }
    /// Expects this order.
    pub fn order(mut self, o: Order) -> Self {
        self.order = Some(o);
        self
    }
}

/// How `msync` writes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// Schedule the write-back and return (`MS_ASYNC`).
    Async,
    /// Write back and wait (`MS_SYNC`).
    Sync,
}

/// How to delete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// Also delete an array whose creator is alive and still initialising it.
    pub in_progress: bool,
}
