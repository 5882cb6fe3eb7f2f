//! GPU process -> renderer: a frame message, decoded as the renderer decodes it (the sealed
//! envelope, then the description inside it), and every layer's description run through the
//! renderer's validators (shape with checked arithmetic, then every fd confined to the exporter's
//! window).
#![no_main]

use ipc_protocol::channel::decode;
use ipc_protocol::messages::GpuToRenderer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((GpuToRenderer::Frame(sealed), _)) = decode::<GpuToRenderer>(data, Vec::new()) {
        let Ok(f) = sealed.open() else {
            return;
        };
        for l in &f.layers {
            if let Ok(ends) = l.buffer.validate_shape() {
                for (i, end) in ends.iter().enumerate() {
                    let _ = ipc_protocol::Frame::<ipc_protocol::RemoteFd>::validate_extent(
                        i,
                        *end,
                        1 << 30,
                    );
                }
            }
            let _ = l.buffer.validate_remote(1234, 512, 768);
        }
    }
});
