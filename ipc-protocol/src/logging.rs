//! Logging set-up, the same in all three processes: `tracing` to stderr, filtered by
//! `TRIPTYCH_LOG` (an `EnvFilter` directive such as `debug` or `warn,launcher=debug`), or by the
//! process's own default when it is unset or does not parse. Colours only on a terminal, and
//! not with `NO_COLOR` set (<https://no-color.org>): a log written to a file stays plain text.

/// The variable that sets the log filter in every process.
pub const LOG_ENV: &str = "TRIPTYCH_LOG";

/// Installs the subscriber; `default` is the filter used without a valid `TRIPTYCH_LOG`.
pub fn init(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env(LOG_ENV)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .with_target(false)
        .init();
}
