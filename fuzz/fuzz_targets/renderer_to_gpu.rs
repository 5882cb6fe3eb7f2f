//! Renderer -> GPU process: a stream of release messages, split at each length byte, decoded as
//! the GPU process decodes them and checked against a ledger of buffers in flight the way its
//! pool checks them (right epoch, a buffer it holds, released once).
#![no_main]

use std::collections::HashSet;

use ipc_protocol::channel::decode;
use ipc_protocol::messages::RendererToGpu;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut in_flight: HashSet<(u32, u32)> = (0..9).map(|s| (s, 1)).collect();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (msg, next) = tail.split_at(n);
        rest = next;
        if let Ok((m, _)) = decode::<RendererToGpu>(msg, Vec::new()) {
            // The rule the GPU process's reader applies before it takes a release off the
            // socket, and the launcher to the one left there.
            if ipc_protocol::rules::release(&m, 1).is_err() {
                continue;
            }
            let RendererToGpu::Release { buffer, .. } = m;
            if !in_flight.remove(&(buffer.slot, buffer.generation)) {
                // A release of a buffer not in flight frees nothing.
                continue;
            }
        }
    }
});
