//! Writing the merged trace (the launcher's job).
//!
//! The launcher collects the batches every process drained, adds its own, and
//! calls [`write_chrome_json`] once with all of them and the list of
//! processes. Events are written in the order given (both viewers sort by
//! time), metadata first, the flow chains last.

use std::collections::BTreeSet;
use std::io::{self, BufWriter, Write};

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::{
    flow_id, ns_to_us, CLOCK_NAME, COUNTER_CAT, COUNTER_VALUE_ARG, FLOW_CAT, FLOW_NAME,
    INSTANT_CAT, SPAN_CAT, THREAD_ARG, VIEW_TRACK_BASE,
};
use crate::event::{ArgValue, Args, Event, EventKind, FRAME_ARG};

/// A process as the trace viewer labels it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The pid its events carry.
    pub pid: u32,
    /// Its role: `"launcher"`, `"gpu"` or `"renderer"` (the same name as its
    /// `PR_SET_NAME` and its seccomp policy).
    pub name: String,
    /// Names for its threads, by the tid its events carry.
    pub threads: Vec<(u32, String)>,
}

/// Writes `events` and `processes` as one Chrome trace-event JSON object to
/// `out` (see the [module docs](crate::chrome) for the shape). Processes are
/// listed in the viewer in the order given.
///
/// # Errors
///
/// `InvalidInput` (naming the event index or pid) for what the file could not
/// represent faithfully: an argument using the reserved key
/// [`FRAME_ARG`], a NaN or infinite float, a counter carrying a frame or
/// arguments, a pid listed twice; otherwise the writer's own I/O errors.
pub fn write_chrome_json<W: Write>(
    events: &[Event],
    processes: &[ProcessInfo],
    out: W,
) -> io::Result<()> {
    check_writable(events, processes)?;
    let origin = events.iter().map(|e| e.ts_ns).min().unwrap_or(0);
    let rel = |ts_ns: u64| ns_to_us(ts_ns - origin);

    let mut out = BufWriter::new(out);
    out.write_all(b"{\"displayTimeUnit\":\"ms\",\"otherData\":")?;
    serde_json::to_writer(
        &mut out,
        &OtherData {
            clock: CLOCK_NAME,
            clock_origin_ns: origin,
            producer: env!("CARGO_PKG_NAME"),
        },
    )?;
    out.write_all(b",\"traceEvents\":[")?;
    let mut rows = RowWriter {
        out: &mut out,
        first: true,
    };

    for (sort_index, process) in processes.iter().enumerate() {
        rows.write(&Row::metadata(
            "process_name",
            process.pid,
            0,
            RowArgs::Name(&process.name),
        ))?;
        rows.write(&Row::metadata(
            "process_sort_index",
            process.pid,
            0,
            RowArgs::SortIndex(sort_index),
        ))?;
        for (tid, name) in &process.threads {
            rows.write(&Row::metadata(
                "thread_name",
                process.pid,
                *tid,
                RowArgs::Name(name),
            ))?;
        }
    }
    // The views' tracks, in each process that recorded something of them.
    let tracks: BTreeSet<(u32, u32)> = events
        .iter()
        .map(|e| (e.pid, e.view()))
        .filter(|(_, view)| *view != 0)
        .collect();
    let names: Vec<String> = tracks.iter().map(|(_, v)| format!("view {v}")).collect();
    for ((pid, view), name) in tracks.iter().zip(&names) {
        rows.write(&Row::metadata(
            "thread_name",
            *pid,
            track(*view, 0),
            RowArgs::Name(name),
        ))?;
    }

    for event in events {
        let view = event.view();
        let thread = (view != 0).then_some(event.tid);
        let mut row = Row {
            name: "",
            cat: None,
            ph: "",
            ts: Some(rel(event.ts_ns)),
            dur: None,
            pid: event.pid,
            tid: track(view, event.tid),
            s: None,
            id: None,
            bp: None,
            args: None,
        };
        match &event.kind {
            EventKind::Span { stage, dur_ns } => {
                row.name = stage.name();
                row.cat = Some(SPAN_CAT);
                row.ph = "X";
                row.dur = Some(ns_to_us(*dur_ns));
                row.args = Some(RowArgs::Event {
                    frame: event.frame,
                    thread,
                    args: &event.args,
                });
            }
            EventKind::Instant { marker, scope } => {
                row.name = marker.name();
                row.cat = Some(INSTANT_CAT);
                row.ph = "i";
                row.s = Some(scope.code());
                row.args = Some(RowArgs::Event {
                    frame: event.frame,
                    thread,
                    args: &event.args,
                });
            }
            EventKind::Counter { name, value } => {
                row.name = name;
                row.cat = Some(COUNTER_CAT);
                row.ph = "C";
                row.args = Some(RowArgs::Counter(*value));
            }
        }
        rows.write(&row)?;
    }

    for (frame, chain) in crate::handoff::spans_by_frame(events) {
        if chain.len() < 2 {
            // An arrow needs two ends.
            continue;
        }
        let last = chain.len() - 1;
        for (position, span) in chain.iter().enumerate() {
            let (ph, bp) = match position {
                0 => ("s", None),
                p if p == last => ("f", Some("e")),
                _ => ("t", None),
            };
            rows.write(&Row {
                name: FLOW_NAME,
                cat: Some(FLOW_CAT),
                ph,
                ts: Some(rel(span.ts_ns)),
                dur: None,
                pid: span.pid,
                tid: track(frame.view, span.tid),
                s: None,
                id: Some(flow_id(frame.view, frame.frame)),
                bp,
                args: None,
            })?;
        }
    }

    out.write_all(b"]}\n")?;
    out.flush()
}

/// The track an event of `view` recorded by thread `tid` is drawn on: the thread's own for
/// the first view, the view's for the others.
fn track(view: u32, tid: u32) -> u32 {
    match view {
        0 => tid,
        v => VIEW_TRACK_BASE.saturating_add(v),
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Refuses what could not be written faithfully, before a byte is written.
fn check_writable(events: &[Event], processes: &[ProcessInfo]) -> io::Result<()> {
    let mut pids = BTreeSet::new();
    for process in processes {
        if !pids.insert(process.pid) {
            return Err(invalid(format!(
                "process pid {} is listed twice (second time as {:?})",
                process.pid, process.name
            )));
        }
    }
    for (index, event) in events.iter().enumerate() {
        match &event.kind {
            EventKind::Counter { name, value } => {
                if !value.is_finite() {
                    return Err(invalid(format!(
                        "event #{index}: counter {name:?} has value {value}, which JSON cannot hold"
                    )));
                }
                if event.frame.is_some() || !event.args.is_empty() {
                    return Err(invalid(format!(
                        "event #{index}: counter {name:?} carries a frame or arguments; \
                         viewers would draw each as a counter series"
                    )));
                }
            }
            EventKind::Span { .. } | EventKind::Instant { .. } => {
                if event.args.contains_key(THREAD_ARG) && event.view() != 0 {
                    return Err(invalid(format!(
                        "event #{index}: argument key {THREAD_ARG:?} is reserved, on a view's \
                         track, for the thread that recorded the event; rename the argument"
                    )));
                }
                if event.tid >= VIEW_TRACK_BASE {
                    return Err(invalid(format!(
                        "event #{index}: tid {} is in the views' tracks (from {VIEW_TRACK_BASE})",
                        event.tid
                    )));
                }
                if event.args.contains_key(FRAME_ARG) {
                    return Err(invalid(format!(
                        "event #{index}: argument key {FRAME_ARG:?} is reserved for the frame id; \
                         rename the argument"
                    )));
                }
                for (key, value) in &event.args {
                    if let ArgValue::Float(f) = value {
                        if !f.is_finite() {
                            return Err(invalid(format!(
                                "event #{index}: argument {key:?} is {f}, which JSON cannot hold"
                            )));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct OtherData {
    clock: &'static str,
    clock_origin_ns: u64,
    producer: &'static str,
}

/// One entry of `traceEvents`; `ts` comes early because older Perfetto
/// readers scan each entry's keys in order for it.
#[derive(Serialize)]
struct Row<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cat: Option<&'static str>,
    ph: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<f64>,
    pid: u32,
    tid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bp: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<RowArgs<'a>>,
}

impl<'a> Row<'a> {
    fn metadata(name: &'static str, pid: u32, tid: u32, args: RowArgs<'a>) -> Row<'a> {
        Row {
            name,
            cat: None,
            ph: "M",
            ts: None,
            dur: None,
            pid,
            tid,
            s: None,
            id: None,
            bp: None,
            args: Some(args),
        }
    }
}

/// The `args` object of one entry.
enum RowArgs<'a> {
    /// Spans and instants: the frame id first, the thread that recorded it (on a view's
    /// track), then the free-form arguments.
    Event {
        frame: Option<u64>,
        thread: Option<u32>,
        args: &'a Args,
    },
    /// Counters: the single series.
    Counter(f64),
    /// `process_name`, `thread_name`.
    Name(&'a str),
    /// `process_sort_index`.
    SortIndex(usize),
}

impl Serialize for RowArgs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RowArgs::Event {
                frame,
                thread,
                args,
            } => {
                let len = args.len() + usize::from(frame.is_some()) + usize::from(thread.is_some());
                let mut map = serializer.serialize_map(Some(len))?;
                if let Some(frame) = frame {
                    map.serialize_entry(FRAME_ARG, frame)?;
                }
                if let Some(thread) = thread {
                    map.serialize_entry(THREAD_ARG, thread)?;
                }
                for (key, value) in *args {
                    map.serialize_entry(key, &JsonArg(value))?;
                }
                map.end()
            }
            RowArgs::Counter(value) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry(COUNTER_VALUE_ARG, value)?;
                map.end()
            }
            RowArgs::Name(name) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("name", name)?;
                map.end()
            }
            RowArgs::SortIndex(index) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("sort_index", index)?;
                map.end()
            }
        }
    }
}

/// An argument as a bare JSON value (the derived form would tag it).
struct JsonArg<'a>(&'a ArgValue);

impl Serialize for JsonArg<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            ArgValue::Int(v) => serializer.serialize_i64(*v),
            ArgValue::Float(v) => serializer.serialize_f64(*v),
            ArgValue::Bool(v) => serializer.serialize_bool(*v),
            ArgValue::Str(v) => serializer.serialize_str(v),
        }
    }
}

struct RowWriter<'w, W: Write> {
    out: &'w mut W,
    first: bool,
}

impl<W: Write> RowWriter<'_, W> {
    fn write(&mut self, row: &Row<'_>) -> io::Result<()> {
        if self.first {
            self.first = false;
        } else {
            self.out.write_all(b",")?;
        }
        self.out.write_all(b"\n")?;
        serde_json::to_writer(&mut *self.out, row)?;
        Ok(())
    }
}
