// SPDX-License-Identifier: GPL-2.0

//! Typed mount parameters (`struct fs_parameter_spec`, `fs_parse()`).
//!
//! C headers: [`include/linux/fs_parser.h`](srctree/include/linux/fs_parser.h).
//!
//! # How a filesystem uses this module
//!
//! It describes its parameters in a static [`Table`], terminated by [`Spec::END`], and returns
//! [`Table::parameters`] from [`FileSystem::PARAMETERS`](super::fs_context::FileSystem). The VFS
//! matches each parameter by name and checks its type (`fs_parse()`); the filesystem's
//! [`parse_param`](super::fs_context::FileSystem::parse_param) then gets the option number and a
//! typed [`Value`]. Option numbers must be distinct.
//!
//! ```ignore
//! const OPT_ROOT: u8 = 0;
//! const OPT_VERBOSE: u8 = 1;
//! static PARAMS: param::Table<3> = param::Table::new([
//!     param::Spec::string(c"oci_root_dir", OPT_ROOT),
//!     param::Spec::flag(c"verbose", OPT_VERBOSE),
//!     param::Spec::END,
//! ]);
//! // in `impl FileSystem`: const PARAMETERS: param::Parameters = PARAMS.parameters();
//! ```

use crate::{bindings, error::Result, prelude::*};
use core::ptr;

/// The kind of value a parameter takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `name` or `noname` if negatable: [`Value::Flag`].
    Flag,
    /// `name=string`: [`Value::String`].
    String,
    /// `name=number` (decimal, `0x` hex or `0` octal): [`Value::U32`].
    U32,
    /// `name=constant` from a [`Constant`] table: [`Value::Enum`].
    Enum,
}

/// A parsed parameter value, borrowed from the `struct fs_parameter` for the call.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    /// A flag; `false` if given as `noname`.
    Flag(bool),
    /// A string.
    String(&'a CStr),
    /// An unsigned number.
    U32(u32),
    /// The value of the matched constant.
    Enum(u32),
}

/// One constant of an enumeration parameter (`struct constant_table`).
#[repr(transparent)]
pub struct Constant(bindings::constant_table);

// SAFETY: A `Constant` only holds a pointer to a static string; it is never mutated.
unsafe impl Sync for Constant {}

impl Constant {
    /// A constant named `name` with value `value`.
    pub const fn new(name: &'static CStr, value: i32) -> Self {
        Self(bindings::constant_table {
            name: crate::str::as_char_ptr_in_const_context(name),
            value,
        })
    }

    /// The terminator of a constant table.
    pub const END: Self = Self(bindings::constant_table {
        name: ptr::null(),
        value: 0,
    });
}

/// `fs_param_neg_with_no` from `include/linux/fs_parser.h`: `noname` negates a flag.
const FS_PARAM_NEG_WITH_NO: u16 = 0x0002;

/// The description of one parameter (`struct fs_parameter_spec`) and its [`Kind`].
pub struct Spec {
    raw: bindings::fs_parameter_spec,
    kind: Kind,
}

impl Spec {
    const fn new(
        name: &'static CStr,
        ty: bindings::fs_param_type,
        opt: u8,
        flags: u16,
        data: *const core::ffi::c_void,
        kind: Kind,
    ) -> Self {
        Self {
            raw: bindings::fs_parameter_spec {
                name: crate::str::as_char_ptr_in_const_context(name),
                type_: ty,
                opt,
                flags,
                data,
            },
            kind,
        }
    }

    /// A flag (C `fsparam_flag()`).
    pub const fn flag(name: &'static CStr, opt: u8) -> Self {
        Self::new(name, None, opt, 0, ptr::null(), Kind::Flag)
    }

    /// A flag that can be negated as `noname` (C `fsparam_flag_no()`).
    pub const fn flag_no(name: &'static CStr, opt: u8) -> Self {
        Self::new(
            name,
            None,
            opt,
            FS_PARAM_NEG_WITH_NO,
            ptr::null(),
            Kind::Flag,
        )
    }

    /// A string (C `fsparam_string()`).
    pub const fn string(name: &'static CStr, opt: u8) -> Self {
        Self::new(
            name,
            Some(bindings::fs_param_is_string),
            opt,
            0,
            ptr::null(),
            Kind::String,
        )
    }

    /// An unsigned 32-bit number (C `fsparam_u32()`).
    pub const fn u32(name: &'static CStr, opt: u8) -> Self {
        Self::new(
            name,
            Some(bindings::fs_param_is_u32),
            opt,
            0,
            ptr::null(),
            Kind::U32,
        )
    }

    /// One of the constants of `table`, which must end with [`Constant::END`]
    /// (C `fsparam_enum()`).
    pub const fn enumeration(name: &'static CStr, opt: u8, table: &'static [Constant]) -> Self {
        Self::new(
            name,
            Some(bindings::fs_param_is_enum),
            opt,
            0,
            table.as_ptr().cast(),
            Kind::Enum,
        )
    }

    /// The terminator of a parameter table.
    pub const END: Self = Self {
        raw: bindings::fs_parameter_spec {
            name: ptr::null(),
            type_: None,
            opt: 0,
            flags: 0,
            data: ptr::null(),
        },
        kind: Kind::Flag,
    };
}

/// A table of `N` parameter descriptions, the last of which is [`Spec::END`].
///
/// # Invariants
///
/// `specs` is terminated by an entry with a NULL name, as `fs_parse()` requires, and
/// `kinds[i]` is the kind of `specs[i]`.
pub struct Table<const N: usize> {
    specs: [bindings::fs_parameter_spec; N],
    kinds: [Kind; N],
}

// SAFETY: The table is immutable and only points to static strings and constant tables.
unsafe impl<const N: usize> Sync for Table<N> {}

impl<const N: usize> Table<N> {
    /// Builds a table. Evaluated at compile time for a `static`; a table whose last entry is
    /// not [`Spec::END`] fails to compile.
    pub const fn new(specs: [Spec; N]) -> Self {
        assert!(N > 0 && specs[N - 1].raw.name.is_null());
        let mut raw = [Spec::END.raw; N];
        let mut kinds = [Kind::Flag; N];
        let mut i = 0;
        while i < N {
            raw[i] = bindings::fs_parameter_spec { ..specs[i].raw };
            kinds[i] = specs[i].kind;
            i += 1;
        }
        // INVARIANT: Checked above: terminated; kinds copied index by index.
        Self { specs: raw, kinds }
    }

    /// Returns the description to use as [`FileSystem::PARAMETERS`](super::fs_context::FileSystem).
    pub const fn parameters(&'static self) -> Parameters {
        Parameters {
            specs: &self.specs,
            kinds: &self.kinds,
        }
    }
}

/// The parameters of a filesystem: a view of a static [`Table`].
///
/// # Invariants
///
/// `specs` is empty or NULL-name terminated; `kinds` has the same length.
#[derive(Clone, Copy)]
pub struct Parameters {
    specs: &'static [bindings::fs_parameter_spec],
    kinds: &'static [Kind],
}

impl Parameters {
    /// No parameters.
    pub const EMPTY: Self = Self {
        specs: &[],
        kinds: &[],
    };

    pub(crate) const fn as_raw(&self) -> *const bindings::fs_parameter_spec {
        if self.specs.is_empty() {
            ptr::null()
        } else {
            self.specs.as_ptr()
        }
    }

    /// Parses `param` (C `fs_parse()`), returning its option number and typed value.
    ///
    /// Returns `ENOPARAM` for an unknown parameter, so that the VFS handles `source` and reports
    /// the rest; type errors are logged to `log` by `fs_parse()`.
    ///
    /// # Safety
    ///
    /// `log` and `param` must be valid for `'a`.
    pub(crate) unsafe fn parse<'a>(
        &self,
        log: *mut bindings::p_log,
        param: *mut bindings::fs_parameter,
    ) -> Result<(u8, Value<'a>)> {
        if self.specs.is_empty() {
            return Err(ENOPARAM);
        }
        // SAFETY: All-zero is a valid `fs_parse_result`.
        let mut result: bindings::fs_parse_result = unsafe { core::mem::zeroed() };
        // SAFETY: `log` and `param` are valid (safety requirement); `specs` is a terminated table
        // (type invariant); `result` is valid for writes.
        let opt = unsafe { bindings::__fs_parse(log, self.specs.as_ptr(), param, &mut result) };
        let opt = u8::try_from(opt).map_err(|_| Error::from_errno(opt))?;
        let i = self
            .specs
            .iter()
            .position(|s| !s.name.is_null() && s.opt == opt)
            .ok_or(EINVAL)?;
        let value = match self.kinds.get(i).ok_or(EINVAL)? {
            Kind::Flag => Value::Flag(!result.negated),
            Kind::String => {
                // SAFETY: `fs_param_is_string` accepted the parameter, so it is of type
                // `fs_value_is_string` and `string` is a NUL-terminated string owned by `param`,
                // valid for `'a`.
                Value::String(unsafe { CStr::from_char_ptr((*param).__bindgen_anon_1.string) })
            }
            // SAFETY: `fs_param_is_u32`/`fs_param_is_enum` stored the value in `uint_32`.
            Kind::U32 => Value::U32(unsafe { result.__bindgen_anon_1.uint_32 }),
            // SAFETY: As above.
            Kind::Enum => Value::Enum(unsafe { result.__bindgen_anon_1.uint_32 }),
        };
        Ok((opt, value))
    }
}

#[macros::kunit_tests(rust_fs_param)]
mod tests {
    use super::*;

    static TABLE: Table<4> = Table::new([
        Spec::string(c"dir", 0),
        Spec::flag_no(c"verbose", 1),
        Spec::u32(c"size", 2),
        Spec::END,
    ]);

    #[test]
    fn table_layout() {
        let p = TABLE.parameters();
        assert_eq!(p.specs.len(), 4);
        assert!(p.specs[3].name.is_null());
        assert_eq!(p.kinds[..3], [Kind::String, Kind::Flag, Kind::U32]);
        assert_eq!(p.specs[1].flags, FS_PARAM_NEG_WITH_NO);
        assert!(p.specs[1].type_.is_none());
        assert!(p.specs[2].type_.is_some());
        assert!(Parameters::EMPTY.as_raw().is_null());
    }
}
