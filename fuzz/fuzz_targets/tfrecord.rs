//! TFRecord files (framing, CRCs) and the `tf.train.Example` payloads inside them.
#![no_main]
use fovea_data::tfrecord::{Example, ReadOptions, TfRecordReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ex) = Example::from_bytes(data) {
        let _ = ex.to_element(fovea_core::Device::Cpu);
    }
    let path = std::env::temp_dir().join(format!("fovea-fuzz-{}.tfrecord", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let Ok(reader) = TfRecordReader::open(&path, &ReadOptions::default().max_record_bytes(1 << 16)) else { return };
    for record in reader.take(64) {
        let Ok(bytes) = record else { break };
        if let Ok(ex) = Example::from_bytes(&bytes) {
            let _ = ex.to_element(fovea_core::Device::Cpu);
        }
    }
});
