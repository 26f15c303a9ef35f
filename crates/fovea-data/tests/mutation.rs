//! A bounded, deterministic mutation test of the data readers: small valid IDX, `.npy`, `.npz`,
//! TFRecord and CIFAR files (records and the `.tar.gz` archive) are damaged in a fixed set of ways (byte and bit flips, size fields set
//! huge, truncations, spliced copies), and every damaged file must give `Ok` or a clean `Err`,
//! never a panic. The budget is fixed so it runs in every `cargo test`; the cargo-fuzz targets
//! are where unbounded searches belong.

use fovea_core::{Device, Tensor};
use fovea_data::cifar::{self, CifarSource, Variant};
use fovea_data::idx::parse_idx;
use fovea_data::npy::{npy_bytes, parse_npy, parse_npz_with_limit};
use fovea_data::tfrecord::{Compression, Example, Feature, ReadOptions, TfRecordReader, TfRecordWriter};

/// Mutations per format: enough to reach every header field of these small files many times.
const BUDGET: u64 = 400;

/// Runs `read` on `valid` and its mutations (see [`fovea_core::testing::mutation`]).
fn no_panics(format: &str, valid: &[u8], read: impl Fn(&[u8])) {
    fovea_core::testing::mutation::no_panics(format, valid, BUDGET, false, read);
}

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(data);
    v
}

#[test]
fn damaged_idx_files_are_clean_errors() {
    let valid = idx(&[3, 2, 2], &(0..12).collect::<Vec<u8>>());
    no_panics("IDX", &valid, |b| {
        let _ = parse_idx(b, "mutated.idx");
    });
}

#[test]
fn damaged_npy_and_npz_files_are_clean_errors() {
    let t = Tensor::from_vec(vec![1.5f32, -2.0, 3.0, 0.25, 8.0, 9.0], [2, 3], Device::Cpu).unwrap();
    let npy = npy_bytes(&t).unwrap();
    no_panics("npy", &npy, |b| {
        let _ = parse_npy(b, "mutated.npy", Device::Cpu);
    });
    let npz = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/npy/compressed.npz")).unwrap();
    no_panics("npz", &npz, |b| {
        let _ = parse_npz_with_limit(b, "mutated.npz", Device::Cpu, 1 << 20);
    });
}

#[test]
fn damaged_tfrecord_files_are_clean_errors() {
    let dir = std::env::temp_dir().join(format!("fovea-mutation-tfrecord-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("valid.tfrecord");
    let mut w = TfRecordWriter::create(&path, Compression::None).unwrap();
    for i in 0..3i64 {
        let ex = Example::from_features([
            ("label", Feature::int64s([i])),
            ("pixels", Feature::bytes([vec![i as u8; 5]])),
            ("score", Feature::floats([0.5, i as f32])),
        ]);
        w.write_example(&ex).unwrap();
    }
    w.finish().unwrap();
    let valid = std::fs::read(&path).unwrap();
    let damaged = dir.join("mutated.tfrecord");
    no_panics("TFRecord", &valid, |b| {
        std::fs::write(&damaged, b).unwrap();
        let Ok(reader) = TfRecordReader::open(&damaged, &ReadOptions::default().max_record_bytes(1 << 16)) else { return };
        for record in reader.take(16) {
            let Ok(bytes) = record else { break };
            // The records' payloads are `tf.train.Example`s: parse them too.
            if let Ok(ex) = Example::from_bytes(&bytes) {
                let _ = ex.to_element(Device::Cpu);
            }
        }
    });
    // Records carry CRCs, so most damaged payloads never reach the Example parser: feed it
    // damaged payloads directly.
    let example = Example::from_features([("label", Feature::int64s([7, -3])), ("name", Feature::bytes([b"abc".to_vec()]))]);
    no_panics("tf.train.Example", &example.to_bytes(), |b| {
        if let Ok(ex) = Example::from_bytes(b) {
            let _ = ex.to_element(Device::Cpu);
        }
    });
    std::fs::remove_dir_all(dir).unwrap();
}

/// One CIFAR record: `labels`, then 3 planes of 32x32 pixels.
fn cifar_record(labels: &[u8]) -> Vec<u8> {
    let mut r = labels.to_vec();
    r.extend((0..3 * 32 * 32).map(|i| (i % 251) as u8));
    r
}

#[test]
fn damaged_cifar_records_are_clean_errors() {
    for (variant, labels) in [(Variant::Cifar10, [&[3u8][..], &[9]]), (Variant::Cifar100, [&[1u8, 11][..], &[19, 99]])] {
        let valid = [cifar_record(labels[0]), cifar_record(labels[1])].concat();
        no_panics("CIFAR records", &valid, |b| {
            let _ = cifar::parse_records(b, variant, "mutated.bin", Device::Cpu);
        });
    }
}

#[test]
fn damaged_cifar_archives_are_clean_errors() {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("cifar-100-binary/train.bin", [cifar_record(&[1, 11]), cifar_record(&[2, 22])].concat()),
        ("cifar-100-binary/test.bin", cifar_record(&[3, 33])),
        ("cifar-100-binary/fine_label_names.txt", b"apple\naquarium_fish\n".to_vec()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, &data[..]).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar.into_inner().unwrap()).unwrap();
    let tgz = gz.finish().unwrap();
    let src = CifarSource { records: &[2, 1], ..cifar::CIFAR100 };
    let dir = std::env::temp_dir().join(format!("fovea-data-mutation-cifar-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("valid")).unwrap();
    cifar::install_archive(&src, &dir.join("valid"), &tgz, "valid.tgz", false).expect("the undamaged archive installs");
    // Damage to the gzip stream and the tar headers inside it (the members are stored, so most
    // mutations of the compressed bytes reach the tar reader as garbage or a CRC error).
    no_panics("CIFAR archive", &tgz, |b| {
        let out = dir.join("out");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let _ = cifar::install_archive(&src, &out, b, "mutated.tgz", false);
    });
    std::fs::remove_dir_all(dir).unwrap();
}

/// Found by `fuzz/npy`: a dtype whose first character is several bytes long was split inside
/// it (a panic on a char boundary).
#[test]
fn an_npy_dtype_starting_with_a_multibyte_character_is_a_clean_error() {
    let header = "{'descr': '\u{d9}8', 'fortran_order': False, 'shape': (2,), }";
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((header.len() as u16).to_le_bytes());
    b.extend(header.as_bytes());
    b.extend([0u8; 16]);
    let e = parse_npy(&b, "crafted.npy", Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("crafted.npy") && e.contains("element type '\u{d9}8' is not supported"), "{e}");
}
