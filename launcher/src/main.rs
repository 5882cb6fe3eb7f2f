//! `triptych`: the command line of the launcher (the library `triptych` does the work,
//! [`triptych::command`]).

#![forbid(unsafe_code)]

fn main() {
    triptych::command::main_with(None)
}
