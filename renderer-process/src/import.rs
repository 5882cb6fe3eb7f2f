//! The import cache: each buffer is fetched and mapped once per buffer id, not once per frame.
//!
//! The GPU process reuses a small pool of buffers; each description names its buffer by
//! [`BufferId`] (pool slot and generation). On a miss the renderer fetches the buffer's fd, checks
//! its identity, then checks the file and maps its plane read-only
//! ([`ipc_protocol::buffer_file`], the check the launcher applies too when it vouches for a
//! frame). On a hit it checks that the description's shape is the one it
//! imported (a peer cannot reuse an id to make the renderer read a mapping with another layout)
//! and reuses the mapping. A new generation for a slot replaces the old entry; a new GPU process
//! epoch empties the cache. Entries own their fd and mapping, so eviction frees both.
//!
//! Fences are per submission, so the frame loop fetches each frame's fences itself
//! ([`crate::fetch::fetch`]), with one exception: implicit fences
//! ([`ipc_protocol::frame::FenceKind::Implicit`]) lie on a DMA-BUF that lives as long as the
//! buffer (the buffer itself, or its fence carrier). The cache keeps that file with the buffer,
//! taken once like it, and [`ImportCache::implicit_fence`] snapshots its fences for each frame.
//! [`ImportCounters`] count misses and hits for the run's statistics and for the benchmark, which
//! checks from them that every block did the imports it was meant to time.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use ipc_protocol::buffer_file::{FileError, Shape};
use ipc_protocol::frame::DescError;
use ipc_protocol::{BufferId, FileId, Frame, RemoteFd};
use triptych_sys::mapping::Mapping;

use crate::fetch::{fetch, FetchError, FrameSource};

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The description is malformed.
    #[error("invalid buffer description: {0}")]
    Desc(#[from] DescError),
    /// Fetching the fd failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The file is not what a buffer's file must be ([`ipc_protocol::buffer_file`]).
    #[error(transparent)]
    File(#[from] FileError),
    /// A cached id came back with another shape.
    #[error("buffer {slot}.{generation}: description changed shape while its id stayed the same")]
    ShapeChanged {
        /// Pool slot.
        slot: u32,
        /// Generation.
        generation: u32,
    },
}

/// One imported buffer.
#[derive(Debug)]
pub struct Imported {
    /// Its id.
    pub id: BufferId,
    /// Its layout.
    pub shape: Shape,
    /// The fetched fd (kept for DMA-BUF sync ioctls and so the file stays alive).
    pub fd: OwnedFd,
    /// The read-only mapping of plane 0, from the file's start to the plane's end.
    pub map: Mapping,
    /// The DMA-BUF carrying the buffer's implicit fences, where it is not the buffer itself:
    /// the number and identity it was named by, and the fetched fd.
    pub carrier: Option<((i32, FileId), OwnedFd)>,
}

/// Why a frame's implicit fence could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ImplicitError {
    /// The buffer was not imported first.
    #[error("buffer {slot}.{generation} is not imported")]
    NotImported {
        /// Pool slot.
        slot: u32,
        /// Generation.
        generation: u32,
    },
    /// Fetching the fences' holder failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The holder is no DMA-BUF, or gives no fences: the exporter's lie.
    #[error("{0}")]
    NotAFence(String),
}

impl Imported {
    /// The bytes of plane 0, from its offset to the end of its last row.
    pub fn plane_bytes(&self) -> triptych_sys::mapping::PeerBytes<'_> {
        let start = self.shape.offset as usize;
        let len = self.shape.stride as usize * self.shape.height as usize;
        // Bounds were checked at import against the mapping's size; an empty view draws nothing.
        let all = self.map.peer_bytes();
        all.sub(start, len)
            .unwrap_or(triptych_sys::mapping::PeerBytes::from_local(&[]))
    }
}

/// Counters the cache keeps.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImportCounters {
    /// Buffers fetched and mapped.
    pub imports: u64,
    /// Lookups served from the cache.
    pub hits: u64,
}

/// Imported buffers of the current GPU process, by pool slot.
#[derive(Debug, Default)]
pub struct ImportCache {
    epoch: u64,
    entries: HashMap<u32, Imported>,
    /// Counters.
    pub counters: ImportCounters,
}

impl ImportCache {
    /// Forgets every buffer if `epoch` is not the cache's epoch.
    pub fn set_epoch(&mut self, epoch: u64) {
        if epoch != self.epoch {
            self.entries.clear();
            self.epoch = epoch;
        }
    }

    /// Returns the imported buffer for `desc`, importing it from `src` on a miss.
    /// `desc` must already have passed `validate_shape` and `validate_remote`.
    pub fn get_or_import(
        &mut self,
        src: &mut FrameSource<'_>,
        desc: &Frame<RemoteFd>,
        plane_end: u64,
    ) -> Result<&Imported, ImportError> {
        let shape = Shape::of(desc).ok_or(DescError::PlaneCount {
            got: 0,
            expected: 1,
            fourcc: ipc_protocol::frame::fourcc_name(desc.format.fourcc),
        })?;
        let slot = desc.id.slot;
        let hit = matches!(self.entries.get(&slot), Some(e) if e.id == desc.id);
        if hit {
            let e = &self.entries[&slot];
            if e.shape != shape {
                return Err(ImportError::ShapeChanged {
                    slot,
                    generation: desc.id.generation,
                });
            }
            self.counters.hits += 1;
            return Ok(&self.entries[&slot]);
        }
        let fd = fetch(src, "planes[0]", &desc.planes[0].fd)?;
        let map = ipc_protocol::buffer_file::check(fd.as_fd(), desc.kind, plane_end)?;
        self.counters.imports += 1;
        let entry = Imported {
            id: desc.id,
            shape,
            fd,
            map,
            carrier: None,
        };
        self.entries.insert(slot, entry);
        Ok(&self.entries[&slot])
    }

    /// The implicit fences of `desc`'s buffer, imported already, snapshotted now as a sync_file
    /// (`DMA_BUF_IOCTL_EXPORT_SYNC_FILE`, the fences a reader waits for). They lie on the buffer
    /// itself where the fence names the buffer's own file (its number and identity), and
    /// otherwise on the fence's file, taken from `src` the first time and kept with the buffer
    /// (named by another number or identity, it is taken anew). The file waited on is always the
    /// one at the number the frame names, as the launcher looks at it when it checks a claim.
    pub fn implicit_fence(
        &mut self,
        src: &mut FrameSource<'_>,
        desc: &Frame<RemoteFd>,
    ) -> Result<OwnedFd, ImplicitError> {
        let entry = self
            .entries
            .get_mut(&desc.id.slot)
            .filter(|e| e.id == desc.id)
            .ok_or(ImplicitError::NotImported {
                slot: desc.id.slot,
                generation: desc.id.generation,
            })?;
        let named = (desc.fence.fd.fd, desc.fence.fd.identity);
        let own = desc.planes.first().map(|p| (p.fd.fd, p.fd.identity)) == Some(named);
        let snapshot = |holder: BorrowedFd<'_>| {
            triptych_sys::dma_buf::export_sync_file(holder, triptych_sys::dma_buf::SyncAccess::Read)
                .map_err(|e| ImplicitError::NotAFence(format!("its implicit fences: {e}")))
        };
        if own {
            return snapshot(entry.fd.as_fd());
        }
        let carrier = match entry.carrier.take() {
            Some((id, fd)) if id == named => fd,
            replaced => {
                // Closed before its successor is taken.
                drop(replaced);
                let fd = fetch(src, "fence", &desc.fence.fd)?;
                match triptych_sys::dma_buf::is_dma_buf(fd.as_fd()) {
                    Ok(true) => fd,
                    Ok(false) => {
                        return Err(ImplicitError::NotAFence(
                            "implicit fences on a file that is no DMA-BUF".into(),
                        ))
                    }
                    Err(e) => {
                        return Err(ImplicitError::NotAFence(format!(
                            "implicit fences on a file that cannot be examined: {e}"
                        )))
                    }
                }
            }
        };
        let sync = snapshot(carrier.as_fd());
        entry.carrier = Some((named, carrier));
        sync
    }

    /// The imported buffer with id `id`, if it is still cached.
    pub fn get(&self, id: BufferId) -> Option<&Imported> {
        self.entries.get(&id.slot).filter(|e| e.id == id)
    }
}
