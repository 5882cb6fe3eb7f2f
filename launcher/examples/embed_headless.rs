//! An application that embeds triptych headless: it spawns a shell, takes every presented
//! frame's pixels from the events, and writes every tenth frame to a PNG file.
//!
//! ```sh
//! cargo run --example embed_headless -- OUT_DIR [FRAMES]
//! ```
//!
//! It prints one line per written file and the run's summary line at the end; a crash of a
//! child (try killing its `triptych-gpu` process while it runs) is printed and recovered from.
//! Its children are this executable itself, started in each role (`triptych::run_child_if_asked`),
//! unless `TRIPTYCH_BIN_DIR` names a directory of separate child binaries.

// An example program reports to its user on stdout.
#![allow(clippy::print_stdout)]

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::Context;
use triptych::shell::{Event, ShellBuilder};

fn write_png(path: &Path, width: u32, height: u32, rgba: &[u8]) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut enc = png::Encoder::new(BufWriter::new(file), width, height);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(rgba)?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // One executable: started by the shell as its GPU process or renderer, this runs that role
    // and exits; it comes before anything else the program does.
    triptych::run_child_if_asked();
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .context("usage: embed_headless OUT_DIR [FRAMES]")?,
    );
    let frames: u64 = match args.next() {
        Some(n) => n.parse().context("FRAMES is a number")?,
        None => 30,
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let shell = ShellBuilder::new()
        .size(320, 240)
        .layers(3)
        .frames(frames)
        .pixels(true)
        .spawn()?;
    for event in shell.events() {
        match event {
            Event::Presented(f) if f.frame % 10 == 9 || f.frame + 1 == frames => {
                let px = f.pixels().context("the shell was asked for pixels")?;
                let path = out.join(format!("frame-{:05}.png", f.frame));
                write_png(&path, f.width, f.height, px)?;
                println!("wrote {}", path.display());
            }
            Event::Presented(_) => {}
            Event::Crashed { role, cause, .. } => println!("{role} crashed ({cause}); recovering"),
            Event::Violation { role, call, .. } => println!("violation: {role}: {call}"),
            Event::Fallback(what) => println!("fallback: {what}"),
            Event::StandbyReady { pid } => println!("standby GPU process {pid} ready"),
            Event::EditSuperseded { version } => {
                println!("edit {version} superseded by a new scene")
            }
            Event::Applied { version, frame } => {
                println!("edit {version} on screen at frame {frame}")
            }
            Event::Finished => break,
            // Kinds of event a later version adds.
            _ => {}
        }
    }
    let summary = shell.wait()?;
    println!(
        "{} frames presented, last {:?}, {} crashes",
        summary.frames.count,
        summary.frames.last,
        summary.recovery.crashes.len()
    );
    Ok(())
}
