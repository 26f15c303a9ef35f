//! CIFAR-10/100 binary record files and their `.tar.gz` archives.
#![no_main]
use fovea_data::cifar::{self, CifarSource, Variant};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for variant in [Variant::Cifar10, Variant::Cifar100] {
        let _ = cifar::parse_records(data, variant, "fuzz.bin", fovea_core::Device::Cpu);
    }
    let dir = std::env::temp_dir().join(format!("fovea-fuzz-cifar-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::create_dir_all(&dir).is_ok() {
        let src = CifarSource { records: &[2, 1], ..cifar::CIFAR100 };
        let _ = cifar::install_archive(&src, &dir, data, "fuzz.tgz", false);
    }
});
