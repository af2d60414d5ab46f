// SPDX-License-Identifier: GPL-2.0

//! Extended attributes, served from the image's metadata in every namespace it stores.

use crate::{format::tables::XATTR_NAME_MAX, PuzzleFs};
use kernel::{
    fs::{
        dentry::DEntry,
        inode::INode,
        xattr::{self, Handler, Handlers, ListBuffer, ValueBuffer, XattrHandler},
    },
    prelude::*,
};

/// Looks up the full name `prefix` + `name` of `inode`.
fn get(
    inode: &INode<PuzzleFs>,
    prefix: &CStr,
    name: &CStr,
    value: &mut ValueBuffer<'_>,
) -> Result<usize> {
    let info = inode.super_block().data();
    let (prefix, name) = (prefix.to_bytes(), name.to_bytes());
    let mut full = [0u8; XATTR_NAME_MAX];
    let len = prefix.len().checked_add(name.len()).ok_or(ERANGE)?;
    let dst = full.get_mut(..len).ok_or(ERANGE)?;
    let (p, n) = dst.split_at_mut(prefix.len());
    p.copy_from_slice(prefix);
    n.copy_from_slice(name);
    let t = &info.tables;
    let node = t.inode(inode.data().index).ok_or(EUCLEAN)?;
    match t.xattr_get(node, dst) {
        Some(v) => value.set(v),
        None => Err(ENODATA),
    }
}

macro_rules! handler {
    ($ty:ident, $prefix:literal $(, list = $list:path)?) => {
        struct $ty;
        #[vtable]
        impl XattrHandler for $ty {
            type FileSystem = PuzzleFs;
            const PREFIX: &'static CStr = $prefix;
            fn get(
                inode: &INode<PuzzleFs>,
                name: &CStr,
                value: &mut ValueBuffer<'_>,
            ) -> Result<usize> {
                get(inode, Self::PREFIX, name, value)
            }
            $(
                fn list(_dentry: &DEntry<PuzzleFs>) -> bool {
                    $list()
                }
            )?
        }
    };
}

handler!(UserXattr, c"user.");
// Like other filesystems, list trusted.* names only to those who may read them.
handler!(TrustedXattr, c"trusted.", list = xattr::trusted_list);
handler!(SecurityXattr, c"security.");

static USER: Handler<PuzzleFs> = Handler::new::<UserXattr>();
static TRUSTED: Handler<PuzzleFs> = Handler::new::<TrustedXattr>();
static SECURITY: Handler<PuzzleFs> = Handler::new::<SecurityXattr>();

/// The NULL-terminated handler table.
static TABLE: [Option<&Handler<PuzzleFs>>; 4] =
    [Some(&USER), Some(&TRUSTED), Some(&SECURITY), None];

/// The handlers installed on every PuzzleFS superblock.
pub(crate) static HANDLERS: Handlers<PuzzleFs> = Handlers::new(&TABLE);

/// Lists the xattr names of `inode` (listxattr), sorted: those that a handler serves and may
/// list to the caller.
pub(crate) fn list(
    dentry: &DEntry<PuzzleFs>,
    inode: &INode<PuzzleFs>,
    list: &mut ListBuffer<'_>,
) -> Result {
    let t = &inode.super_block().data().tables;
    let node = t.inode(inode.data().index).ok_or(EUCLEAN)?;
    // Whether each handler (in `HANDLERS` order) may list to this caller, asked once per call,
    // not per name: `capable()` is audited.
    let mut allowed = [None::<bool>; TABLE.len()];
    for x in t.xattrs(node) {
        let name = t.xattr_name(x);
        let Some((h, can)) = HANDLERS
            .iter()
            .zip(allowed.iter_mut())
            .find(|(h, _)| name.starts_with(h.prefix()))
        else {
            continue;
        };
        if *can.get_or_insert_with(|| h.can_list(dentry)) {
            list.push(b"", name)?;
        }
    }
    Ok(())
}
