//! Item 9: the launcher's cost to hand one 1080p frame to the X server, against a `memcpy` of the
//! frame's bytes, on the producer's pinned CPU.
//!
//! The value is what a window's present costs the launcher per frame
//! (`triptych::window::x11::Presenter::put`): one `ShmPutImage` naming a 1920x1080 slot of a
//! memfd attached with `ShmAttachFd` (read-only, as the renderer's output is), plus the flush
//! that writes it to the socket. The server's own reading of the slot is not the launcher's time
//! and is not in the figure; the `ShmCompletion` that ends it is awaited after the clock stops,
//! as the launcher awaits it before giving the slot back, so every put finds the server idle.
//! The requests are the presenter's own, made here on a connection and window of the bench's
//! (the presenter draws into winit's window on `$DISPLAY`).
//!
//! The baseline copies the slot's 8 294 400 bytes to another mapping with `copy_from_slice`: what
//! handing the frame over by copying would cost at the least. The goal is at most 0.05x.
//!
//! The X server is `$DISPLAY` where it is set, else an Xvfb the bench starts (and kills) with a
//! 1920x1080x24 screen; with neither, or with a server that has no `ShmAttachFd`, the item is
//! reported as not measured, with the reason.

use std::io::Read;
use std::os::fd::AsFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use triptych_sys::mapping::{Access, Mapping};
use x11rb::connection::Connection;
use x11rb::protocol::shm::ConnectionExt as _;
use x11rb::protocol::xproto::{
    ConnectionExt as _, CreateGCAux, CreateWindowAux, ImageFormat, WindowClass,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;

use super::fixture::FRAME_BYTES;
use super::fixture::{HEIGHT, WIDTH};
use super::stats::{interleave, time_each, Figure, Plan};

/// How long the server may take to read one slot.
const COMPLETION_DEADLINE: Duration = Duration::from_secs(5);

/// Presenting a slot, and its `memcpy` baseline.
#[derive(Debug)]
pub struct Measured {
    /// `ShmPutImage` + flush.
    pub put: Figure,
    /// Copying the slot's bytes.
    pub memcpy: Figure,
    /// Which server, in words.
    pub server: String,
}

/// Why the item could not be measured here (not a failure of the bench).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NoServer(pub String);

/// An Xvfb started for the item, killed on drop.
struct Xvfb {
    child: Child,
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Xvfb on a free display (it writes the number it took to `-displayfd`).
fn start_xvfb() -> anyhow::Result<(Xvfb, String)> {
    let child = Command::new("Xvfb")
        .args(["-displayfd", "1", "-nolisten", "tcp", "-screen", "0"])
        .arg(format!("{WIDTH}x{HEIGHT}x24"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child =
        match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(NoServer(
                "no X server: DISPLAY is not set and Xvfb is not installed (apt-get install xvfb)"
                    .into(),
            )
            .into()),
            Err(e) => return Err(NoServer(format!("starting Xvfb: {e}")).into()),
        };
    let mut out = child.stdout.take().context("Xvfb's stdout")?;
    let server = Xvfb { child };
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("xvfb-display".into())
        .spawn(move || {
            let mut s = String::new();
            let mut b = [0u8; 1];
            while out.read(&mut b).ok() == Some(1) && b[0] != b'\n' {
                s.push(char::from(b[0]));
            }
            let _ = tx.send(s);
        })
        .context("starting the thread that reads Xvfb's display number")?;
    let n = rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| NoServer("Xvfb did not name its display within 20 s".into()))?;
    let n = n.trim();
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NoServer(format!("Xvfb exited, or named no display ({n:?})")).into());
    }
    Ok((server, format!(":{n}")))
}

/// Measures presenting a 1080p slot against `memcpy`, on the calling thread.
pub fn measure(plan: Plan) -> anyhow::Result<Measured> {
    let display = std::env::var("DISPLAY").ok().filter(|d| !d.is_empty());
    let (_xvfb, name, server) = match display {
        Some(d) => (None, d.clone(), format!("DISPLAY={d}")),
        None => {
            let (x, d) = start_xvfb()?;
            (
                Some(x),
                d.clone(),
                format!("Xvfb {d}, started by the bench"),
            )
        }
    };
    let (conn, screen) = x11rb::connect(Some(&name))
        .map_err(|e| NoServer(format!("connecting to the X server {name}: {e}")))?;
    triptych::window::x11::shm_fd_support(&conn)
        .map_err(|why| NoServer(format!("{server}: {why}")))?;
    let screen = &conn.setup().roots[screen];
    if screen.root_depth != 24 && screen.root_depth != 32 {
        return Err(NoServer(format!(
            "{server}: the root window has depth {}; frames are 32-bit pixels (depth 24 or 32)",
            screen.root_depth
        ))
        .into());
    }
    let (w, h) = (WIDTH as u16, HEIGHT as u16);
    let window = conn.generate_id().context("a window id")?;
    conn.create_window(
        screen.root_depth,
        window,
        screen.root,
        0,
        0,
        w,
        h,
        0,
        WindowClass::INPUT_OUTPUT,
        screen.root_visual,
        // Not managed: the window sits on the screen, undecorated, for the item's few seconds.
        &CreateWindowAux::new().override_redirect(1),
    )
    .context("CreateWindow")?
    .check()
    .context("the X server refused the bench's window")?;
    conn.map_window(window).context("MapWindow")?;
    let gc = conn.generate_id().context("a graphics context id")?;
    conn.create_gc(gc, window, &CreateGCAux::new().graphics_exposures(0))
        .context("CreateGC")?
        .check()
        .context("the X server refused the graphics context")?;

    // The slot, as the renderer's output memfd holds it, and the baseline's destination.
    let fd = triptych_sys::memfd::create_sealed(c"triptych-bench-present", FRAME_BYTES as u64)?;
    let mut slot = Mapping::new(fd.as_fd(), FRAME_BYTES, Access::ReadWrite)?;
    for (i, px) in slot.as_mut_slice().chunks_exact_mut(4).enumerate() {
        px.copy_from_slice(&[(i % 251) as u8, (i % 241) as u8, (i % 239) as u8, 255]);
    }
    let copy_fd = triptych_sys::memfd::create_sealed(c"triptych-bench-copy", FRAME_BYTES as u64)?;
    let mut copy = Mapping::new(copy_fd.as_fd(), FRAME_BYTES, Access::ReadWrite)?;
    let seg = conn.generate_id().context("a segment id")?;
    conn.shm_attach_fd(seg, fd.try_clone().context("duplicating the memfd")?, true)
        .context("ShmAttachFd")?
        .check()
        .context("the X server refused the memfd")?;
    conn.flush().context("flushing to the X server")?;

    let put = |n: u64| -> anyhow::Result<Vec<u64>> {
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let t0 = Instant::now();
            conn.shm_put_image(
                window,
                gc,
                w,
                h,
                0,
                0,
                w,
                h,
                0,
                0,
                screen.root_depth,
                ImageFormat::Z_PIXMAP.into(),
                true,
                seg,
                0,
            )
            .context("ShmPutImage")?;
            conn.flush().context("flushing to the X server")?;
            out.push(t0.elapsed().as_nanos() as u64);
            completion(&conn, seg)?;
        }
        Ok(out)
    };
    let pixels = slot.peer_bytes();
    let copy_cell = std::cell::RefCell::new(&mut copy);
    let (p, m) = interleave(
        plan,
        |n, _| put(n),
        |n, _| {
            time_each(n, |_| {
                let mut c = copy_cell.borrow_mut();
                pixels.copy_to(c.as_mut_slice());
                std::hint::black_box(c.as_slice().as_ptr());
                Ok(())
            })
        },
    )?;
    let _ = conn.shm_detach(seg).map(|c| c.check());
    let _ = conn.destroy_window(window).map(|c| c.check());
    Ok(Measured {
        put: Figure::of(p, 1),
        memcpy: Figure::of(m, 1),
        server,
    })
}

/// Waits for the server's `ShmCompletion` of segment `seg`.
fn completion(conn: &RustConnection, seg: u32) -> anyhow::Result<()> {
    let deadline = Instant::now() + COMPLETION_DEADLINE;
    loop {
        match conn
            .poll_for_event()
            .context("reading the X server's events")?
        {
            Some(Event::ShmCompletion(c)) if c.shmseg == seg => return Ok(()),
            Some(Event::Error(e)) => bail!("the X server: {e:?}"),
            Some(_) => {}
            None if Instant::now() >= deadline => {
                bail!("no ShmCompletion within {COMPLETION_DEADLINE:?} of a ShmPutImage")
            }
            None => std::thread::sleep(Duration::from_micros(50)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_where_a_server_is_found_else_said_why() {
        let plan = Plan {
            warmup: 0,
            iterations: 2,
            rounds: 1,
        };
        match measure(plan) {
            Ok(m) => {
                assert_eq!(m.put.iterations, 2);
                assert!(m.memcpy.p50_ns > 0.0);
            }
            Err(e) => assert!(e.downcast_ref::<NoServer>().is_some(), "{e:#}"),
        }
    }
}
