// SPDX-License-Identifier: GPL-2.0

//! Mounting: options, `fill_super`, statfs and `show_options`.
//!
//! At mount time the driver resolves the image directory, reads and verifies the index (for
//! `tag=`), the image manifest, the rootfs and (for the older image generation) the inode vector
//! blobs, keeps them in kernel memory for the life of the mount, and computes once what the
//! format does not store: the link count of every inode and the totals for statfs.

use crate::{
    blob::{self, BlobError, BlobStore, Buffer},
    format::{
        self,
        image::{Image, LinkCount, Totals, ROOT_INO},
        oci, rootfs, Digest, Generation,
    },
    inode, xattr, PuzzleFs,
};
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::{
    alloc::KVVec,
    fs::{
        fs_context::{FileSystem, FsContext},
        inode::INode,
        param,
        sb::{self, NewSuperBlock, SuperBlock, SuperOperations},
    },
    prelude::*,
    seq_file::SeqFile,
    str::CString,
    sync::aref::ARef,
};

/// `f_type` of statfs: "pzlf" in ASCII.
pub(crate) const PUZZLEFS_MAGIC: u64 = 0x7a7a6c70;

/// Block size reported to statfs and used for `st_blksize`.
const BLOCK_SIZE_BITS: u8 = 12;

/// Most inodes (summed over layers) an image may have: bounds the link count table.
const MAX_INODES: usize = 1 << 24;

/// Most messages one mount logs about a corrupt image; the rest are suppressed.
const MAX_REPORTS: u32 = 16;

const OPT_OCI_ROOT_DIR: u8 = 0;
const OPT_IMAGE_MANIFEST: u8 = 1;
const OPT_TAG: u8 = 2;

static PARAMETERS: param::Table<4> = param::Table::new([
    param::Spec::string(c"oci_root_dir", OPT_OCI_ROOT_DIR),
    param::Spec::string(c"image_manifest", OPT_IMAGE_MANIFEST),
    param::Spec::string(c"tag", OPT_TAG),
    param::Spec::END,
]);

/// The parsed mount options.
#[derive(Default)]
pub(crate) struct Options {
    oci_root_dir: Option<CString>,
    image_manifest: Option<Digest>,
    tag: Option<CString>,
}

/// What a mount keeps: the verified metadata and the view over it, link counts, the blob store.
///
/// # Invariants
///
/// `image` borrows from the heap allocations of `buffers`, which are neither changed nor freed
/// while `image` exists: `buffers` is only written in [`SbInfo::new`], before `image` is built,
/// and `image` is declared (so dropped) first.
pub(crate) struct SbInfo {
    pub(crate) image: KBox<Image<'static>>,
    #[expect(
        dead_code,
        reason = "only kept alive for `image`, which borrows from it"
    )]
    buffers: KVec<Buffer>,
    links: KVVec<LinkCount>,
    totals: Totals,
    pub(crate) blobs: BlobStore,
    oci_root_dir: CString,
    image_manifest: Digest,
    tag: Option<CString>,
    reports: AtomicU32,
}

impl SbInfo {
    /// The link count of `ino`, computed at mount time.
    pub(crate) fn nlink(&self, ino: u64) -> u32 {
        format::image::nlink_of(&self.links, ino).unwrap_or(1)
    }

    /// Logs (a bounded number of times per mount) that the image is corrupt, and returns
    /// `EUCLEAN`.
    pub(crate) fn corrupt(&self, what: &dyn core::fmt::Display) -> Error {
        self.report(format_args!("corrupt metadata: {what}"));
        EUCLEAN
    }

    /// Logs one message about this image, at most [`MAX_REPORTS`] per mount.
    pub(crate) fn report(&self, args: core::fmt::Arguments<'_>) {
        let n = self.reports.fetch_add(1, Ordering::Relaxed);
        if n < MAX_REPORTS {
            pr_err!(
                "image {}: {}\n",
                self.oci_root_dir.to_str().unwrap_or("?"),
                args
            );
        } else if n == MAX_REPORTS {
            pr_err!(
                "image {}: further messages suppressed\n",
                self.oci_root_dir.to_str().unwrap_or("?")
            );
        }
    }
}

/// Turns a blob failure at mount time into an errno and a message for `mount`.
fn blob_error(fc: &FsContext, what: &str, digest: &Digest, e: BlobError) -> Error {
    let mut hex = [0u8; format::DIGEST_HEX_LEN];
    let hex = format::digest_to_hex(digest, &mut hex);
    match e {
        BlobError::Io(e) => {
            fc.errorf(fmt!(
                "cannot read {what} blob {hex}: error {}",
                e.to_errno()
            ));
            e
        }
        BlobError::TooLarge(size) => {
            fc.errorf(fmt!("{what} blob {hex} is too large ({size} bytes)"));
            EUCLEAN
        }
        BlobError::Mismatch => {
            fc.errorf(fmt!("{what} blob {hex}: sha256 does not match its name"));
            EUCLEAN
        }
    }
}

/// Turns a format error at mount time into an errno and a message for `mount`: `EINVAL` for an
/// image of a version this driver does not support, `EUCLEAN` for corrupt metadata.
fn format_error(fc: &FsContext, what: &str, e: format::Error) -> Error {
    // `format::Error` implements `core::fmt::Display`, which `fmt!` does not take.
    match e {
        format::Error::UnsupportedManifestVersion(_)
        | format::Error::UnsupportedSchemaVersion(_) => {
            fc.errorf(format_args!("unsupported {what}: {e}"));
            EINVAL
        }
        _ => {
            fc.errorf(format_args!("corrupt {what}: {e}"));
            EUCLEAN
        }
    }
}

/// Extends the lifetime of a slice of a [`Buffer`] kept in [`SbInfo::buffers`].
///
/// # Safety
///
/// The memory `s` points to must stay valid and unchanged for as long as the result is used.
unsafe fn extend(s: &[u8]) -> &'static [u8] {
    // SAFETY: The caller guarantees that the memory outlives every use of the result.
    unsafe { core::slice::from_raw_parts(s.as_ptr(), s.len()) }
}

impl SbInfo {
    fn new(fc: &FsContext, opts: &mut Options) -> Result<Self> {
        let root = opts
            .oci_root_dir
            .take()
            .ok_or_else(|| fc.invalf(fmt!("oci_root_dir= is required")))?;
        let blobs = BlobStore::new(&root, fc.cred()).inspect_err(|e| {
            fc.errorf(fmt!(
                "cannot open oci_root_dir {}: error {}",
                root.to_str().unwrap_or("?"),
                e.to_errno()
            ));
        })?;

        // The blob that names the image: by digest, or by tag through index.json.
        let digest = match (opts.image_manifest, opts.tag.as_ref()) {
            (Some(d), None) => d,
            (None, Some(tag)) => {
                let index = blobs
                    .read_file(c"index.json", blob::MAX_JSON_BLOB)
                    .map_err(|e| match e {
                        BlobError::Io(e) => {
                            fc.errorf(fmt!("cannot read index.json: error {}", e.to_errno()));
                            e
                        }
                        _ => {
                            fc.errorf(fmt!("index.json is too large"));
                            EUCLEAN
                        }
                    })?;
                let index = oci::Index::parse(index.bytes())
                    .map_err(|e| format_error(fc, "index.json", e))?;
                match index.find_tag(tag.to_bytes()) {
                    Ok(entry) => entry.digest,
                    Err(format::Error::TagNotFound) => {
                        // Like a missing file: the name does not exist.
                        fc.errorf(fmt!(
                            "no image tagged {} in index.json",
                            tag.to_str().unwrap_or("?")
                        ));
                        return Err(ENOENT);
                    }
                    Err(e) => return Err(format_error(fc, "index.json", e)),
                }
            }
            (None, None) => return Err(fc.invalf(fmt!("image_manifest= or tag= is required"))),
            (Some(_), Some(_)) => {
                return Err(fc.invalf(fmt!("image_manifest= and tag= exclude each other")))
            }
        };

        let mut buffers = KVec::new();
        let first = blobs
            .read_verified(&digest, blob::MAX_METADATA_BLOB)
            .map_err(|e| blob_error(fc, "image manifest", &digest, e))?;
        // Generation B names an OCI image manifest (JSON), Generation A the rootfs directly.
        if oci::blob_kind(first.bytes()) == oci::BlobKind::OciManifest {
            let layer = oci::ImageManifest::parse(first.bytes())
                .and_then(|m| m.rootfs_layer())
                .map_err(|e| format_error(fc, "image manifest", e))?;
            let rootfs = blobs
                .read_verified(&layer.digest, blob::MAX_METADATA_BLOB)
                .map_err(|e| blob_error(fc, "rootfs", &layer.digest, e))?;
            buffers.push(rootfs, GFP_KERNEL)?;
        } else {
            buffers.push(first, GFP_KERNEL)?;
        }

        // SAFETY: `buffers[0]` is moved into the returned `SbInfo` with its heap memory unchanged,
        // and from then on the type invariant of `SbInfo` keeps it alive and unchanged.
        let rootfs_bytes = unsafe { extend(buffers.first().ok_or(EINVAL)?.bytes()) };
        let rootfs =
            rootfs::Rootfs::parse(rootfs_bytes).map_err(|e| format_error(fc, "rootfs", e))?;
        // The view is 2 KiB (one slot per possible layer): keep it on the heap, not in the mount
        // path's stack frames, which it overflowed on 16 KiB kernel stacks.
        let image = match rootfs.generation() {
            Generation::B => KBox::new(
                Image::from_rootfs(&rootfs).map_err(|e| format_error(fc, "metadata", e))?,
                GFP_KERNEL,
            )?,
            Generation::A => {
                let mut image = KBox::new(Image::new(), GFP_KERNEL)?;
                for i in 0..rootfs.layer_count() {
                    let d = rootfs
                        .layer_blob(i)
                        .map_err(|e| format_error(fc, "rootfs", e))?;
                    let layer = blobs
                        .read_verified(&d, blob::MAX_METADATA_BLOB)
                        .map_err(|e| blob_error(fc, "metadata", &d, e))?;
                    buffers.push(layer, GFP_KERNEL)?;
                    // SAFETY: As for `rootfs_bytes`: the buffer just pushed stays in `buffers`,
                    // which is moved into the returned `SbInfo` unchanged.
                    let bytes = unsafe { extend(buffers.last().ok_or(EINVAL)?.bytes()) };
                    image
                        .push_layer(bytes)
                        .map_err(|e| format_error(fc, "metadata", e))?;
                }
                image
            }
        };

        // The root must exist and be a directory.
        match image.inode(ROOT_INO) {
            Ok(i) if matches!(i.kind, format::image::InodeKind::Dir { .. }) => {}
            Ok(_) => {
                return Err(format_error(
                    fc,
                    "metadata",
                    format::Error::NotADirectory(ROOT_INO),
                ))
            }
            Err(e) => return Err(format_error(fc, "metadata", e)),
        }

        // Bound the mount-time allocation that the image sizes.
        if image.inode_slots() > MAX_INODES {
            fc.errorf(fmt!("corrupt metadata: more than {MAX_INODES} inodes"));
            return Err(EUCLEAN);
        }
        let mut links = KVVec::from_elem(LinkCount::default(), image.inode_slots(), GFP_KERNEL)?;
        let totals = image
            .count_links(&mut links)
            .map_err(|e| format_error(fc, "metadata", e))?;
        links.truncate(totals.used);

        Ok(SbInfo {
            image,
            buffers,
            links,
            totals,
            blobs,
            oci_root_dir: root,
            image_manifest: digest,
            tag: opts.tag.take(),
            reports: AtomicU32::new(0),
        })
    }
}

impl FileSystem for PuzzleFs {
    type Data = SbInfo;
    type INodeData = inode::InodeInfo;
    type Context = Options;
    type SuperOps = Self;
    const NAME: &'static CStr = c"puzzlefs";
    const PARAMETERS: param::Parameters = PARAMETERS.parameters();

    fn parse_param(fc: &FsContext, opts: &mut Options, opt: u8, value: param::Value<'_>) -> Result {
        let param::Value::String(s) = value else {
            return Err(EINVAL);
        };
        match opt {
            OPT_OCI_ROOT_DIR => {
                if opts.oci_root_dir.is_some() {
                    return Err(fc.invalf(fmt!("oci_root_dir given twice")));
                }
                if s.to_bytes().first() != Some(&b'/') {
                    return Err(fc.invalf(fmt!("oci_root_dir must be an absolute path")));
                }
                opts.oci_root_dir = Some(CString::try_from(s)?);
            }
            OPT_IMAGE_MANIFEST => {
                if opts.image_manifest.is_some() {
                    return Err(fc.invalf(fmt!("image_manifest given twice")));
                }
                let d = format::parse_digest(s.to_bytes()).map_err(|_| {
                    fc.invalf(fmt!(
                        "image_manifest must be 64 hex digits, optionally after sha256:"
                    ))
                })?;
                opts.image_manifest = Some(d);
            }
            OPT_TAG => {
                if opts.tag.is_some() {
                    return Err(fc.invalf(fmt!("tag given twice")));
                }
                opts.tag = Some(CString::try_from(s)?);
            }
            _ => return Err(EINVAL),
        }
        Ok(())
    }

    fn fill_super(
        fc: &FsContext,
        opts: &mut Options,
        sb: &mut NewSuperBlock<'_, Self>,
    ) -> Result<SbInfo> {
        let info = SbInfo::new(fc, opts)?;
        sb.set_magic(PUZZLEFS_MAGIC)
            .set_maxbytes(sb::MAX_LFS_FILESIZE)
            .set_time_gran(1)
            .set_xattr_handlers(&xattr::HANDLERS);
        sb.set_blocksize_bits(BLOCK_SIZE_BITS)?;
        let mut hex = [0u8; format::DIGEST_HEX_LEN];
        pr_info!(
            "opened image [{}]:[{}]: {} layer(s), {} inodes\n",
            info.oci_root_dir.to_str().unwrap_or("?"),
            format::digest_to_hex(&info.image_manifest, &mut hex),
            info.image.layer_count(),
            info.totals.inodes
        );
        Ok(info)
    }

    fn init_root(sb: &SuperBlock<Self>) -> Result<ARef<INode<Self>>> {
        inode::iget(sb, ROOT_INO)
    }
}

#[vtable]
impl SuperOperations for PuzzleFs {
    type FileSystem = Self;

    fn statfs(sb: &SuperBlock<Self>) -> Result<sb::Stat> {
        let info = sb.data();
        let bsize = 1u64 << BLOCK_SIZE_BITS;
        Ok(sb::Stat {
            bsize: i64::from(1u32 << BLOCK_SIZE_BITS),
            blocks: info.totals.data_bytes.div_ceil(bsize),
            bfree: 0,
            bavail: 0,
            files: info.totals.inodes,
            ffree: 0,
            namelen: format::image::NAME_MAX as i64,
        })
    }

    fn show_options(sb: &SuperBlock<Self>, seq: &SeqFile) -> Result {
        let info = sb.data();
        sb::show_option(seq, c"oci_root_dir", Some(&info.oci_root_dir));
        match &info.tag {
            Some(tag) => sb::show_option(seq, c"tag", Some(tag)),
            None => {
                let mut hex = [0u8; format::DIGEST_HEX_LEN + 1];
                let (text, _) = hex.split_at_mut(format::DIGEST_HEX_LEN);
                let text: &mut [u8; format::DIGEST_HEX_LEN] =
                    text.try_into().map_err(|_| EINVAL)?;
                format::digest_to_hex(&info.image_manifest, text);
                let value = CStr::from_bytes_with_nul(&hex).map_err(|_| EINVAL)?;
                sb::show_option(seq, c"image_manifest", Some(value));
            }
        }
        Ok(())
    }
}
