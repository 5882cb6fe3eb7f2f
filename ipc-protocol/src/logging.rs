//! Logging set-up, the same in all three processes: `tracing` to stderr, filtered by
//! `TRIPTYCH_LOG` (an `EnvFilter` directive such as `debug` or `warn,launcher=debug`), or by the
//! process's own default when it is unset or does not parse. Colours only on a terminal, and
//! not with `NO_COLOR` set (<https://no-color.org>): a log written to a file stays plain text.

/// The variable that sets the log filter in every process.
pub const LOG_ENV: &str = "TRIPTYCH_LOG";

/// Installs the subscriber; `default` is the filter used without a valid `TRIPTYCH_LOG`.
pub fn init(default: &str) {
    init_with_writer(default, std::io::stderr);
}

/// As [`init`], with the lines written through `writer` (which writes to stderr in its own way:
/// the launcher's makes way for its progress line). Colours follow whether stderr is a terminal.
pub fn init_with_writer<W>(default: &str, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env(LOG_ENV)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(writer)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .with_target(false)
        .init();
}
