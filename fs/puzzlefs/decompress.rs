// SPDX-License-Identifier: GPL-2.0

//! Reading compressed chunks (`puzzlefs build -c`).
//!
//! A compressed chunk blob of the current image generation is a sequence of independent zstd
//! frames and a seek table (see [`crate::format::seekable`]); one of the older generation is a
//! single plain zstd stream of at most 256 KiB. The layout (with the frame index of a seekable
//! blob) is loaded when the blob is first read compressed and kept in its slot
//! ([`crate::blob::BlobStore::layout`]).
//!
//! A read of `[off, end)` of a seekable chunk decompresses only the frames that cover it: their
//! compressed bytes are read with one backing read into the workspace's input buffer, and each
//! frame is decompressed straight into the folio when the folio wants all of it and its memory
//! is contiguous, else into the workspace's scratch buffer, which keeps it for the next folio
//! that wants the rest of that frame. A plain chunk is decompressed whole into the scratch
//! buffer, which keeps it for the next reads of that chunk.
//!
//! Nothing here trusts a declared size: a frame is decompressed into a buffer of exactly the
//! size its seek table entry declares (at most [`MAX_FRAME_SIZE`]), so it cannot write more, and
//! it must fill that buffer exactly, or the read fails with `EIO`; a plain chunk is decompressed
//! into a buffer of the largest chunk's size. Corrupt or truncated frames, and tables that lie,
//! fail the same way, with one rate-limited message; other files keep reading.
//!
//! Workspaces (a zstd context, an input buffer and a scratch buffer: about 620 KiB) are made at
//! mount time, one per CPU and at most [`MAX_WORKSPACES`], for images that have compressed
//! chunks; a reader that finds none free waits for one (killably). Reads allocate nothing here
//! but a blob's layout, once per blob.

use crate::{
    blob::{BlobFile, Layout, SeekIndex},
    format::seekable::{
        MAX_COMPRESSED_FRAME_SIZE, MAX_FRAME_SIZE, MAX_PLAIN_COMPRESSED_SIZE, MAX_PLAIN_SIZE,
    },
    internal::image_gfp,
    super_block::SbInfo,
};
use kernel::{
    alloc::KVVec,
    fs::{folio::LockedFolio, mount::ReadCache},
    new_condvar, new_mutex,
    prelude::*,
    sync::{CondVar, Mutex},
    zstd::DecompressCtx,
};

/// Most decompression workspaces one mount keeps.
pub(crate) const MAX_WORKSPACES: usize = 4;

/// Bytes of compressed input read at once: several frames, a whole plain chunk, at least.
const INPUT_LEN: usize = MAX_PLAIN_COMPRESSED_SIZE as usize;

/// Compressed bytes a seekable read takes in at least, from its first frame on, when the input
/// buffer does not hold them yet: upstream writes frames of 4 KiB (about 1.5 KiB compressed), and
/// the next folios of the file, or of its neighbours, which share chunks, want the frames that
/// follow. The backing file's page cache holds them anyway.
const INPUT_AHEAD: usize = 32 << 10;

/// Bytes of the scratch buffer: a frame, or a whole plain chunk.
const SCRATCH_LEN: usize = MAX_PLAIN_SIZE as usize;

const _: () = assert!(INPUT_LEN >= MAX_COMPRESSED_FRAME_SIZE as usize);
const _: () = assert!(INPUT_LEN >= INPUT_AHEAD);
const _: () = assert!(SCRATCH_LEN >= MAX_FRAME_SIZE as usize);

/// What one decompression needs, allocated once.
pub(crate) struct Workspace {
    ctx: DecompressCtx,
    input: KVVec<u8>,
    scratch: KVVec<u8>,
    /// What `scratch` holds: the decompressed bytes of a plain chunk or of one frame.
    held: Held,
    /// What `input` holds for seekable reads: `(blob, at, len)`, the compressed bytes
    /// `[at, at + len)` of chunk `blob`.
    input_at: Option<(u32, u64, usize)>,
}

/// What a workspace's scratch buffer holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    Nothing,
    /// Plain chunk `blob`, `size` bytes.
    Plain {
        blob: u32,
        size: usize,
    },
    /// Frame `frame` of seekable chunk `blob`.
    Frame {
        blob: u32,
        frame: usize,
    },
}

impl Workspace {
    fn new() -> Result<KBox<Self>> {
        Ok(KBox::new(
            Self {
                ctx: DecompressCtx::new(image_gfp())?,
                input: KVVec::from_elem(0u8, INPUT_LEN, image_gfp())?,
                scratch: KVVec::from_elem(0u8, SCRATCH_LEN, image_gfp())?,
                held: Held::Nothing,
                input_at: None,
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
            // Killable: a reader stuck behind workspaces whose holders wait on slow backing
            // I/O can be killed. Another signal pending would end an interruptible wait at once,
            // again and again: wait uninterruptibly then, for one notification.
            if self.freed.wait_interruptible(&mut state) {
                if kernel::current!().fatal_signal_pending() {
                    return Err(EINTR);
                }
                self.freed.wait(&mut state);
            }
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
    let layout = info.blobs.layout(index, blob).map_err(|e| {
        info.report(format_args!("inode {ino}: compressed chunk: {e}"));
        EIO
    })?;
    let end = off.checked_add(len as u64).ok_or(EIO)?;
    let mut taken = info.decompressors.take()?;
    let ws = &mut **taken.ws.as_mut().ok_or(EIO)?;
    let r = match layout {
        Layout::Seekable(seek) => {
            let cache = info.blobs.cache();
            read_frames(ws, blob, index, seek, cache, folio, folio_off, off, end)
        }
        Layout::Plain => read_plain(
            ws,
            blob,
            index,
            info.blobs.cache(),
            folio,
            folio_off,
            off,
            end,
        ),
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

/// Decompresses the frames of seekable chunk `blob_index` (open as `blob`, frame index `index`)
/// covering `[off, end)` into the folio.
#[expect(clippy::too_many_arguments)]
fn read_frames(
    ws: &mut Workspace,
    blob: &BlobFile,
    blob_index: u32,
    index: &SeekIndex,
    cache: ReadCache,
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
        held,
        input_at,
    } = ws;
    let mut pos = off;
    while pos < end {
        let (first, f0) = index.frame_at(pos).ok_or(Why::Corrupt("no frame"))?;
        // The frames that cover what is wanted and whose compressed bytes fit the input buffer,
        // read with one backing read, unless the first is the one the scratch buffer holds.
        let mut last = first;
        let mut c_end = f0.c_off.saturating_add(u64::from(f0.c_len));
        while let Some(f) = index.frame(last + 1) {
            let e = f.c_off.saturating_add(u64::from(f.c_len));
            if f.d_off >= end || f.d_len == 0 || e.saturating_sub(f0.c_off) > INPUT_LEN as u64 {
                break;
            }
            last += 1;
            c_end = e;
        }
        let cached = *held
            == Held::Frame {
                blob: blob_index,
                frame: first,
            };
        if cached {
            last = first;
        } else if !matches!(*input_at, Some((b, at, len))
            if b == blob_index && at <= f0.c_off && c_end <= at.saturating_add(len as u64))
        {
            // Read the wanted frames and, up to INPUT_AHEAD bytes in all, the frames after them.
            let mut r_end = c_end;
            let mut k = last + 1;
            while let Some(f) = index.frame(k) {
                let e = f.c_off.saturating_add(u64::from(f.c_len));
                if e.saturating_sub(f0.c_off) > INPUT_AHEAD as u64 {
                    break;
                }
                r_end = e;
                k += 1;
            }
            let c_len =
                usize::try_from(r_end.checked_sub(f0.c_off).ok_or(EIO)?).map_err(|_| EIO)?;
            let src_all = input.get_mut(..c_len).ok_or(EIO)?;
            let at = i64::try_from(f0.c_off).map_err(|_| EIO)?;
            *input_at = None;
            blob.file.read_into_slice(src_all, at, cache)?;
            *input_at = Some((blob_index, f0.c_off, c_len));
        }
        // Where `input` starts in the chunk (unused when the scratch buffer holds the frame).
        let base = input_at.map_or(f0.c_off, |(_, at, _)| at);
        for i in first..=last {
            let f = index.frame(i).ok_or(EIO)?;
            let d_len = f.d_len as usize;
            let f_end = f.d_off.saturating_add(u64::from(f.d_len));
            let (want_s, want_e) = (pos.max(f.d_off), end.min(f_end));
            if want_e <= want_s {
                // An empty frame: nothing of it is wanted.
                continue;
            }
            let to_folio = usize::try_from(want_s.checked_sub(off).ok_or(EIO)?).map_err(|_| EIO)?;
            let dst_off = folio_off.checked_add(to_folio).ok_or(EIO)?;
            let held_here = Held::Frame {
                blob: blob_index,
                frame: i,
            };
            if *held != held_here {
                let s = usize::try_from(f.c_off.checked_sub(base).ok_or(EIO)?).map_err(|_| EIO)?;
                let src = input
                    .get(s..s.saturating_add(f.c_len as usize))
                    .ok_or(EIO)?;
                if want_s == f.d_off && want_e == f_end {
                    // All of the frame is wanted: straight into the page cache.
                    let direct =
                        folio.with_contiguous(dst_off, d_len, |dst| ctx.decompress(dst, src))?;
                    match direct {
                        Some(Ok(n)) if n == d_len => {
                            pos = want_e;
                            kernel::task::cond_resched();
                            continue;
                        }
                        Some(_) => return Err(Why::Corrupt(LIES)),
                        None => {}
                    }
                }
                // Part of it (or highmem): into the scratch buffer, which keeps it for the next
                // folio that wants the rest.
                *held = Held::Nothing;
                let dst = scratch.get_mut(..d_len).ok_or(EIO)?;
                match ctx.decompress(dst, src) {
                    Ok(n) if n == d_len => *held = held_here,
                    _ => return Err(Why::Corrupt(LIES)),
                }
            }
            let from = usize::try_from(want_s.checked_sub(f.d_off).ok_or(EIO)?).map_err(|_| EIO)?;
            let to = usize::try_from(want_e.checked_sub(f.d_off).ok_or(EIO)?).map_err(|_| EIO)?;
            folio.write(dst_off, scratch.get(from..to).ok_or(EIO)?)?;
            pos = want_e;
            kernel::task::cond_resched();
        }
    }
    Ok(())
}

/// Decompresses a plain chunk (blob `index`) whole, unless the workspace holds it already, and
/// copies `[off, end)` of it into the folio.
#[expect(clippy::too_many_arguments)]
fn read_plain(
    ws: &mut Workspace,
    blob: &BlobFile,
    index: u32,
    cache: ReadCache,
    folio: &mut LockedFolio<'_>,
    folio_off: usize,
    off: u64,
    end: u64,
) -> core::result::Result<(), Why> {
    let size = match ws.held {
        Held::Plain { blob: b, size } if b == index => size,
        _ => {
            ws.held = Held::Nothing;
            ws.input_at = None;
            let c_len = usize::try_from(blob.size).map_err(|_| EIO)?;
            let src = ws
                .input
                .get_mut(..c_len)
                .ok_or(Why::Corrupt("chunk too large"))?;
            blob.file.read_into_slice(src, 0, cache)?;
            // The scratch buffer bounds the output: a chunk that would decompress to more than
            // the largest chunk is an error, not an overflow.
            let size = ws
                .ctx
                .decompress(&mut ws.scratch, src)
                .map_err(|_| Why::Corrupt("corrupt, or larger than the largest chunk"))?;
            ws.held = Held::Plain { blob: index, size };
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
