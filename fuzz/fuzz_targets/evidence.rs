//! The renderer's sealed evidence against the GPU process (`ipc_protocol::seal`), judged as the
//! launcher judges it: either a `GpuEvidence` message decoded from the input (its seals mostly
//! fail, as a forger's would), or the input's bytes sealed with the judge's own key, one or two
//! descriptions, so that every check past the seals is reached: the decoder of the sealed body,
//! the epoch, generation and order checks, and the fence named. The first byte picks the mode.
#![no_main]

use ipc_protocol::channel::decode;
use ipc_protocol::messages::RendererToLauncher;
use ipc_protocol::seal::{Evidence, Finding, SealKey, Sealer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = SealKey([0x33; 32]);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let evidence = if mode & 1 == 0 {
        match decode::<RendererToLauncher>(rest, Vec::new()) {
            Ok((RendererToLauncher::GpuEvidence(e), _)) => e,
            _ => return,
        }
    } else {
        let mut sealer = Sealer::new(key.clone(), 9);
        let frames = if mode & 2 == 0 {
            vec![sealer.seal_body(rest.to_vec())]
        } else {
            let (a, b) = rest.split_at(rest.len() / 2);
            vec![sealer.seal_body(a.to_vec()), sealer.seal_body(b.to_vec())]
        };
        Evidence {
            epoch: 1,
            what: String::new(),
            frames,
            fence_of_layer: (mode & 4 != 0).then_some(u32::from(mode >> 3)),
        }
    };
    match evidence.judge(&key, 9, 1, 0) {
        // A fence to look at names a layer the last description has.
        Finding::Fence { seq, .. } => assert!(evidence.frames.iter().any(|f| f.seq == seq)),
        Finding::Lie(w) | Finding::Holds(w) | Finding::Unsealed(w) => assert!(!w.is_empty()),
    }
});
