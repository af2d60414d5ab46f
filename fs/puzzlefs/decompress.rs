// SPDX-License-Identifier: GPL-2.0

//! Reading compressed chunks (`puzzlefs build -c`).
//!
//! A compressed chunk blob of the current image generation is a sequence of independent zstd
//! frames and a seek table (see [`crate::format::seekable`]); one of the older generation is a
//! single plain zstd stream of at most 256 KiB, which is decompressed whole into a workspace
//! that keeps it for the next reads of that chunk. Its frame index is loaded from the seek table when the blob is
//! first read compressed ([`crate::blob::BlobFile::seek_index`]) and kept with the open blob. A
//! read of `len` bytes at offset `off` of the chunk decompresses only the frames that cover
//! them: their compressed bytes are read with one backing read into a workspace buffer, and
//! each frame is decompressed straight into the folio when the folio wants all of it and its
//! memory is contiguous, else into the workspace's scratch frame and copied.
//!
//! Nothing here trusts a declared size: a frame is decompressed into a buffer of exactly the
//! size its seek table entry declares (at most [`MAX_FRAME_SIZE`]), so it cannot write more, and
//! it must fill that buffer exactly, or the read fails with `EIO`. Corrupt, truncated or
//! skippable frames, and tables that lie, fail the same way, with one rate-limited message;
//! other files keep reading.
//!
//! Workspaces (a zstd context, an input buffer and a scratch buffer: about 620 KiB) are made at
//! mount time, one per CPU and at most [`MAX_WORKSPACES`], for images that have compressed
//! chunks; a reader that finds none free waits for one. No read allocates.

use crate::{
    blob::{BlobFile, Layout, SeekError, SeekIndex},
    format::seekable::{
        MAX_COMPRESSED_FRAME_SIZE, MAX_FRAME_SIZE, MAX_PLAIN_COMPRESSED_SIZE, MAX_PLAIN_SIZE,
    },
    internal::image_gfp,
    super_block::SbInfo,
};
use kernel::{
    alloc::KVVec,
    fs::folio::LockedFolio,
    new_condvar, new_mutex,
    prelude::*,
    sync::{CondVar, Mutex},
    zstd::DecompressCtx,
};

/// Most decompression workspaces one mount keeps.
pub(crate) const MAX_WORKSPACES: usize = 4;

/// Bytes of compressed input read at once: several frames, a whole plain chunk, at least.
const INPUT_LEN: usize = MAX_PLAIN_COMPRESSED_SIZE as usize;

/// Bytes of the scratch buffer: a frame, or a whole plain chunk.
const SCRATCH_LEN: usize = MAX_PLAIN_SIZE as usize;

const _: () = assert!(INPUT_LEN >= MAX_COMPRESSED_FRAME_SIZE as usize);
const _: () = assert!(SCRATCH_LEN >= MAX_FRAME_SIZE as usize);

/// What one decompression needs, allocated once.
pub(crate) struct Workspace {
    ctx: DecompressCtx,
    input: KVVec<u8>,
    scratch: KVVec<u8>,
    /// The plain chunk (blob index, size) whose decompressed bytes `scratch` holds.
    plain: Option<(u32, usize)>,
}

impl Workspace {
    fn new() -> Result<KBox<Self>> {
        Ok(KBox::new(
            Self {
                ctx: DecompressCtx::new(image_gfp())?,
                input: KVVec::from_elem(0u8, INPUT_LEN, image_gfp())?,
                scratch: KVVec::from_elem(0u8, SCRATCH_LEN, image_gfp())?,
                plain: None,
            },
            image_gfp(),
        )?)
    }
}

/// The free workspaces; the vector's capacity is the pool's size, so a workspace given back
/// always fits.
struct PoolState {
    free: KVec<KBox<Workspace>>,
}

/// The decompression workspaces of a mount.
#[pin_data]
pub(crate) struct Pool {
    #[pin]
    state: Mutex<PoolState>,
    #[pin]
    freed: CondVar,
}

/// A workspace taken from a [`Pool`]; given back when dropped.
struct Taken<'p> {
    pool: &'p Pool,
    ws: Option<KBox<Workspace>>,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if let Some(ws) = self.ws.take() {
            let mut state = self.pool.state.lock();
            // The vector has room for every workspace of the pool (see `PoolState`).
            let _ = state.free.push_within_capacity(ws);
            drop(state);
            self.pool.freed.notify_one();
        }
    }
}

impl Pool {
    /// A pool of `count` workspaces, made now: reads never allocate.
    pub(crate) fn new(count: usize) -> Result<Pin<KBox<Self>>> {
        let mut free = KVec::with_capacity(count, GFP_KERNEL)?;
        for _ in 0..count {
            free.push(Workspace::new()?, GFP_KERNEL)?;
        }
        KBox::pin_init(
            pin_init!(Self {
                state <- new_mutex!(PoolState { free }),
                freed <- new_condvar!(),
            }),
            GFP_KERNEL,
        )
    }

    /// Takes a free workspace, waiting for one if all are in use. `ENOMEM` if the pool has
    /// none at all (the image was said to have no compressed chunk).
    fn take(&self) -> Result<Taken<'_>> {
        let mut state = self.state.lock();
        if state.free.capacity() == 0 {
            return Err(ENOMEM);
        }
        loop {
            if let Some(ws) = state.free.pop() {
                return Ok(Taken {
                    pool: self,
                    ws: Some(ws),
                });
            }
            self.freed.wait(&mut state);
        }
    }
}

/// How many workspaces a mount makes: one per CPU, at most [`MAX_WORKSPACES`], and none for an
/// image without compressed chunks.
pub(crate) fn pool_size(compressed_extents: u64) -> usize {
    if compressed_extents == 0 {
        return 0;
    }
    (kernel::cpu::nr_cpu_ids() as usize).clamp(1, MAX_WORKSPACES)
}

/// Fills `len` bytes of `folio` at `folio_off` with bytes `[off, off + len)` of the compressed
/// chunk `index` open as `blob`, for file `ino`.
#[expect(clippy::too_many_arguments)]
pub(crate) fn read_compressed(
    info: &SbInfo,
    ino: u64,
    index: u32,
    blob: &BlobFile,
    folio: &mut LockedFolio<'_>,
    folio_off: usize,
    len: usize,
    off: u64,
) -> Result {
    let layout = blob.layout().map_err(|e| {
        match e {
            SeekError::Io(e) => info.report(format_args!(
                "inode {ino}: cannot read a compressed chunk's seek table: error {}",
                e.to_errno()
            )),
            SeekError::Format(e) => info.report(format_args!("inode {ino}: {e}")),
        }
        EIO
    })?;
    let end = off.checked_add(len as u64).ok_or(EIO)?;
    let mut taken = info.decompressors.take()?;
    let ws = &mut **taken.ws.as_mut().ok_or(EIO)?;
    let r = match layout {
        Layout::Seekable(seek) => read_frames(ws, blob, seek, folio, folio_off, off, end),
        Layout::Plain => read_plain(ws, blob, index, folio, folio_off, off, end),
    };
    r.map_err(|why| {
        match why {
            Why::Io(e) => info.report(format_args!(
                "inode {ino}: reading a compressed chunk failed: error {}",
                e.to_errno()
            )),
            Why::Corrupt(what) => {
                info.report(format_args!("inode {ino}: compressed chunk: {what}"))
            }
        }
        EIO
    })
}

/// Why a compressed read failed, for its message.
enum Why {
    Io(Error),
    Corrupt(&'static str),
}

impl From<Error> for Why {
    fn from(e: Error) -> Self {
        Why::Io(e)
    }
}

const LIES: &str = "a frame is corrupt or not the size its table says";

/// Decompresses the frames of a seekable chunk covering `[off, end)` into the folio.
fn read_frames(
    ws: &mut Workspace,
    blob: &BlobFile,
    index: &SeekIndex,
    folio: &mut LockedFolio<'_>,
    folio_off: usize,
    off: u64,
    end: u64,
) -> core::result::Result<(), Why> {
    if end > index.size() {
        return Err(Why::Corrupt("an extent runs past its chunk"));
    }
    let Workspace {
        ctx,
        input,
        scratch,
        plain,
    } = ws;
    // The scratch buffer is reused for frames: it no longer holds a plain chunk.
    *plain = None;
    let mut pos = off;
    while pos < end {
        let (first, f0) = index.frame_at(pos).ok_or(Why::Corrupt("no frame"))?;
        // The frames that cover what is wanted and whose compressed bytes fit the input buffer,
        // read with one backing read.
        let mut last = first;
        let mut c_end = f0.c_off.saturating_add(u64::from(f0.c_len));
        while let Some(f) = index.frame(last + 1) {
            let e = f.c_off.saturating_add(u64::from(f.c_len));
            if f.d_off >= end || e.saturating_sub(f0.c_off) > INPUT_LEN as u64 {
                break;
            }
            last += 1;
            c_end = e;
        }
        let c_len = usize::try_from(c_end.checked_sub(f0.c_off).ok_or(EIO)?).map_err(|_| EIO)?;
        let src_all = input.get_mut(..c_len).ok_or(EIO)?;
        blob.file
            .read_exact_at(src_all, i64::try_from(f0.c_off).map_err(|_| EIO)?)?;
        let src_all = &*src_all;
        for i in first..=last {
            let f = index.frame(i).ok_or(EIO)?;
            let s = usize::try_from(f.c_off.checked_sub(f0.c_off).ok_or(EIO)?).map_err(|_| EIO)?;
            let src = src_all
                .get(s..s.saturating_add(f.c_len as usize))
                .ok_or(EIO)?;
            let d_len = f.d_len as usize;
            let f_end = f.d_off.saturating_add(u64::from(f.d_len));
            let (want_s, want_e) = (pos.max(f.d_off), end.min(f_end));
            if want_e <= want_s {
                // An empty frame (upstream ends a blob with one): nothing of it is wanted.
                continue;
            }
            let to_folio = usize::try_from(want_s.checked_sub(off).ok_or(EIO)?).map_err(|_| EIO)?;
            let dst_off = folio_off.checked_add(to_folio).ok_or(EIO)?;
            let mut direct = None;
            if want_s == f.d_off && want_e == f_end {
                // All of the frame is wanted: straight into the page cache.
                direct = folio.with_contiguous(dst_off, d_len, |dst| ctx.decompress(dst, src))?;
            }
            match direct {
                Some(Ok(n)) if n == d_len => {}
                Some(_) => return Err(Why::Corrupt(LIES)),
                None => {
                    let dst = scratch.get_mut(..d_len).ok_or(EIO)?;
                    match ctx.decompress(dst, src) {
                        Ok(n) if n == d_len => {}
                        _ => return Err(Why::Corrupt(LIES)),
                    }
                    let from = usize::try_from(want_s.checked_sub(f.d_off).ok_or(EIO)?)
                        .map_err(|_| EIO)?;
                    let to = usize::try_from(want_e.checked_sub(f.d_off).ok_or(EIO)?)
                        .map_err(|_| EIO)?;
                    folio.write(dst_off, dst.get(from..to).ok_or(EIO)?)?;
                }
            }
            pos = want_e;
            kernel::task::cond_resched();
        }
    }
    Ok(())
}

/// Decompresses a plain chunk (blob `index`) whole, unless the workspace holds it already, and
/// copies `[off, end)` of it into the folio.
fn read_plain(
    ws: &mut Workspace,
    blob: &BlobFile,
    index: u32,
    folio: &mut LockedFolio<'_>,
    folio_off: usize,
    off: u64,
    end: u64,
) -> core::result::Result<(), Why> {
    let size = match ws.plain {
        Some((i, size)) if i == index => size,
        _ => {
            ws.plain = None;
            let c_len = usize::try_from(blob.size).map_err(|_| EIO)?;
            let src = ws
                .input
                .get_mut(..c_len)
                .ok_or(Why::Corrupt("chunk too large"))?;
            blob.file.read_exact_at(src, 0)?;
            // The scratch buffer bounds the output: a chunk that would decompress to more than
            // the largest chunk is an error, not an overflow.
            let size = ws
                .ctx
                .decompress(&mut ws.scratch, src)
                .map_err(|_| Why::Corrupt("corrupt, or larger than the largest chunk"))?;
            ws.plain = Some((index, size));
            size
        }
    };
    let from = usize::try_from(off).map_err(|_| EIO)?;
    let to = usize::try_from(end).map_err(|_| EIO)?;
    if to > size {
        return Err(Why::Corrupt("an extent runs past its chunk"));
    }
    folio.write(folio_off, ws.scratch.get(from..to).ok_or(EIO)?)?;
    Ok(())
}
