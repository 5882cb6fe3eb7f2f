//! Reading a trace file back (tests, tools, the summary).
//!
//! [`parse_chrome_json`] accepts exactly what
//! [`write_chrome_json`](crate::write_chrome_json) produces and turns it back
//! into the [`Event`]s and [`ProcessInfo`]s it came from, nanosecond for
//! nanosecond. It validates as it goes and stops at the first problem, naming
//! the entry index, its phase and the field (see [`TraceError`]). Traces from
//! other producers are refused at `otherData`: they carry no clock origin.

use std::collections::BTreeMap;
use std::io::{BufReader, Read};

use serde_json::{Map, Value};

use super::{
    us_to_ns, CLOCK_NAME, COUNTER_VALUE_ARG, FLOW_CAT, FLOW_NAME, THREAD_ARG, VIEW_TRACK_BASE,
};
use crate::chrome::write::ProcessInfo;
use crate::error::TraceError;
use crate::event::{ArgValue, Args, Event, EventKind, InstantScope, Marker, Stage, FRAME_ARG};

/// A trace file, back in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedTrace {
    /// Spans, instants and counters, in file order, with absolute
    /// `CLOCK_MONOTONIC` timestamps.
    pub events: Vec<Event>,
    /// Processes in their viewer order (`process_sort_index`).
    pub processes: Vec<ProcessInfo>,
    /// The flow events, in file order.
    pub flows: Vec<FlowRecord>,
    /// The `CLOCK_MONOTONIC` nanosecond that `ts` 0 stands for.
    pub clock_origin_ns: u64,
}

/// Which link of a frame's arrow chain a flow event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowPhase {
    /// `ph: "s"`, the chain's first step.
    Start,
    /// `ph: "t"`, a middle step.
    Step,
    /// `ph: "f"`, the last step.
    End,
}

/// One flow event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowRecord {
    /// Its place in the chain.
    pub phase: FlowPhase,
    /// The flow id: the frame id, with its view above bit 48 for views other than the first
    /// ([`flow_id`](super::flow_id)).
    pub frame: u64,
    /// The process of the span it binds to.
    pub pid: u32,
    /// The track of the span it binds to: its thread, or its view's
    /// ([`VIEW_TRACK_BASE`](super::VIEW_TRACK_BASE)).
    pub tid: u32,
    /// Its timestamp, the start of that span.
    pub ts_ns: u64,
}

/// Reads a trace written by [`write_chrome_json`](crate::write_chrome_json).
///
/// # Errors
///
/// [`TraceError::Json`] when the input is not JSON, [`TraceError::TopLevel`]
/// for a missing or wrong `traceEvents`, `displayTimeUnit` or `otherData`, and
/// [`TraceError::Event`] for the first malformed entry.
pub fn parse_chrome_json<R: Read>(reader: R) -> Result<ParsedTrace, TraceError> {
    let root: Value = serde_json::from_reader(BufReader::new(reader))?;
    let Value::Object(root) = root else {
        return Err(top(
            "(root)",
            format!("must be an object, found {}", kind_of(&root)),
        ));
    };

    match root.get("displayTimeUnit") {
        None => {}
        Some(Value::String(unit)) if unit == "ms" => {}
        Some(other) => {
            return Err(top(
                "displayTimeUnit",
                format!("must be \"ms\" (microsecond timestamps), found {other}"),
            ))
        }
    }

    let Some(other) = root.get("otherData") else {
        return Err(top(
            "otherData",
            "is missing; it holds the clock origin".to_owned(),
        ));
    };
    let clock = other.get("clock");
    if clock.and_then(Value::as_str) != Some(CLOCK_NAME) {
        return Err(top(
            "otherData.clock",
            format!("must be {CLOCK_NAME:?}, found {}", show(clock)),
        ));
    }
    let origin_value = other.get("clock_origin_ns");
    let Some(clock_origin_ns) = origin_value.and_then(Value::as_u64) else {
        return Err(top(
            "otherData.clock_origin_ns",
            format!(
                "must be a non-negative integer, found {}",
                show(origin_value)
            ),
        ));
    };

    let Some(entries) = root.get("traceEvents") else {
        return Err(top("traceEvents", "is missing".to_owned()));
    };
    let Value::Array(entries) = entries else {
        return Err(top(
            "traceEvents",
            format!("must be an array, found {}", kind_of(entries)),
        ));
    };

    let mut reader = Reader {
        origin: clock_origin_ns,
        events: Vec::new(),
        flows: Vec::new(),
        processes: BTreeMap::new(),
        next_order: 0,
    };
    for (index, entry) in entries.iter().enumerate() {
        reader.entry(index, entry)?;
    }
    let processes = reader.finish_processes()?;
    Ok(ParsedTrace {
        events: reader.events,
        processes,
        flows: reader.flows,
        clock_origin_ns,
    })
}

fn top(field: &'static str, problem: String) -> TraceError {
    TraceError::TopLevel { field, problem }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "nothing".to_owned(), Value::to_string)
}

/// A process being put together from its metadata entries.
struct ProcessDraft {
    /// Order of first appearance, the tie-break for equal sort indices.
    order: usize,
    name: Option<String>,
    sort_index: Option<i64>,
    threads: Vec<(u32, String)>,
    /// The first entry that mentioned the process, for error messages.
    first_index: usize,
}

struct Reader {
    origin: u64,
    events: Vec<Event>,
    flows: Vec<FlowRecord>,
    processes: BTreeMap<u32, ProcessDraft>,
    next_order: usize,
}

/// The entry being read, for naming it in errors.
struct Entry<'v> {
    index: usize,
    ph: &'v str,
    obj: &'v Map<String, Value>,
}

impl Entry<'_> {
    fn err(&self, field: impl Into<String>, problem: String) -> TraceError {
        TraceError::Event {
            index: self.index,
            ph: self.ph.to_owned(),
            field: field.into(),
            problem,
        }
    }

    fn get(&self, field: &str) -> Result<&Value, TraceError> {
        self.obj
            .get(field)
            .ok_or_else(|| self.err(field, "is missing".to_owned()))
    }

    fn str(&self, field: &str) -> Result<&str, TraceError> {
        let value = self.get(field)?;
        value
            .as_str()
            .ok_or_else(|| self.err(field, format!("must be a string, found {value}")))
    }

    fn u32(&self, field: &str) -> Result<u32, TraceError> {
        let value = self.get(field)?;
        value
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| {
                self.err(
                    field,
                    format!("must be an integer in 0..2^32, found {value}"),
                )
            })
    }

    fn u64(&self, field: &str) -> Result<u64, TraceError> {
        let value = self.get(field)?;
        value.as_u64().ok_or_else(|| {
            self.err(
                field,
                format!("must be a non-negative integer, found {value}"),
            )
        })
    }

    /// A `ts` or `dur` in microseconds, as nanoseconds.
    fn micros(&self, field: &str) -> Result<u64, TraceError> {
        let value = self.get(field)?;
        value.as_f64().and_then(us_to_ns).ok_or_else(|| {
            self.err(
                field,
                format!("must be a non-negative number of microseconds, found {value}"),
            )
        })
    }

    /// An absolute timestamp from the relative `ts`.
    fn ts(&self, origin: u64) -> Result<u64, TraceError> {
        let rel = self.micros("ts")?;
        origin.checked_add(rel).ok_or_else(|| {
            self.err(
                "ts",
                format!("{rel} ns past the origin {origin} ns overflows 64 bits"),
            )
        })
    }

    fn args(&self) -> Result<Option<&Map<String, Value>>, TraceError> {
        match self.obj.get("args") {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(other) => Err(self.err("args", format!("must be an object, found {other}"))),
        }
    }

    /// The thread that recorded a span or instant drawn on track `tid`, and its arguments
    /// without the one that says so: on a view's track, its `tid` argument (which must be
    /// there, and the event's view the track's); elsewhere the track's own.
    fn thread(&self, tid: u32, mut args: Args) -> Result<(u32, Args), TraceError> {
        if tid < VIEW_TRACK_BASE {
            return Ok((tid, args));
        }
        let thread = match args.remove(THREAD_ARG) {
            Some(ArgValue::Int(t)) => u32::try_from(t).ok().filter(|t| *t < VIEW_TRACK_BASE),
            _ => None,
        }
        .ok_or_else(|| {
            self.err(
                format!("args.{THREAD_ARG}"),
                format!(
                    "an event on a view's track (tid {tid}) must name the thread that recorded it"
                ),
            )
        })?;
        let view = tid - VIEW_TRACK_BASE;
        if crate::event::view_in(&args) != view {
            return Err(self.err(
                format!("args.{}", crate::event::VIEW_ARG),
                format!("an event on view {view}'s track must be of view {view}"),
            ));
        }
        Ok((thread, args))
    }

    /// The `args` of a span or instant: the frame id and the free arguments.
    fn event_args(&self) -> Result<(Option<u64>, Args), TraceError> {
        let mut frame = None;
        let mut args = Args::new();
        let Some(map) = self.args()? else {
            return Ok((frame, args));
        };
        for (key, value) in map {
            let field = || format!("args.{key}");
            if key == FRAME_ARG {
                frame = Some(value.as_u64().ok_or_else(|| {
                    self.err(
                        field(),
                        format!("must be a non-negative integer frame id, found {value}"),
                    )
                })?);
                continue;
            }
            let arg = match value {
                Value::Bool(b) => ArgValue::Bool(*b),
                Value::String(s) => ArgValue::Str(s.clone()),
                Value::Number(n) => {
                    if let Some(i) = n.as_i64() {
                        ArgValue::Int(i)
                    } else if n.is_f64() {
                        ArgValue::Float(n.as_f64().unwrap_or(f64::NAN))
                    } else {
                        return Err(self.err(
                            field(),
                            format!("integer {n} does not fit in a signed 64-bit value"),
                        ));
                    }
                }
                Value::Null | Value::Array(_) | Value::Object(_) => {
                    return Err(self.err(
                        field(),
                        format!(
                            "must be an integer, float, boolean or string, found {}",
                            kind_of(value)
                        ),
                    ))
                }
            };
            args.insert(key.clone(), arg);
        }
        Ok((frame, args))
    }
}

impl Reader {
    fn entry(&mut self, index: usize, entry: &Value) -> Result<(), TraceError> {
        let Value::Object(obj) = entry else {
            return Err(TraceError::Event {
                index,
                ph: "?".to_owned(),
                field: "(entry)".to_owned(),
                problem: format!("must be an object, found {}", kind_of(entry)),
            });
        };
        let ph = match obj.get("ph") {
            Some(Value::String(ph)) => ph.as_str(),
            other => {
                return Err(TraceError::Event {
                    index,
                    ph: "?".to_owned(),
                    field: "ph".to_owned(),
                    problem: format!("must be a phase string, found {}", show(other)),
                })
            }
        };
        let e = Entry { index, ph, obj };
        let pid = e.u32("pid")?;
        let tid = e.u32("tid")?;
        match ph {
            "M" => self.metadata(&e, pid, tid),
            "X" => {
                let name = e.str("name")?;
                let stage = Stage::from_name(name)
                    .ok_or_else(|| e.err("name", format!("{name:?} is not a handoff stage")))?;
                let ts_ns = e.ts(self.origin)?;
                let dur_ns = e.micros("dur")?;
                let (frame, args) = e.event_args()?;
                let (tid, args) = e.thread(tid, args)?;
                self.events.push(Event {
                    kind: EventKind::Span { stage, dur_ns },
                    ts_ns,
                    pid,
                    tid,
                    frame,
                    args,
                });
                Ok(())
            }
            "i" => {
                let name = e.str("name")?;
                let marker = Marker::from_name(name)
                    .ok_or_else(|| e.err("name", format!("{name:?} is not a known marker")))?;
                let scope = match e.obj.get("s") {
                    // The format's default scope is the thread.
                    None => InstantScope::Thread,
                    Some(value) => value
                        .as_str()
                        .and_then(InstantScope::from_code)
                        .ok_or_else(|| {
                            e.err("s", format!("must be \"t\", \"p\" or \"g\", found {value}"))
                        })?,
                };
                let ts_ns = e.ts(self.origin)?;
                let (frame, args) = e.event_args()?;
                let (tid, args) = e.thread(tid, args)?;
                self.events.push(Event {
                    kind: EventKind::Instant { marker, scope },
                    ts_ns,
                    pid,
                    tid,
                    frame,
                    args,
                });
                Ok(())
            }
            "C" => {
                let name = e.str("name")?.to_owned();
                let ts_ns = e.ts(self.origin)?;
                let args = e
                    .args()?
                    .ok_or_else(|| e.err("args", "is missing; it holds the value".to_owned()))?;
                let value = match args.get(COUNTER_VALUE_ARG) {
                    Some(v) if args.len() == 1 => v.as_f64().ok_or_else(|| {
                        e.err("args.value", format!("must be a number, found {v}"))
                    })?,
                    _ => {
                        let keys: Vec<&String> = args.keys().collect();
                        return Err(e.err(
                            "args",
                            format!("must hold exactly {COUNTER_VALUE_ARG:?}, found keys {keys:?}"),
                        ));
                    }
                };
                self.events.push(Event {
                    kind: EventKind::Counter { name, value },
                    ts_ns,
                    pid,
                    tid,
                    frame: None,
                    args: Args::new(),
                });
                Ok(())
            }
            "s" | "t" | "f" => {
                let phase = match ph {
                    "s" => FlowPhase::Start,
                    "t" => FlowPhase::Step,
                    _ => FlowPhase::End,
                };
                for (field, expected) in [("cat", FLOW_CAT), ("name", FLOW_NAME)] {
                    let found = e.str(field)?;
                    if found != expected {
                        return Err(e.err(
                            field,
                            format!("must be {expected:?} for a frame flow, found {found:?}"),
                        ));
                    }
                }
                if phase == FlowPhase::End {
                    let bp = e.str("bp")?;
                    if bp != "e" {
                        return Err(e.err(
                            "bp",
                            format!("must be \"e\" (bind to the enclosing slice), found {bp:?}"),
                        ));
                    }
                }
                let frame = e.u64("id")?;
                let ts_ns = e.ts(self.origin)?;
                self.flows.push(FlowRecord {
                    phase,
                    frame,
                    pid,
                    tid,
                    ts_ns,
                });
                Ok(())
            }
            other => Err(e.err(
                "ph",
                format!("{other:?} is not a phase this format uses (M, X, i, C, s, t, f)"),
            )),
        }
    }

    fn metadata(&mut self, e: &Entry<'_>, pid: u32, tid: u32) -> Result<(), TraceError> {
        let name = e.str("name")?;
        let args = e
            .args()?
            .ok_or_else(|| e.err("args", "is missing".to_owned()))?;
        let next_order = &mut self.next_order;
        let draft = self.processes.entry(pid).or_insert_with(|| {
            *next_order += 1;
            ProcessDraft {
                order: *next_order,
                name: None,
                sort_index: None,
                threads: Vec::new(),
                first_index: e.index,
            }
        });
        let text_arg = |key: &str| -> Result<String, TraceError> {
            match args.get(key) {
                Some(Value::String(s)) => Ok(s.clone()),
                other => Err(e.err(
                    format!("args.{key}"),
                    format!("must be a string, found {}", show(other)),
                )),
            }
        };
        match name {
            "process_name" => {
                if let Some(previous) = &draft.name {
                    return Err(e.err("name", format!("pid {pid} is already named {previous:?}")));
                }
                draft.name = Some(text_arg("name")?);
            }
            "process_sort_index" => {
                let value = args.get("sort_index");
                draft.sort_index = Some(value.and_then(Value::as_i64).ok_or_else(|| {
                    e.err(
                        "args.sort_index",
                        format!("must be an integer, found {}", show(value)),
                    )
                })?);
            }
            // The views' tracks are named by the writer from the events on them.
            "thread_name" if tid >= VIEW_TRACK_BASE => {}
            "thread_name" => {
                if draft.threads.iter().any(|(known, _)| *known == tid) {
                    return Err(e.err("tid", format!("thread {tid} of pid {pid} is already named")));
                }
                draft.threads.push((tid, text_arg("name")?));
            }
            other => {
                return Err(e.err(
                    "name",
                    format!("{other:?} is not process_name, process_sort_index or thread_name"),
                ))
            }
        }
        Ok(())
    }

    fn finish_processes(&mut self) -> Result<Vec<ProcessInfo>, TraceError> {
        let mut drafts: Vec<(u32, ProcessDraft)> =
            std::mem::take(&mut self.processes).into_iter().collect();
        drafts.sort_by_key(|(_, d)| (d.sort_index.unwrap_or(i64::MAX), d.order));
        drafts
            .into_iter()
            .map(|(pid, draft)| {
                let name = draft.name.ok_or_else(|| TraceError::Event {
                    index: draft.first_index,
                    ph: "M".to_owned(),
                    field: "pid".to_owned(),
                    problem: format!("pid {pid} has metadata but no process_name entry"),
                })?;
                Ok(ProcessInfo {
                    pid,
                    name,
                    threads: draft.threads,
                })
            })
            .collect()
    }
}
