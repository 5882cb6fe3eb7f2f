//! `triptych`: the command line of the launcher ([`triptych_cli::command`]).

#![forbid(unsafe_code)]

fn main() {
    triptych_cli::command::main_with(None)
}
