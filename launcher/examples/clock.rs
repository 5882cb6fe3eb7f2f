//! An application that edits its scene while it runs: a clock whose label shows the time, a
//! hand that turns with the seconds, and a strip of its own pixels that fills as they pass,
//! all changed in place without restarting anything.
//!
//! ```sh
//! cargo run --example clock -- OUT.png [SECONDS]
//! ```
//!
//! Each second it sends one transaction (the label's text and the hand's turn) and uploads one
//! column of the strip, waits for the frame that shows them, and prints that frame's number. At
//! the end it writes the last frame to `OUT.png`. Its children are this executable itself,
//! started in each role (`triptych::run_child_if_asked`), unless `TRIPTYCH_BIN_DIR` names a
//! directory of separate child binaries. `SECONDS` may be fractional: the test of this example
//! runs it fast.

// An example program reports to its user on stdout.
#![allow(clippy::print_stdout)]

use std::io::BufWriter;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::json;
use triptych::shell::{Event, Pixels, ShellBuilder, Transaction};

/// The scene: a face, the time, a hand, and a strip of 60 columns of the application's pixels.
const SCENE: &str = r##"backdrop = "#101018"

[[layers]]
name = "face"
kind = "solid"
color = "#203040"
rect = { x = 10, y = 10, w = 300, h = 140 }

[[layers]]
name = "time"
kind = "text"
text = "--:--:--"
size = 28
color = "#ffffff"
align = "center"
rect = { x = 10, y = 20, w = 300, h = 40 }

[[layers]]
name = "hand"
kind = "solid"
color = "#ffcc00"
rect = { x = 150, y = 70, w = 20, h = 40 }

[[layers]]
name = "seconds"
kind = "pixels"
width = 60
height = 1
rect = { x = 40, y = 130, w = 240, h = 8 }
"##;

fn main() -> anyhow::Result<()> {
    triptych::run_child_if_asked();
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().context("usage: clock OUT.png [SECONDS]")?);
    let seconds: f64 = match args.next() {
        Some(s) => s.parse().context("SECONDS is a number")?,
        None => 10.0,
    };
    let tick = Duration::from_secs_f64((seconds / 10.0).clamp(0.001, 1.0));
    let ticks = (seconds / tick.as_secs_f64()).round().max(1.0) as u64;
    let dir = std::env::temp_dir().join(format!("triptych-clock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let scene = dir.join("clock.toml");
    std::fs::write(&scene, SCENE).with_context(|| format!("writing {}", scene.display()))?;
    let shell = ShellBuilder::new()
        .scene(&scene)
        .size(320, 160)
        .frames(u64::MAX / 2)
        .pixels(true)
        .spawn()?;
    let mut next = Instant::now();
    let mut last = None;
    for n in 0..ticks {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let (h, m, s) = (now / 3600 % 24, now / 60 % 60, now % 60);
        let tx = Transaction::new()
            .set("time", json!({"text": format!("{h:02}:{m:02}:{s:02}")}))
            .set("hand", json!({"transform": {"rotate": (n % 60) * 6}}));
        shell.edit(&tx)?;
        // One more column of the strip: yellow, premultiplied.
        let column = (n % 60) as u32;
        let version = shell.upload(
            "seconds",
            &Pixels {
                x: column,
                y: 0,
                width: 1,
                height: 1,
                rgba: &[255, 204, 0, 255],
            },
        )?;
        // The first frame that shows both.
        for event in shell.events() {
            match event {
                Event::Applied { version: v, frame } if v >= version => {
                    println!("tick {n}: on screen from frame {frame}");
                    break;
                }
                Event::Presented(f) => last = Some(f),
                Event::Crashed { role, cause, .. } => {
                    println!("{role} crashed ({cause}); recovering")
                }
                Event::Finished => anyhow::bail!("the shell ended"),
                _ => {}
            }
        }
        next += tick;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    // A frame presented after the last tick's.
    while let Ok(event) = shell.receiver().recv_timeout(Duration::from_secs(5)) {
        if let Event::Presented(f) = event {
            last = Some(f);
            break;
        }
    }
    shell.shutdown();
    let f = last.context("no frame was presented")?;
    let px = f.pixels().context("the shell was asked for pixels")?;
    let file =
        std::fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut enc = png::Encoder::new(BufWriter::new(file), f.width, f.height);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(px)?;
    println!("frame {} written to {}", f.frame, out.display());
    let summary = shell.wait()?;
    println!(
        "{} frames, {} edits, {} crashes",
        summary.frames.count,
        summary.frames.scene_edits,
        summary.recovery.crashes.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
