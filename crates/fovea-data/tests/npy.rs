//! `.npy`/`.npz` against files NumPy wrote (tools/fixtures/gen_npy_fixtures.py): values, dtypes,
//! byte-identical writing, and clear errors for what is not supported or corrupt.

use fovea_core::{DType, Device, Tensor};
use fovea_data::npy::{npy_bytes, parse_npy, parse_npz, read_npy, read_npz, write_npy};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/npy").join(name)
}

fn read(name: &str) -> Tensor {
    read_npy(fixture(name), Device::Cpu).unwrap_or_else(|e| panic!("{e}"))
}

fn index() -> impl Iterator<Item = i64> {
    0..12
}

#[test]
fn reads_every_supported_dtype_with_numpy_values() {
    let t = read("f32.npy");
    assert_eq!((t.dims(), t.dtype()), (&[3, 4][..], DType::F32));
    assert_eq!(t.to_vec::<f32>().unwrap(), index().map(|i| i as f32 / 2.0 - 1.0).collect::<Vec<_>>());
    assert_eq!(read("f32_big_endian.npy").to_vec::<f32>().unwrap(), t.to_vec::<f32>().unwrap());
    // float64 narrows to float32: the nearest float32 of i / 3.
    assert_eq!(read("f64.npy").to_vec::<f32>().unwrap(), index().map(|i| (i as f64 / 3.0) as f32).collect::<Vec<_>>());
    assert_eq!(read("u8.npy").to_vec::<u8>().unwrap(), index().map(|i| 20 * i as u8).collect::<Vec<_>>());
    assert_eq!(read("i64.npy").to_vec::<i64>().unwrap(), index().map(|i| (i - 6) * 1_000_000_007).collect::<Vec<_>>());
    assert_eq!(read("i32.npy").to_vec::<i32>().unwrap(), index().map(|i| i as i32 - 6).collect::<Vec<_>>());
    assert_eq!(read("bool.npy").to_vec::<bool>().unwrap(), index().map(|i| i % 3 == 0).collect::<Vec<_>>());
    let s = read("scalar.npy");
    assert_eq!((s.rank(), s.to_vec::<f32>().unwrap()), (0, vec![2.5]));
    assert_eq!(read("vector.npy").dims(), &[5]);
    assert_eq!(read("empty.npy").dims(), &[0, 3]);
}

#[test]
fn writes_the_bytes_numpy_writes() {
    for name in ["f32.npy", "u8.npy", "i32.npy", "i64.npy", "bool.npy", "scalar.npy", "vector.npy", "empty.npy"] {
        let numpy = std::fs::read(fixture(name)).unwrap();
        assert_eq!(npy_bytes(&read(name)).unwrap(), numpy, "{name}");
    }
    let dir = std::env::temp_dir().join(format!("fovea-npy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("x.npy");
    write_npy(&p, &read("bool.npy")).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), std::fs::read(fixture("bool.npy")).unwrap());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn reads_stored_and_deflated_npz_archives() {
    let stored = read_npz(fixture("stored.npz"), Device::Cpu).unwrap();
    assert_eq!(stored.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["x", "y"]);
    assert_eq!(stored[0].1.to_vec::<f32>().unwrap(), read("f32.npy").to_vec::<f32>().unwrap());
    assert_eq!(stored[1].1.to_vec::<u8>().unwrap(), read("u8.npy").to_vec::<u8>().unwrap());
    let compressed = read_npz(fixture("compressed.npz"), Device::Cpu).unwrap();
    assert_eq!(compressed.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["images", "labels"]);
    assert_eq!(compressed[1].1.to_vec::<i64>().unwrap(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn unsupported_and_corrupt_files_are_named_with_the_reason() {
    let e = read_npy(fixture("fortran.npy"), Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("fortran.npy: the array is in Fortran order; only C order is supported"), "{e}");
    let e = read_npy(fixture("complex.npy"), Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("complex.npy: element type '<c8' is not supported"), "{e}");
    let bytes = std::fs::read(fixture("f32.npy")).unwrap();
    let e = parse_npy(&bytes[..bytes.len() - 4], "cut.npy", Device::Cpu).unwrap_err().to_string();
    assert_eq!(e, "cut.npy: the shape [3, 4] of '<f4' needs 48 bytes of data, the file holds 44 (truncated or corrupt)");
    let e = parse_npy(b"PK\x03\x04 not npy", "a.npy", Device::Cpu).unwrap_err().to_string();
    assert!(e.starts_with("a.npy: not a .npy file: expected the magic string"), "{e}");
    let e = parse_npy(&bytes[..20], "head.npy", Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("head.npy: truncated header"), "{e}");
    let e = read_npy(fixture("missing.npy"), Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("missing.npy"), "{e}");

    let zip = std::fs::read(fixture("compressed.npz")).unwrap();
    let e = parse_npz(&zip[..zip.len() / 2], "half.npz", Device::Cpu).unwrap_err().to_string();
    assert!(e.starts_with("half.npz: not an .npz (zip) archive, or a truncated one"), "{e}");
    let mut flipped = std::fs::read(fixture("stored.npz")).unwrap();
    // Byte 200 lies in x.npy's data (a stored entry): the CRC catches it.
    flipped[200] ^= 0x01;
    let e = parse_npz(&flipped, "bad.npz", Device::Cpu).unwrap_err().to_string();
    assert!(e.starts_with("bad.npz:x.npy: CRC-32"), "{e}");
}
