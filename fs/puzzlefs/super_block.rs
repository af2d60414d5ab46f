// SPDX-License-Identifier: GPL-2.0

//! Mounting: options, `fill_super`, statfs and `show_options`.
//!
//! At mount time the driver resolves the image directory, reads and verifies the index (for
//! `tag=`), the image manifest, the rootfs and (for the older image generation) the inode vector
//! blobs, compiles them into the image's tables ([`crate::format::compile`]) and frees them.
//! From then on every operation is served from the tables and the chunk blobs.

use crate::{
    blob::{BlobError, BlobStore, Buffer, Verity},
    decompress,
    format::{
        self,
        compile::{self, Limits, Source},
        oci, rootfs,
        tables::{NAME_MAX, ROOT_INDEX},
        Digest, Generation,
    },
    inode,
    internal::{MountEnv, Tables},
    xattr, PuzzleFs,
};
use kernel::{
    alloc::KVec,
    fs::{
        fs_context::{FileSystem, FsContext},
        inode::INode,
        mount::ReadCache,
        param,
        ratelimit::RateLimit,
        sb::{self, NewSuperBlock, SuperBlock, SuperOperations},
    },
    prelude::*,
    seq_file::SeqFile,
    str::CString,
    sync::aref::ARef,
    time::{Instant, Monotonic},
};

/// `f_type` of statfs: "pzlf" in ASCII.
pub(crate) const PUZZLEFS_MAGIC: u64 = 0x7a7a6c70;

/// Block size reported to statfs and used for `st_blksize`.
const BLOCK_SIZE_BITS: u8 = 12;

/// The fs-verity policy when `verity=` is not given: check the digests the image records for
/// every blob whose backing file has fs-verity (see `Documentation/filesystems/puzzlefs.rst`).
const DEFAULT_VERITY: Verity = Verity::On;

/// The readahead window of a mount: the most the VFS asks [`crate::data`] to read at once on a
/// sequential read. Larger than the default 128 KiB so that a sequential read of a large file
/// asks for several chunks at once, and their backing reads run in parallel (measured: a cold
/// read of 64 MiB files went from 1.97 to 1.74 times EROFS's; random reads are not affected,
/// their windows are the size of the request).
const READAHEAD_BYTES: usize = 1 << 20;

/// How chunk blobs are read when `blob_cache=` is not given: through the backing page cache,
/// which keeps them, as EROFS's file-backed mounts keep their image's pages. Measured with
/// `run bench` (TCG), releasing the blob pages after each read instead (`drop`) leaves 1.05 to
/// 1.34 times the extracted tree in the page cache after a cold full read rather than 1.8 to
/// 2.0, and makes that read 7 to 11% slower; a chunk that another file or image needs after a
/// release is read from disk again (see the Documentation).
const DEFAULT_BLOB_CACHE: ReadCache = ReadCache::Keep;

/// Upper bound of the `metadata_max_mb` module parameter: keeps every allocation the limit
/// allows well below what `kvmalloc()` refuses (`INT_MAX`).
const METADATA_MAX_MB_CAP: u32 = 1024;

/// OCI JSON documents may take this fraction of the metadata limit. Image manifests list every
/// chunk blob (about 250 bytes each: 64 MiB is about a quarter million chunks, images of
/// about 16 GiB), and the JSON reader, unlike the compiler, does not yield while it works.
const JSON_SHARE: usize = 4;

/// The frame indexes of compressed chunks, loaded as chunks are read, may take this fraction of
/// the metadata limit (about 1.5 KiB per upstream chunk, 24 KiB at most per chunk).
const INDEX_SHARE: usize = 4;

const OPT_OCI_ROOT_DIR: u8 = 0;
const OPT_IMAGE_MANIFEST: u8 = 1;
const OPT_TAG: u8 = 2;
const OPT_VERITY: u8 = 3;
const OPT_BLOB_CACHE: u8 = 4;

const VERITY_OFF: i32 = 0;
const VERITY_ON: i32 = 1;
const VERITY_REQUIRE: i32 = 2;

static VERITY_VALUES: [param::Constant; 4] = [
    param::Constant::new(c"off", VERITY_OFF),
    param::Constant::new(c"on", VERITY_ON),
    param::Constant::new(c"require", VERITY_REQUIRE),
    param::Constant::END,
];

const BLOB_CACHE_DROP: i32 = 0;
const BLOB_CACHE_KEEP: i32 = 1;

static BLOB_CACHE_VALUES: [param::Constant; 3] = [
    param::Constant::new(c"drop", BLOB_CACHE_DROP),
    param::Constant::new(c"keep", BLOB_CACHE_KEEP),
    param::Constant::END,
];

static PARAMETERS: param::Table<6> = param::Table::new([
    param::Spec::string(c"oci_root_dir", OPT_OCI_ROOT_DIR),
    param::Spec::string(c"image_manifest", OPT_IMAGE_MANIFEST),
    param::Spec::string(c"tag", OPT_TAG),
    param::Spec::enumeration(c"verity", OPT_VERITY, &VERITY_VALUES),
    param::Spec::enumeration(c"blob_cache", OPT_BLOB_CACHE, &BLOB_CACHE_VALUES),
    param::Spec::END,
]);

/// The parsed mount options.
#[derive(Default)]
pub(crate) struct Options {
    oci_root_dir: Option<CString>,
    image_manifest: Option<Digest>,
    tag: Option<CString>,
    verity: Option<Verity>,
    blob_cache: Option<ReadCache>,
}

/// What a mount keeps: the compiled image and its blobs.
pub(crate) struct SbInfo {
    pub(crate) tables: Tables,
    pub(crate) blobs: BlobStore,
    /// Decompression workspaces for compressed chunks.
    pub(crate) decompressors: Pin<KBox<decompress::Pool>>,
    oci_root_dir: CString,
    image_manifest: Digest,
    tag: Option<CString>,
    verity: Verity,
    reports: RateLimit,
}

impl SbInfo {
    /// Logs (rate-limited) that the image is corrupt, and returns `EUCLEAN`.
    pub(crate) fn corrupt(&self, what: &dyn core::fmt::Display) -> Error {
        self.report(format_args!("corrupt metadata: {what}"));
        EUCLEAN
    }

    /// Logs one message about this image, rate-limited per mount.
    pub(crate) fn report(&self, args: core::fmt::Arguments<'_>) {
        if self.reports.allow() {
            pr_err!(
                "image {}: {}\n",
                self.oci_root_dir.to_str().unwrap_or("?"),
                args
            );
        }
    }
}

/// The limit on the metadata a mount may read and compile, from the module parameter.
fn metadata_limit() -> usize {
    let mb = crate::module_parameters::metadata_max_mb
        .value()
        .clamp(1, METADATA_MAX_MB_CAP);
    (mb as usize) << 20
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
            fc.errorf(fmt!(
                "{what} blob {hex} is too large ({size} bytes; see the metadata_max_mb parameter)"
            ));
            EFBIG
        }
        BlobError::Mismatch => {
            fc.errorf(fmt!("{what} blob {hex}: sha256 does not match its name"));
            EUCLEAN
        }
        e @ (BlobError::VerityMismatch | BlobError::NoVerity | BlobError::NoRecordedVerity) => {
            fc.errorf(format_args!("{what} blob {hex}: {e}"));
            EIO
        }
    }
}

/// Turns a format error at mount time into an errno and a message for `mount`: `EINVAL` for an
/// image of a version this driver does not support, `EFBIG` for metadata over the limit,
/// `ENOMEM` and `EINTR` as they are, `EUCLEAN` for corrupt metadata.
fn format_error(fc: &FsContext, what: &str, e: format::Error) -> Error {
    // `format::Error` implements `core::fmt::Display`, which `fmt!` does not take.
    match e {
        format::Error::UnsupportedManifestVersion(_)
        | format::Error::UnsupportedSchemaVersion(_) => {
            fc.errorf(format_args!("unsupported {what}: {e}"));
            EINVAL
        }
        format::Error::TooLarge => {
            fc.errorf(format_args!(
                "{what}: {e} (see the metadata_max_mb parameter)"
            ));
            EFBIG
        }
        format::Error::OutOfMemory => {
            fc.errorf(format_args!("{what}: {e}"));
            ENOMEM
        }
        format::Error::Interrupted => EINTR,
        _ => {
            fc.errorf(format_args!("corrupt {what}: {e}"));
            EUCLEAN
        }
    }
}

/// Microseconds since `t`.
fn micros(t: &Instant<Monotonic>) -> i64 {
    t.elapsed().as_nanos() / 1000
}

/// How long the mount's phases took, for the mount message.
#[derive(Default)]
struct Timing {
    read_us: i64,
    compile_us: i64,
}

/// `verity=require`: refuses an image that records no fs-verity digest for one of its chunk
/// blobs, at mount rather than at the first read of that chunk.
fn require_chunk_verity(fc: &FsContext, tables: &Tables) -> Result {
    for i in 0..tables.blob_count() {
        if i % 1024 == 0 {
            MountEnv::yield_now().map_err(|_| EINTR)?;
        }
        let index = u32::try_from(i).map_err(|_| EINVAL)?;
        let Some(b) = tables.blob(index) else {
            break;
        };
        if b.verity.is_none() {
            let mut hex = [0u8; format::DIGEST_HEX_LEN];
            fc.errorf(fmt!(
                "verity=require, but the image records no fs-verity digest for chunk blob {}",
                format::digest_to_hex(&b.digest, &mut hex)
            ));
            return Err(EIO);
        }
    }
    Ok(())
}

/// Reads the metadata of the image named by `digest` and compiles it.
fn load(fc: &FsContext, blobs: &BlobStore, digest: &Digest, timing: &mut Timing) -> Result<Tables> {
    let limit = metadata_limit();
    let t0 = Instant::<Monotonic>::now();
    // The blob the mount names is authenticated by its sha256 (the mounted digest): the image
    // records no fs-verity digest for it.
    let first = blobs
        .read_file_verified(digest, limit)
        .map_err(|e| blob_error(fc, "image manifest", digest, e))?;
    // Generation B names an OCI image manifest (JSON), Generation A the rootfs directly.
    let rootfs = if oci::blob_kind(first.bytes()) == oci::BlobKind::OciManifest {
        if first.bytes().len() > limit / JSON_SHARE {
            fc.errorf(fmt!(
                "image manifest too large ({} bytes; see the metadata_max_mb parameter)",
                first.bytes().len()
            ));
            return Err(EFBIG);
        }
        let layer = oci::ImageManifest::parse_polled(first.bytes(), &MountEnv)
            .and_then(|m| m.rootfs_layer())
            .map_err(|e| format_error(fc, "image manifest", e))?;
        // Only the rootfs descriptor is kept; the manifest's memory goes now.
        drop(first);
        if layer.verity.is_none() && blobs.verity() == Verity::Require {
            fc.errorf(fmt!(
                "verity=require, but the image manifest records no fs-verity digest for the rootfs"
            ));
            return Err(EIO);
        }
        let rootfs = blobs
            .read_verified(&layer.digest, limit, layer.verity.as_ref())
            .map_err(|e| blob_error(fc, "rootfs", &layer.digest, e))?;
        if u64::try_from(rootfs.bytes().len()).ok() != Some(layer.size) {
            fc.errorf(fmt!(
                "corrupt image manifest: the rootfs is {} bytes, its descriptor says {}",
                rootfs.bytes().len(),
                layer.size
            ));
            return Err(EUCLEAN);
        }
        rootfs
    } else {
        first
    };
    let parsed =
        rootfs::Rootfs::parse(rootfs.bytes()).map_err(|e| format_error(fc, "rootfs", e))?;

    // Generation A: the layer blobs, each digest read once (a repeated layer adds nothing),
    // with the fs-verity digests the rootfs records for them.
    let mut layer_bufs: KVec<Buffer> = KVec::new();
    let mut layer_digests: KVec<Digest> = KVec::new();
    if parsed.generation() == Generation::A {
        parsed
            .for_each_layer_blob(|d| {
                if !layer_digests.contains(&d) {
                    layer_digests
                        .push(d, GFP_KERNEL)
                        .map_err(|_| format::Error::OutOfMemory)?;
                }
                Ok(())
            })
            .map_err(|e| format_error(fc, "rootfs", e))?;
        let mut verity: KVec<Option<Digest>> = KVec::new();
        verity.resize(layer_digests.len(), None, GFP_KERNEL)?;
        if blobs.verity() != Verity::Off {
            parsed
                .verity_for(&layer_digests, &mut verity, &mut MountEnv)
                .map_err(|e| format_error(fc, "rootfs", e))?;
        }
        // The metadata limit bounds all the blobs held at once, not each.
        let mut held = rootfs.bytes().len();
        for (d, v) in layer_digests.iter().zip(verity.iter()) {
            let buf = blobs
                .read_verified(d, limit.saturating_sub(held), v.as_ref())
                .map_err(|e| blob_error(fc, "metadata", d, e))?;
            held = held.saturating_add(buf.bytes().len());
            layer_bufs.push(buf, GFP_KERNEL)?;
        }
    }
    let mut layers: KVec<&[u8]> = KVec::with_capacity(layer_bufs.len(), GFP_KERNEL)?;
    for b in layer_bufs.iter() {
        layers.push(b.bytes(), GFP_KERNEL)?;
    }
    timing.read_us = micros(&t0);

    let t1 = Instant::<Monotonic>::now();
    let limits = Limits {
        max_table_bytes: limit,
        max_file_size: u64::try_from(sb::MAX_LFS_FILESIZE).unwrap_or(0),
    };
    let tables = compile::compile(
        &Source {
            rootfs: rootfs.bytes(),
            layers: &layers,
        },
        limits,
        &mut MountEnv,
    )
    .map_err(|e| format_error(fc, "metadata", e))?;
    timing.compile_us = micros(&t1);
    Ok(tables)
}

impl SbInfo {
    fn new(
        fc: &FsContext,
        opts: &mut Options,
        sb: &mut NewSuperBlock<'_, PuzzleFs>,
        timing: &mut Timing,
    ) -> Result<Self> {
        let root = opts
            .oci_root_dir
            .take()
            .ok_or_else(|| fc.invalf(fmt!("oci_root_dir= is required")))?;
        let verity = opts.verity.unwrap_or(DEFAULT_VERITY);
        let cache = opts.blob_cache.unwrap_or(DEFAULT_BLOB_CACHE);
        let mut blobs = BlobStore::new(&root, fc.cred(), verity, cache).inspect_err(|e| {
            fc.errorf(fmt!(
                "cannot open oci_root_dir {}: error {}",
                root.to_str().unwrap_or("?"),
                e.to_errno()
            ));
        })?;
        // The blobs are read through another filesystem: count it in the stacking depth, and
        // refuse before reading anything if that is too deep.
        sb.set_stack_depth(blobs.dir().stack_depth().saturating_add(1))
            .inspect_err(|_| fc.errorf(fmt!("maximum filesystem stacking depth exceeded")))?;

        // The blob that names the image: by digest, or by tag through index.json.
        let digest = match (opts.image_manifest, opts.tag.as_ref()) {
            (Some(d), None) => d,
            (None, Some(tag)) => {
                let index = blobs
                    .read_file(c"index.json", metadata_limit() / JSON_SHARE, None)
                    .map_err(|e| match e {
                        BlobError::Io(e) => {
                            fc.errorf(fmt!("cannot read index.json: error {}", e.to_errno()));
                            e
                        }
                        _ => {
                            fc.errorf(fmt!("index.json is too large"));
                            EFBIG
                        }
                    })?;
                let index = oci::Index::parse_polled(index.bytes(), &MountEnv)
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

        let tables = load(fc, &blobs, &digest, timing)?;
        if verity == Verity::Require {
            require_chunk_verity(fc, &tables)?;
        }
        blobs.set_chunk_blobs(
            tables.blob_count(),
            crate::module_parameters::max_open_blobs.value() as usize,
            metadata_limit() / INDEX_SHARE,
        )?;
        let decompressors =
            decompress::Pool::new(decompress::pool_size(tables.stats().compressed_extents))?;
        Ok(SbInfo {
            tables,
            blobs,
            decompressors,
            oci_root_dir: root,
            image_manifest: digest,
            tag: opts.tag.take(),
            verity,
            reports: RateLimit::default_limit(),
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
        if opt == OPT_BLOB_CACHE {
            let param::Value::Enum(v) = value else {
                return Err(EINVAL);
            };
            opts.blob_cache = Some(match i32::try_from(v) {
                Ok(BLOB_CACHE_DROP) => ReadCache::DontCache,
                Ok(BLOB_CACHE_KEEP) => ReadCache::Keep,
                _ => return Err(EINVAL),
            });
            return Ok(());
        }
        if opt == OPT_VERITY {
            let param::Value::Enum(v) = value else {
                return Err(EINVAL);
            };
            opts.verity = Some(match i32::try_from(v) {
                Ok(VERITY_OFF) => Verity::Off,
                Ok(VERITY_ON) => Verity::On,
                Ok(VERITY_REQUIRE) => Verity::Require,
                _ => return Err(EINVAL),
            });
            return Ok(());
        }
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
        let t0 = Instant::<Monotonic>::now();
        let mut timing = Timing::default();
        let info = SbInfo::new(fc, opts, sb, &mut timing)?;
        sb.set_magic(PUZZLEFS_MAGIC)
            .set_maxbytes(sb::MAX_LFS_FILESIZE)
            .set_time_gran(1)
            .set_xattr_handlers(&xattr::HANDLERS);
        sb.set_blocksize_bits(BLOCK_SIZE_BITS)?;
        // A readahead window of our own: without one, every read is a single-folio read_folio.
        sb.setup_bdi()?.set_readahead(READAHEAD_BYTES)?;
        let mut hex = [0u8; format::DIGEST_HEX_LEN];
        let s = info.tables.stats();
        pr_info!(
            "opened image [{}]:[{}]: {} layer(s), {} inodes, {} KiB of metadata in {} KiB of tables; {} us (read {} us, of which hashing {} us; compile {} us)\n",
            info.oci_root_dir.to_str().unwrap_or("?"),
            format::digest_to_hex(&info.image_manifest, &mut hex),
            s.layers,
            info.tables.inode_count(),
            s.metadata_bytes / 1024,
            s.table_bytes.div_ceil(1024),
            micros(&t0),
            timing.read_us,
            info.blobs.hash_us(),
            timing.compile_us
        );
        Ok(info)
    }

    fn init_root(sb: &SuperBlock<Self>) -> Result<ARef<INode<Self>>> {
        inode::iget(sb, ROOT_INDEX)
    }
}

#[vtable]
impl SuperOperations for PuzzleFs {
    type FileSystem = Self;

    fn statfs(sb: &SuperBlock<Self>) -> Result<sb::Stat> {
        let s = sb.data().tables.stats();
        let bsize = 1u64 << BLOCK_SIZE_BITS;
        Ok(sb::Stat {
            bsize: i64::from(1u32 << BLOCK_SIZE_BITS),
            blocks: s.data_bytes.div_ceil(bsize),
            bfree: 0,
            bavail: 0,
            files: s.inodes,
            ffree: 0,
            namelen: NAME_MAX as i64,
        })
    }

    fn show_options(sb: &SuperBlock<Self>, seq: &SeqFile) -> Result {
        let info = sb.data();
        sb::show_option(seq, c"oci_root_dir", Some(&info.oci_root_dir));
        let verity = match info.verity {
            Verity::Off => c"off",
            Verity::On => c"on",
            Verity::Require => c"require",
        };
        sb::show_option(seq, c"verity", Some(verity));
        let cache = match info.blobs.cache() {
            ReadCache::DontCache => c"drop",
            ReadCache::Keep => c"keep",
        };
        sb::show_option(seq, c"blob_cache", Some(cache));
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
