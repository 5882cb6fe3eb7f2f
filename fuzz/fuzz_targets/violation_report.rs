//! Sandbox violation reports: the fixed-size record a trapped call produces, decoded as the
//! launcher decodes it, and the call named for the log and the summary.
#![no_main]

use libfuzzer_sys::fuzz_target;
use triptych_sys::seccomp::{TrapRecord, RECORD_LEN};

fuzz_target!(|data: &[u8]| {
    for chunk in data.chunks_exact(RECORD_LEN) {
        let Ok(b) = <&[u8; RECORD_LEN]>::try_from(chunk) else {
            return;
        };
        if let Ok(r) = TrapRecord::decode(b) {
            let v = triptych_sandbox::report::Violation::new("renderer", r);
            let _ = v.call();
            let _ = v.to_string();
        }
    }
});
