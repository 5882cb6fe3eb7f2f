//! `doctor`'s GPU lines: the children's binaries, the DRM devices, EGL and the extensions the
//! buffer and fence paths use, what `--buffers auto` will choose, and what the standby GPU
//! process costs.
//!
//! The EGL facts come from the GPU process binary itself (`triptych-gpu --egl-facts`, in
//! `gpu-process/src/start.rs`), which creates the context a run creates and runs the same
//! exporter selection, so the report cannot disagree with a run. Its JSON is kept as it came
//! (the report's `egl` and `auto` keys) and read here into [`Facts`] for the lines. It also
//! gives the memory the GPU process holds at that point, which is where a standby stops and
//! waits (the report's `standby` key, [`standby`]).
//!
//! The levels follow the engine: without a GL context the GPU process cannot start and the run
//! fails; every DMA-BUF piece that is missing makes `--buffers auto` fall back to shm buffers
//! (sealed memfds filled by read-back, fenced with points of a progress page), and a missing
//! native fence makes the DMA-BUF path fence another way (`gpu-process/src/export/dmabuf.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;
use ipc_protocol::frame::BufferKind;
use serde::Deserialize;

use super::report::Check;

/// What `triptych-gpu --egl-facts` prints.
#[derive(Debug, Default, Deserialize)]
pub struct Facts {
    /// Whether a GL context could be made.
    #[serde(default)]
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
    /// The display and context, when there is one.
    pub info: Option<Info>,
    /// What `--buffers auto` chose on it.
    #[serde(default)]
    pub auto: Auto,
    /// What the GPU process held with its context and exporter made, when there was a context.
    pub memory: Option<Memory>,
}

/// The GPU process's memory once prepared (its GL context and exporter made, nothing drawn):
/// what a warm standby GPU process holds.
#[derive(Debug, Default, Deserialize)]
pub struct Memory {
    /// Resident set (`VmRSS`), KiB.
    pub rss_kib: Option<u64>,
    /// Proportional set (`Pss` of `smaps_rollup`: shared pages divided among their users), KiB.
    pub pss_kib: Option<u64>,
    /// Why they could not be read.
    pub error: Option<String>,
}

/// The parts of the GPU process's `EglInfo` the report shows.
#[derive(Debug, Deserialize)]
pub struct Info {
    /// `device`, `surfaceless` or `gbm`.
    pub platform: String,
    /// `EGL_VENDOR`.
    pub egl_vendor: String,
    /// `EGL_VERSION`.
    pub egl_version: String,
    /// `GL_RENDERER`.
    pub gl_renderer: String,
    /// `GL_VERSION`.
    pub gl_version: String,
    /// `EGL_MESA_image_dma_buf_export` is offered.
    pub mesa_image_dma_buf_export: bool,
    /// `EGL_EXT_image_dma_buf_import` is offered.
    pub ext_image_dma_buf_import: bool,
    /// `EGL_EXT_image_dma_buf_import_modifiers` is offered.
    pub ext_image_dma_buf_import_modifiers: bool,
    /// `EGL_ANDROID_native_fence_sync` is offered.
    pub android_native_fence_sync: bool,
}

/// What `--buffers auto` chose, and why.
#[derive(Debug, Default, Deserialize)]
pub struct Auto {
    /// `dmabuf` or `shm` ([`BufferKind::as_str`]).
    pub backend: Option<String>,
    /// Why not `dmabuf`.
    pub reason: Option<String>,
    /// The fence's kind (`FenceKind::as_str`: `sync_file`, `progress`, `pipe`).
    pub fence: Option<String>,
    /// How the fence is made.
    pub fence_detail: Option<String>,
}

impl Auto {
    fn dmabuf(&self) -> bool {
        self.backend.as_deref() == Some(BufferKind::DmaBuf.as_str())
    }

    /// The fence as the run summary names it, with how it is made where known.
    fn fence(&self) -> String {
        match (&self.fence_detail, &self.fence) {
            (Some(d), _) => d.clone(),
            (None, Some(f)) => f.clone(),
            (None, None) => "none".to_owned(),
        }
    }
}

/// The fallback every missing DMA-BUF piece leads to.
const SHM_FALLBACK: &str = "buffers fall back to shm (sealed memfds filled by read-back)";

/// Where a run takes its children from, checked to hold both binaries; the directory when it
/// does.
pub fn children() -> (Check, Option<PathBuf>) {
    match triptych::machine::command_line_children_dir() {
        Ok(dir) => (
            Check::ok(
                "child binaries",
                format!(
                    "`triptych run` starts the separate binaries {} and {} in {} (an application \
                     built on the library starts its own executable in each role instead)",
                    ipc_protocol::Role::Gpu.binary(),
                    ipc_protocol::Role::Renderer.binary(),
                    dir.display()
                ),
            ),
            Some(dir),
        ),
        Err(e) => (
            Check::fail(
                "child binaries",
                format!("{e:#}; `triptych run` cannot start its children"),
            ),
            None,
        ),
    }
}

/// Asks the GPU process in `dir` for its EGL facts; on any failure, facts that say what failed.
pub fn ask(dir: Option<&Path>) -> serde_json::Value {
    let Some(dir) = dir else {
        return serde_json::json!({
            "ok": false,
            "error": "the GPU process's binary is missing (see the child binaries line)",
        });
    };
    let asked = (|| {
        let gpu = dir.join(ipc_protocol::Role::Gpu.binary());
        let o = Command::new(&gpu)
            .arg("--egl-facts")
            .env_clear()
            .envs(triptych::machine::child_environment())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running {} --egl-facts", gpu.display()))?;
        anyhow::ensure!(
            o.status.success(),
            "{} --egl-facts exited with {}",
            gpu.display(),
            o.status
        );
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .context("reading the GPU process's EGL facts")
    })();
    asked.unwrap_or_else(|e| serde_json::json!({ "ok": false, "error": format!("{e:#}") }))
}

/// The facts in `raw`, or facts that say why they cannot be read.
pub fn facts(raw: &serde_json::Value) -> Facts {
    serde_json::from_value(raw.clone()).unwrap_or_else(|e| Facts {
        error: Some(format!("the GPU process's EGL facts cannot be read: {e}")),
        ..Facts::default()
    })
}

/// The `/dev/dri` line.
pub fn dri(nodes: &[String], facts: &Facts) -> Check {
    if !nodes.is_empty() {
        return Check::ok("/dev/dri", nodes.join(", "));
    }
    Check::warn(
        "/dev/dri",
        if !facts.ok {
            "no DRM device: GL can only render in software".to_owned()
        } else if facts.auto.dmabuf() {
            "no DRM device nodes".to_owned()
        } else {
            format!("no DRM device: GL renders in software and {SHM_FALLBACK}")
        },
    )
}

/// The EGL line and, with a context, one line per extension the buffer and fence paths use;
/// `asked` says whether there was a GPU process to ask.
pub fn checks(facts: &Facts, asked: bool) -> Vec<Check> {
    if !asked {
        // The run fails on the missing binary already; what EGL would do is unknown.
        return vec![Check::fail(
            "EGL",
            format!(
                "not checked: {}",
                facts.error.as_deref().unwrap_or("no GPU process to ask")
            ),
        )];
    }
    let Some(i) = facts.info.as_ref().filter(|_| facts.ok) else {
        return vec![Check::fail(
            "EGL",
            format!(
                "no GL context through EGL: the GPU process cannot start, so `triptych run` \
                 fails: {}",
                facts.error.as_deref().unwrap_or("no reason given")
            ),
        )];
    };
    let auto = &facts.auto;
    let mut v = vec![Check::ok(
        "EGL",
        format!(
            "{}, {}, on the {} platform (EGL {}, {})",
            i.gl_renderer, i.gl_version, i.platform, i.egl_version, i.egl_vendor
        ),
    )];
    const EXPORT: &str = "EGL_MESA_image_dma_buf_export";
    v.push(match (i.mesa_image_dma_buf_export, auto.dmabuf()) {
        (true, true) => Check::ok(
            EXPORT,
            "offered: buffers are DMA-BUFs exported from GL (zero-copy)",
        ),
        (true, false) => Check::warn(
            EXPORT,
            format!(
                "offered, but {}: {SHM_FALLBACK}",
                auto.reason
                    .as_deref()
                    .unwrap_or("DMA-BUF export does not work here")
            ),
        ),
        (false, _) => Check::warn(EXPORT, format!("not offered: {SHM_FALLBACK}")),
    });
    const IMPORT: &str = "EGL_EXT_image_dma_buf_import";
    v.push(if i.ext_image_dma_buf_import {
        Check::ok(
            IMPORT,
            "offered: exportable layers are GBM buffers imported into GL",
        )
    } else {
        Check::warn(
            IMPORT,
            format!(
                "not offered: no layer can be placed on a GBM buffer for export, so \
                 {SHM_FALLBACK}"
            ),
        )
    });
    const MODIFIERS: &str = "EGL_EXT_image_dma_buf_import_modifiers";
    v.push(if i.ext_image_dma_buf_import_modifiers {
        Check::ok(MODIFIERS, "offered: imports name GBM's format modifier")
    } else {
        Check::warn(
            MODIFIERS,
            "not offered: imports fall back to naming no modifier (GBM's linear layout)",
        )
    });
    const FENCE: &str = "EGL_ANDROID_native_fence_sync";
    v.push(match (i.android_native_fence_sync, auto.dmabuf()) {
        (true, true) => Check::ok(FENCE, "offered: fences are the driver's own sync_files"),
        (true, false) => Check::ok(
            FENCE,
            format!(
                "offered; unused with shm buffers, fenced with {}",
                auto.fence()
            ),
        ),
        (false, _) => Check::warn(
            FENCE,
            format!("not offered: fences fall back to {}", auto.fence()),
        ),
    });
    v
}

/// The standby line: the standby GPU process is on by default, and what a warm one costs, from
/// the memory the GPU process held when it answered `--egl-facts` (the same start-up a standby
/// makes before it waits: the GL context and the exporter, nothing drawn). Always ok: a run
/// with no standby, or whose standby dies, starts its GPU processes cold.
pub fn standby(facts: &Facts) -> Check {
    const NAME: &str = "standby GPU process";
    const ON: &str = "on by default (--standby off to turn off)";
    let mib = |kib: u64| kib as f64 / 1024.0;
    let memory = facts.memory.as_ref();
    let detail = match memory.map(|m| (m.rss_kib, m.pss_kib)) {
        // A page's share is divided among the processes that map it at that moment: the
        // check's GPU process shares its libraries with fewer than a standby does, which has
        // the running GPU process beside it.
        Some((Some(rss), Some(pss))) => format!(
            "{ON}; a warm one holds about {:.0} MiB resident, {:.0} MiB proportional (measured \
             with the EGL check); the proportional share depends on what else maps the same \
             libraries: a run's summary gives a standby's own",
            mib(rss),
            mib(pss)
        ),
        Some((Some(rss), None)) => format!(
            "{ON}; a warm one holds about {:.0} MiB resident (measured with the EGL check; its \
             proportional share cannot be read here: no /proc/PID/smaps_rollup)",
            mib(rss)
        ),
        _ => format!(
            "{ON}; what a warm one holds was not measured: {}",
            memory
                .and_then(|m| m.error.as_deref())
                .unwrap_or("the EGL check made no GL context")
        ),
    };
    Check::ok(NAME, detail)
}

/// The standby's memory for the JSON report: whether it is on by default and what a warm one
/// holds, KiB (null where not measured).
pub fn standby_json(facts: &Facts) -> serde_json::Value {
    let m = facts.memory.as_ref();
    serde_json::json!({
        "default": "on",
        "rss_kib": m.and_then(|m| m.rss_kib),
        "pss_kib": m.and_then(|m| m.pss_kib),
        "measured_by": "triptych-gpu --egl-facts, with its GL context and exporter made",
    })
}

/// The lines after the checks: what `--buffers auto` will use, and the fences.
pub fn choice(facts: &Facts) -> Vec<String> {
    let auto = &facts.auto;
    let backend = match (auto.backend.as_deref(), auto.reason.as_deref()) {
        (Some(b), Some(r)) => format!("{b}, because {r}"),
        (Some(b), None) if auto.dmabuf() => format!("{b}: DMA-BUF export works here"),
        (Some(b), None) => b.to_owned(),
        (None, _) => "nothing: the GPU process could not create a GL context".to_owned(),
    };
    let fences = match auto.backend {
        Some(_) => auto.fence(),
        None => "none".to_owned(),
    };
    vec![
        format!("--buffers auto will use: {backend}"),
        format!("fences: {fences}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::report::Level;

    /// The facts of an llvmpipe machine without `/dev/dri`, as `--egl-facts` prints them.
    fn llvmpipe() -> serde_json::Value {
        serde_json::json!({
            "ok": true,
            "info": {
                "platform": "device",
                "egl_vendor": "Mesa Project",
                "egl_version": "1.5",
                "gl_renderer": "llvmpipe (LLVM 15.0.6, 256 bits)",
                "gl_version": "OpenGL ES 3.2 Mesa 22.3.6",
                "mesa_image_dma_buf_export": false,
                "ext_image_dma_buf_import": false,
                "ext_image_dma_buf_import_modifiers": false,
                "android_native_fence_sync": false,
                "khr_fence_sync": true,
            },
            "auto": {
                "backend": "shm",
                "fence": "progress",
                "fence_detail": "progress page (a point stored once glReadPixels returned, futex wake)",
                "reason": "DMA-BUF export unavailable: no EGL_MESA_image_dma_buf_export",
            },
        })
    }

    #[test]
    fn software_gl_without_dri_warns_and_names_shm() {
        let f = facts(&llvmpipe());
        let d = dri(&[], &f);
        assert_eq!(d.level, Level::Warn);
        assert!(
            d.detail.contains("fall back to shm (sealed memfds"),
            "{}",
            d.detail
        );
        let c = checks(&f, true);
        assert_eq!(c[0].name, "EGL");
        assert_eq!(c[0].level, Level::Ok);
        assert_eq!(
            c[0].detail,
            "llvmpipe (LLVM 15.0.6, 256 bits), OpenGL ES 3.2 Mesa 22.3.6, on the device \
             platform (EGL 1.5, Mesa Project)"
        );
        for check in &c[1..] {
            assert_eq!(check.level, Level::Warn, "{check:?}");
            assert!(
                check.detail.contains("fall"),
                "no fallback named: {check:?}"
            );
        }
        let fence = c.iter().find(|c| c.name == "EGL_ANDROID_native_fence_sync");
        let fence = fence.expect("a fence line");
        assert!(
            fence.detail.contains("fences fall back to progress"),
            "{}",
            fence.detail
        );
        let lines = choice(&f);
        assert!(lines[0].starts_with("--buffers auto will use: shm, because "));
        assert_eq!(
            lines[1],
            "fences: progress page (a point stored once glReadPixels returned, futex wake)"
        );
    }

    #[test]
    fn a_dmabuf_machine_is_all_ok() {
        let mut raw = llvmpipe();
        for ext in [
            "mesa_image_dma_buf_export",
            "ext_image_dma_buf_import",
            "ext_image_dma_buf_import_modifiers",
            "android_native_fence_sync",
        ] {
            raw["info"][ext] = true.into();
        }
        raw["auto"] = serde_json::json!({
            "backend": "dmabuf",
            "fence": "sync_file",
            "fence_detail": "sync_file (EGL_ANDROID_native_fence_sync)",
            "reason": null,
        });
        let f = facts(&raw);
        assert_eq!(dri(&["/dev/dri/renderD128".into()], &f).level, Level::Ok);
        for c in checks(&f, true) {
            assert_eq!(c.level, Level::Ok, "{c:?}");
        }
        assert_eq!(
            choice(&f)[0],
            "--buffers auto will use: dmabuf: DMA-BUF export works here"
        );
    }

    #[test]
    fn the_standby_line_gives_what_a_warm_one_holds() {
        let mut raw = llvmpipe();
        raw["memory"] = serde_json::json!({ "rss_kib": 61_440, "pss_kib": 20_480 });
        let f = facts(&raw);
        let c = standby(&f);
        assert_eq!((c.name, c.level), ("standby GPU process", Level::Ok));
        assert_eq!(
            c.detail,
            "on by default (--standby off to turn off); a warm one holds about 60 MiB resident, \
             20 MiB proportional (measured with the EGL check); the proportional share depends \
             on what else maps the same libraries: a run's summary gives a standby's own"
        );
        let j = standby_json(&f);
        assert_eq!(
            (j["rss_kib"].as_u64(), j["pss_kib"].as_u64()),
            (Some(61_440), Some(20_480))
        );
        // Without a context there is nothing measured, and the line says so, still ok.
        let f = facts(&serde_json::json!({ "ok": false, "error": "no EGL" }));
        let c = standby(&f);
        assert_eq!(c.level, Level::Ok);
        assert!(
            c.detail
                .contains("not measured: the EGL check made no GL context"),
            "{}",
            c.detail
        );
        assert!(standby_json(&f)["rss_kib"].is_null());
    }

    #[test]
    fn no_gl_context_fails_naming_egl() {
        let raw = serde_json::json!({
            "ok": false,
            "error": "no EGL platform gave an OpenGL ES 3 context; tried: [device platform: \
                      libEGL.so.1 could not be loaded]",
        });
        let f = facts(&raw);
        let c = checks(&f, true);
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].name, c[0].level), ("EGL", Level::Fail));
        assert!(c[0].detail.contains("libEGL.so.1"), "{}", c[0].detail);
        assert_eq!(
            choice(&f),
            [
                "--buffers auto will use: nothing: the GPU process could not create a GL context",
                "fences: none"
            ]
        );
        // Facts that cannot be read fail the same way, saying so.
        let f = facts(&serde_json::json!({ "ok": "yes" }));
        let c = checks(&f, true);
        assert_eq!(c[0].level, Level::Fail);
        assert!(c[0].detail.contains("cannot be read"), "{}", c[0].detail);
        // Without a GPU process to ask, the line says that EGL was not checked, and why.
        let c = checks(&facts(&ask(None)), false);
        assert_eq!(c[0].level, Level::Fail);
        assert!(c[0].detail.starts_with("not checked: "), "{}", c[0].detail);
        assert!(c[0].detail.contains("child binaries"), "{}", c[0].detail);
    }
}
