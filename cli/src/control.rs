//! `triptych run --control PATH|-`: the scene edited while it runs, from JSON lines.
//!
//! Each line of the input is one transaction (`triptych_scene::file::edit`), with the scene
//! file's field names: `{"set": {"title": {"text": "12:00:01"}}}`, `{"add": [LAYER, ...]}`,
//! `{"remove": ["dot"]}`; a line of its own may instead upload the application's pixels to a
//! pixels layer: `{"pixels": {"layer": "canvas", "x": 0, "y": 0, "width": 2, "height": 1,
//! "rgba": [255, 0, 0, 255, 0, 0, 255, 255]}}` (premultiplied RGBA8). Two more keys are
//! understood: `"id"`, any JSON value, echoed in the
//! answer, and `"view"`, which must be 0 (the run has one view). Every line gets exactly one
//! answer on standard output, as one JSON object on one line, with the line's number and its
//! `id` when it had one:
//!
//! - `{"ok": true, "line": 3, "version": 2, "frame": 41}`: the edit is on screen from frame 41;
//! - `{"ok": false, "line": 4, "kind": "out of range", "error": "title.opacity: 1.7 is out of
//!   range; hint: ..."}`: refused, nothing changed; the run goes on.
//!
//! Refusals are answered at once; edits once a frame that shows them is presented, so answers
//! may come in another order than the lines (the line number and the id say which is which).
//! An edit still waiting when the run ends is answered with an error. Blank lines are skipped.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use serde_json::{json, Value};
use triptych::scene::{Applied, Edit, Editor, Pixels};
use triptych_scene::file::{EditKind, Transaction};

/// The longest line read, in bytes; a longer one is refused and skipped.
const MAX_LINE: usize = triptych_scene::file::edit::MAX_TRANSACTION_BYTES;

/// Edits read and not yet taken by the run.
const EDITS_QUEUE: usize = 16;

/// The answers of edits sent and not yet on screen, by version: the line and its id.
type Waiting = Arc<Mutex<BTreeMap<u64, (u64, Option<Value>)>>>;

/// Prints one answer as a line of standard output.
fn answer(v: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn refused(line: u64, id: Option<Value>, kind: &str, error: String) -> Value {
    let mut v = json!({"ok": false, "line": line, "kind": kind, "error": error});
    if let Some(id) = id {
        v["id"] = id;
    }
    v
}

/// The name of a refusal's rule, for the answer's `kind`.
fn kind_name(kind: EditKind) -> String {
    match kind {
        EditKind::Malformed => "malformed".into(),
        EditKind::UnknownLayer => "unknown layer".into(),
        EditKind::TooBig => "too big".into(),
        EditKind::Limit => "limit".into(),
        // `OutOfRange` is `out of range`.
        EditKind::Scene(k) => format!("{k:?}")
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let space = (i > 0 && c.is_ascii_uppercase()).then_some(' ');
                space
                    .into_iter()
                    .chain(std::iter::once(c.to_ascii_lowercase()))
            })
            .collect(),
        _ => "refused".into(),
    }
}

/// A refused line: its id, the rule's name and the message.
type Refusal = (Option<Value>, String, String);

/// One line: its edit, or its refusal.
fn edit_of(editor: &mut Editor, text: &str) -> Result<(Edit, Option<Value>), Refusal> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| (None, "malformed".to_owned(), format!("not JSON: {e}")))?;
    let (tx, mut rest) =
        Transaction::from_json(&value).map_err(|e| (None, kind_name(e.kind), e.to_string()))?;
    let id = rest.remove("id");
    let fail = |kind: &str, msg: String| (id.clone(), kind.to_owned(), msg);
    if let Some(view) = rest.remove("view") {
        if view != json!(0) {
            return Err(fail(
                "unknown view",
                format!("view: {view} is no view of this run; hint: it has one, view 0"),
            ));
        }
    }
    if let Some(p) = rest.remove("pixels") {
        if !tx.is_empty() || !rest.is_empty() {
            return Err(fail(
                "malformed",
                "pixels: an upload is a line of its own; hint: send set, add and remove on another line".into(),
            ));
        }
        let (layer, x, y, w, h, rgba) = pixels_of(&p).map_err(|e| fail("malformed", e))?;
        let pixels = Pixels {
            x,
            y,
            width: w,
            height: h,
            rgba: &rgba,
        };
        let edit = editor
            .upload(&layer, &pixels)
            .map_err(|e| fail(&kind_name(e.kind()), e.to_string()))?;
        return Ok((edit, id));
    }
    if let Some(key) = rest.keys().next() {
        return Err(fail(
            "malformed",
            format!(
                "{key}: not a part of a transaction; hint: use set, add, remove, pixels, id or view"
            ),
        ));
    }
    let edit = editor
        .edit(&tx)
        .map_err(|e| fail(&kind_name(e.kind()), e.to_string()))?;
    Ok((edit, id))
}

/// An upload's parts: `{"layer": NAME, "x": X, "y": Y, "width": W, "height": H, "rgba": [BYTE,
/// ...]}`, `x` and `y` 0 when left out.
#[allow(clippy::type_complexity)]
fn pixels_of(v: &Value) -> Result<(String, u32, u32, u32, u32, Vec<u8>), String> {
    let Value::Object(o) = v else {
        return Err("pixels: expected an object with layer, width, height and rgba".into());
    };
    if let Some(k) = o
        .keys()
        .find(|k| !["layer", "x", "y", "width", "height", "rgba"].contains(&k.as_str()))
    {
        return Err(format!("pixels.{k}: not a part of an upload"));
    }
    let layer = o
        .get("layer")
        .and_then(Value::as_str)
        .ok_or("pixels.layer: expected the pixels layer's name")?
        .to_owned();
    let num = |k: &str, default: Option<u32>| match o.get(k) {
        None => default.ok_or(format!("pixels.{k}: missing")),
        Some(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(format!("pixels.{k}: expected a whole number, found {n}")),
    };
    let (x, y) = (num("x", Some(0))?, num("y", Some(0))?);
    let (w, h) = (num("width", None)?, num("height", None)?);
    let Some(Value::Array(a)) = o.get("rgba") else {
        return Err("pixels.rgba: expected an array of bytes, 4 a pixel".into());
    };
    let rgba = a
        .iter()
        .enumerate()
        .map(|(i, b)| {
            b.as_u64()
                .and_then(|b| u8::try_from(b).ok())
                .ok_or(format!("pixels.rgba[{i}]: expected a byte, found {b}"))
        })
        .collect::<Result<Vec<u8>, String>>()?;
    Ok((layer, x, y, w, h, rgba))
}

/// Reads `path` (`-`: standard input) line by line, sending each good edit on `edits` and
/// answering each refusal; returns at the end of the input or when the run has ended.
fn read(
    path: &Path,
    mut editor: Editor,
    edits: crossbeam_channel::Sender<Edit>,
    waiting: Waiting,
) -> anyhow::Result<()> {
    let input: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(path)
            .with_context(|| format!("--control: cannot open {}", path.display()))?;
        Box::new(std::io::BufReader::new(f))
    };
    let mut input = std::io::Read::take(input, 0);
    let mut line = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        input.set_limit(MAX_LINE as u64 + 1);
        let n = input
            .read_until(b'\n', &mut buf)
            .context("--control: reading")?;
        if n == 0 {
            return Ok(());
        }
        line += 1;
        if buf.len() > MAX_LINE && !buf.ends_with(b"\n") {
            // Skip the rest of the long line.
            loop {
                buf.clear();
                input.set_limit(MAX_LINE as u64);
                let m = input
                    .read_until(b'\n', &mut buf)
                    .context("--control: reading")?;
                if m == 0 || buf.ends_with(b"\n") {
                    break;
                }
            }
            answer(refused(
                line,
                None,
                "too big",
                format!("the line is over {MAX_LINE} bytes"),
            ));
            continue;
        }
        let Ok(text) = std::str::from_utf8(&buf) else {
            answer(refused(
                line,
                None,
                "malformed",
                "the line is not UTF-8".into(),
            ));
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match edit_of(&mut editor, text) {
            Ok((edit, id)) => {
                let version = edit.version;
                if let Ok(mut w) = waiting.lock() {
                    w.insert(version, (line, id.clone()));
                }
                if edits.send(edit).is_err() {
                    // The run has ended; its answers are out already.
                    if let Ok(mut w) = waiting.lock() {
                        w.remove(&version);
                    }
                    answer(refused(line, id, "not shown", "the run has ended".into()));
                    return Ok(());
                }
            }
            Err((id, kind, error)) => answer(refused(line, id, &kind, error)),
        }
    }
}

/// Starts reading `path` on a thread of its own; returns where its edits arrive, where the run
/// tells which are on screen, and the thread that answers them (it ends when the run drops its
/// end of `applied`).
pub fn start(
    path: &Path,
    editor: Editor,
) -> (
    crossbeam_channel::Receiver<Edit>,
    crossbeam_channel::Sender<Applied>,
    std::thread::JoinHandle<()>,
) {
    // A run busy starting a child takes no edits meanwhile: the reader waits, and so does
    // whoever writes the lines, instead of the edits piling up.
    let (edits_tx, edits_rx) = crossbeam_channel::bounded(EDITS_QUEUE);
    let (applied_tx, applied_rx) = crossbeam_channel::unbounded::<Applied>();
    let waiting: Waiting = Arc::default();
    let path = path.to_path_buf();
    let w = Arc::clone(&waiting);
    let _reader = std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            if let Err(e) = read(&path, editor, edits_tx, w) {
                tracing::error!("{e:#}");
            }
        });
    let answers = std::thread::spawn(move || {
        for a in applied_rx {
            let entry = waiting.lock().ok().and_then(|mut w| w.remove(&a.version));
            let (line, id) = entry.unwrap_or((0, None));
            let mut v = match a.frame {
                Some(frame) => {
                    json!({"ok": true, "line": line, "version": a.version, "frame": frame})
                }
                None => refused(
                    line,
                    None,
                    "superseded",
                    format!(
                        "edit {} was replaced by a new scene before it was shown",
                        a.version
                    ),
                ),
            };
            if let Some(id) = id {
                v["id"] = id;
            }
            answer(v);
        }
        // The run is over: what it never showed is answered too.
        let left = waiting
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default();
        for (version, (line, id)) in left {
            let mut v = refused(
                line,
                id,
                "not shown",
                format!("the run ended before edit {version} was on screen"),
            );
            v["version"] = json!(version);
            answer(v);
        }
    });
    (edits_rx, applied_tx, answers)
}
