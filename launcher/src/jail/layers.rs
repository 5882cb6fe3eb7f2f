//! What the kernel lets the launcher set up for its children, found by trying it on short-lived
//! children: the user namespace, new network and IPC namespaces, dropped privileges, and whether
//! `pidfd_getfd` works between two confined siblings (the transport self-test). `doctor` shows
//! the same findings.

use super::*;

/// What a confined test child executes: a program that does nothing and exits 0. Not this
/// process's own executable: an application's `main` is not obliged to do nothing with
/// arguments it was never meant to get, and what is tried here is the confinement, which is done
/// before the exec.
const TEST_CHILD: &str = "/bin/true";

/// What the kernel lets this launcher set up for its children.
#[derive(Debug)]
pub struct Layers {
    /// The shared user namespace, when one could be created.
    pub userns: Option<OwnedFd>,
    /// Why there is none.
    pub userns_reason: Option<String>,
    /// New network and IPC namespaces for each child.
    pub namespaces: Namespaces,
    /// Why they are missing, if they are.
    pub namespaces_reason: Option<String>,
    /// Whether children are started with no capabilities (needed, and possible, when the
    /// launcher is root or the children join a user namespace).
    pub drop_privileges: bool,
}

impl Layers {
    /// The confinement of a child, without its fds.
    pub(super) fn confinement(&self) -> anyhow::Result<Confinement> {
        let mut c = Confinement::new().close_others().unshare(self.namespaces);
        if let Some(ns) = &self.userns {
            c = c.join_user_namespace(dup(ns)?);
        }
        if self.drop_privileges {
            c = c.drop_privileges();
        }
        Ok(c)
    }

    /// Finds out what works here, by trying it on a short-lived child.
    pub fn find() -> Layers {
        let root = triptych_sys::ids::running_as_root();
        let (userns, userns_reason) = match triptych_sys::userns::create() {
            Ok(ns) => (Some(ns), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let mut layers = Layers {
            drop_privileges: root || userns.is_some(),
            userns,
            userns_reason,
            namespaces: Namespaces {
                net: true,
                ipc: true,
            },
            namespaces_reason: None,
        };
        if let Err(e) = layers.try_spawn() {
            layers.namespaces = Namespaces::default();
            layers.namespaces_reason =
                Some(format!("unshare(CLONE_NEWNET | CLONE_NEWIPC) refused: {e}"));
            if let Err(e) = layers.try_spawn() {
                // Not even the user namespace can be joined: run without it.
                layers.userns_reason = Some(format!("joining the user namespace failed: {e}"));
                layers.userns = None;
                layers.drop_privileges = root;
            }
        }
        layers
    }

    /// Starts a child that does nothing ([`TEST_CHILD`]) under the confinement.
    fn try_spawn(&self) -> anyhow::Result<()> {
        let mut cmd = Command::new(TEST_CHILD);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.confinement()?.install(&mut cmd);
        let st = cmd.status().context("starting a confined test child")?;
        anyhow::ensure!(st.success(), "the confined test child exited with {st}");
        Ok(())
    }
}

/// Whether a confined child can take an fd from a confined sibling with `pidfd_getfd`, the way
/// the renderer takes from the GPU process; `Err` says why not. Used by `--transport auto` and
/// by `triptych doctor`.
pub fn pidfd_self_test(layers: &Layers) -> Result<String, String> {
    let yama = triptych_sys::proc::yama_ptrace_scope();
    if let Some(s) = yama.filter(|s| *s >= 2) {
        return Err(format!("Yama ptrace_scope is {s}: pidfd_getfd needs CAP_SYS_PTRACE, which the renderer does not hold"));
    }
    let target = (|| {
        let mut cmd = Command::new("/bin/sleep");
        cmd.arg("10")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        layers.confinement()?.any_ptracer().install(&mut cmd);
        cmd.spawn().context("starting the self-test target")
    })()
    .map_err(|e| format!("{e:#}"))?;
    let mut target = KillOnDrop(target);
    let pid = target.0.id() as i32;
    let mut cmd = Command::new(TEST_CHILD);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    layers
        .confinement()
        .map_err(|e| format!("{e:#}"))?
        .then_fetch_fd_from(pid, 0)
        .install(&mut cmd);
    let result = cmd.status();
    let _ = target.0.kill();
    let _ = target.0.wait();
    match result {
        Ok(st) if st.success() => Ok(format!(
            "a confined child took an fd from a confined sibling with pidfd_getfd ({})",
            match yama {
                None => "Yama not active".to_owned(),
                Some(s) => format!("Yama ptrace_scope {s}"),
            }
        )),
        Ok(st) => Err(format!("the self-test child exited with {st}")),
        Err(e) => Err(format!("pidfd_getfd from a confined sibling failed: {e}")),
    }
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Chooses the transport for `arg` in a run of `views` views, with the reason. Under Yama's
/// ptrace scope 1 a GPU process names one process at a time as its ptracer
/// (`PR_SET_PTRACER`): with several views only the last renderer named could take fds, so
/// `auto` takes `SCM_RIGHTS` there, and `pidfd` is refused.
pub fn choose_transport(
    arg: TransportChoice,
    layers: &Layers,
    views: usize,
) -> anyhow::Result<(Transport, String)> {
    let one_ptracer = views > 1 && triptych_sys::proc::yama_ptrace_scope() == Some(1);
    Ok(match arg {
        TransportChoice::Pidfd if one_ptracer => anyhow::bail!(
            "--transport pidfd cannot serve {views} views under Yama ptrace_scope 1 (a GPU process names one renderer at a time as its ptracer); use --transport scm-rights or auto"
        ),
        TransportChoice::Pidfd => (Transport::Pidfd, "--transport pidfd".to_owned()),
        TransportChoice::ScmRights => (Transport::ScmRights, "--transport scm-rights".to_owned()),
        TransportChoice::Auto if one_ptracer => (
            Transport::ScmRights,
            format!("auto: {views} views under Yama ptrace_scope 1, where a GPU process names one renderer at a time as its ptracer"),
        ),
        TransportChoice::Auto => match pidfd_self_test(layers) {
            Ok(why) => (Transport::Pidfd, format!("auto: {why}")),
            Err(why) => (
                Transport::ScmRights,
                format!("auto: pidfd_getfd does not work here ({why})"),
            ),
        },
    })
}

/// `triptych doctor`'s lines about the sandbox: `(name, ok, detail)`.
pub fn doctor_lines() -> Vec<(&'static str, bool, String)> {
    let layers = Layers::find();
    let mut v = vec![
        (
            "sandbox: user namespace",
            layers.userns.is_some(),
            match &layers.userns_reason {
                None => {
                    "the children share a user namespace of their own (identity map of this uid)"
                        .to_owned()
                }
                Some(r) => r.clone(),
            },
        ),
        (
            "sandbox: network and IPC namespaces",
            layers.namespaces.net && layers.namespaces.ipc,
            match &layers.namespaces_reason {
                None => "each child gets new, empty ones".to_owned(),
                Some(r) => r.clone(),
            },
        ),
        (
            "sandbox: capabilities",
            true,
            if layers.drop_privileges {
                "children start with none (locked securebits, empty bounding set)".to_owned()
            } else {
                "children hold none (unprivileged launcher)".to_owned()
            },
        ),
    ];
    let renderer =
        triptych_sandbox::renderer::policy(&triptych_sandbox::renderer::Params::example());
    let gpu = triptych_sandbox::gpu::policy(&triptych_sandbox::gpu::Params::example());
    let compiled = renderer
        .compile()
        .and_then(|r| gpu.compile().map(|g| (r, g)));
    v.push((
        "sandbox: seccomp policies",
        compiled.is_ok() && triptych_sys::proc::seccomp_actions().is_some_and(|a| a.contains("trap") && a.contains("errno")),
        match compiled {
            Ok((r, g)) => format!(
                "renderer {} rules in {} filters, gpu {} rules in {} filters; applied with TSYNC after bootstrap",
                renderer.rules.len() + renderer.refusals.len(),
                r.programs.len(),
                gpu.rules.len() + gpu.refusals.len(),
                g.programs.len()
            ),
            Err(e) => e.to_string(),
        },
    ));
    // A run of one view; several views under Yama's scope 1 take SCM_RIGHTS.
    let line = match choose_transport(TransportChoice::Auto, &layers, 1) {
        Ok((t, why)) => format!("--transport auto will use {}: {why}", t.as_str()),
        Err(e) => format!("{e:#}"),
    };
    v.push(("transport", true, line));
    v
}
