// SPDX-License-Identifier: GPL-2.0

//! Extended attributes, served from the image's metadata in every namespace it stores.

use crate::PuzzleFs;
use core::ops::ControlFlow;
use kernel::{
    fs::{
        inode::INode,
        xattr::{Handler, Handlers, ListBuffer, ValueBuffer, XattrHandler},
    },
    prelude::*,
};

/// Longest full xattr name (prefix included), as the VFS allows (`XATTR_NAME_MAX`).
const XATTR_NAME_MAX: usize = 255;

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
    match info
        .image
        .xattr_get(&inode.data().inode, dst)
        .map_err(|e| info.corrupt(&e))?
    {
        Some(v) => value.set(v),
        None => Err(ENODATA),
    }
}

macro_rules! handler {
    ($ty:ident, $prefix:literal) => {
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
        }
    };
}

handler!(UserXattr, c"user.");
handler!(TrustedXattr, c"trusted.");
handler!(SecurityXattr, c"security.");

static USER: Handler = Handler::new::<UserXattr>();
static TRUSTED: Handler = Handler::new::<TrustedXattr>();
static SECURITY: Handler = Handler::new::<SecurityXattr>();

/// The namespaces served.
const NAMESPACES: [&[u8]; 3] = [b"user.", b"trusted.", b"security."];

/// The handlers installed on every PuzzleFS superblock.
pub(crate) static HANDLERS: Handlers =
    Handlers::new(&[Some(&USER), Some(&TRUSTED), Some(&SECURITY), None]);

/// Lists the xattr names of `inode` (listxattr) in stored order, those of the namespaces served.
pub(crate) fn list(inode: &INode<PuzzleFs>, list: &mut ListBuffer<'_>) -> Result {
    let info = inode.super_block().data();
    let mut err = Ok(());
    let _ = info
        .image
        .for_each_xattr(&inode.data().inode, |name, _| {
            // Only names that a handler can get are listed.
            if !NAMESPACES.iter().any(|ns| name.starts_with(ns)) {
                return ControlFlow::Continue(());
            }
            match list.push(b"", name) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    err = Err(e);
                    ControlFlow::Break(())
                }
            }
        })
        .map_err(|e| info.corrupt(&e))?;
    err
}
