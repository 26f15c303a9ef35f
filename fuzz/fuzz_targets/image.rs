//! PNG and JPEG images, decoded under a 4 MiB pixel limit.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for channels in [0, 1, 3] {
        let _ = fovea_vision::image::decode_image_with_limit(data, channels, fovea_core::Device::Cpu, 4 << 20);
    }
});
