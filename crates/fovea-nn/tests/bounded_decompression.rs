//! Hostile compressed inputs end in a clear error within a small memory budget: ZIP entries
//! (`.keras`) that inflate past their declared size or the limit, and HDF5 datasets whose
//! deflate chunks inflate past their declared size or whose shape declares more than the
//! limit. Every bomb is built here, in memory; limits are passed explicitly (tests share the
//! process environment).

use flate2::write::DeflateEncoder;
use flate2::Compression;
use fovea_core::io::limit::LimitError;
use fovea_core::testing::PeakAlloc;
use fovea_nn::import::zip::{read_entries, ZipError};
use fovea_nn::Error;
use std::io::Write;

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

const MIB: u64 = 1 << 20;

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn crc(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

/// One zip entry: name, method (0 stored, 8 deflate), the bytes as stored, the declared
/// uncompressed size and CRC-32.
struct Entry<'a> {
    name: &'a str,
    method: u16,
    data: Vec<u8>,
    size: u32,
    crc: u32,
}

impl<'a> Entry<'a> {
    fn stored(name: &'a str, data: &[u8]) -> Self {
        Entry { name, method: 0, data: data.to_vec(), size: data.len() as u32, crc: crc(data) }
    }

    fn deflated(name: &'a str, data: &[u8]) -> Self {
        Entry { name, method: 8, data: deflate(data), size: data.len() as u32, crc: crc(data) }
    }
}

/// A zip archive of `entries` (local headers, central directory, end record).
fn zip(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let common = |v: &mut Vec<u8>| {
            v.extend(e.method.to_le_bytes());
            v.extend([0u8; 4]); // time, date
            v.extend(e.crc.to_le_bytes());
            v.extend((e.data.len() as u32).to_le_bytes());
            v.extend(e.size.to_le_bytes());
            v.extend((e.name.len() as u16).to_le_bytes());
            v.extend(0u16.to_le_bytes()); // extra field length
        };
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend([20, 0, 0, 0]); // version needed, flags
        common(&mut out);
        out.extend(e.name.as_bytes());
        out.extend(&e.data);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend([20, 0, 20, 0, 0, 0]); // version made by, version needed, flags
        common(&mut central);
        central.extend([0u8; 10]); // comment length, disk, internal and external attributes
        central.extend(offset.to_le_bytes());
        central.extend(e.name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend([0u8; 2]);
    out
}

#[test]
fn a_zip_entry_that_inflates_past_its_declared_size_stops_there() {
    // 16 MiB of zeros deflate to ~16 KiB; the entry claims 1,234 bytes.
    let zeros = vec![0u8; 16 << 20];
    let mut bomb = Entry::deflated("model.weights.h5", &zeros);
    bomb.size = 1234;
    let bytes = zip(&[Entry::stored("metadata.json", br#"{"keras_version": "3.3.3"}"#), bomb]);
    drop(zeros);
    let (result, peak) =
        PeakAlloc::peak_during(|| fovea_nn::import::keras_h5::parse_keras_weights_with_limit(bytes, "bomb.keras", 64 * MIB));
    let e = result.unwrap_err();
    assert!(matches!(e, Error::Limit(LimitError::PastDeclared { declared: 1234, .. })), "{e:?}");
    assert_eq!(e.to_string(), "bomb.keras: entry \"model.weights.h5\" inflates past its declared 1,234 bytes");
    assert!(peak < 2 * MIB, "took {peak} bytes");
}

#[test]
fn a_zip_entry_declared_over_the_limit_is_refused_before_inflating() {
    let zeros = vec![0u8; 16 << 20];
    let bytes = zip(&[Entry::deflated("model.weights.h5", &zeros)]);
    drop(zeros);
    let (result, peak) = PeakAlloc::peak_during(|| fovea_nn::import::keras_h5::parse_keras_weights_with_limit(bytes, "m.keras", MIB));
    let e = result.unwrap_err();
    assert!(matches!(e, Error::Limit(LimitError::OverLimit { size: Some(s), limit, .. }) if s == 16 * MIB && limit == MIB), "{e:?}");
    assert_eq!(
        e.to_string(),
        "m.keras: entry \"model.weights.h5\" declares 16 MiB, over the decompression limit of 1 MiB \
         (set FOVEA_MAX_DECOMPRESSED_BYTES to raise it)"
    );
    assert!(peak < MIB, "took {peak} bytes");
}

#[test]
fn zip_entries_count_against_one_limit_together_and_an_archive_just_under_it_reads() {
    let a = vec![1u8; 600 << 10];
    let b = vec![2u8; 600 << 10];
    let bytes = zip(&[Entry::deflated("a.npy", &a), Entry::deflated("b.npy", &b)]);
    // A small entry first does not change how an entry too large on its own is reported.
    let big = zip(&[Entry::deflated("a.npy", &[0; 100]), Entry::deflated("c.npy", &vec![0u8; 2 << 20])]);
    let e = read_entries(&big, MIB).unwrap_err();
    assert_eq!(e, ZipError::Limit(LimitError::OverLimit { what: "entry \"c.npy\"".into(), size: Some(2 * MIB), limit: MIB }));
    let e = read_entries(&bytes, MIB).unwrap_err();
    let ZipError::Limit(limit) = e else { panic!("{e:?}") };
    assert_eq!(
        limit.to_string(),
        "entry \"b.npy\" with the 600 KiB inflated from the entries before it declares 1,228,800 bytes, over the \
         decompression limit of 1 MiB (set FOVEA_MAX_DECOMPRESSED_BYTES to raise it)"
    );
    // Exactly at the limit: both entries come back whole.
    let got = read_entries(&bytes, 1_228_800).unwrap();
    assert_eq!((got[0].1 == a, got[1].1 == b), (true, true));
    // Stored entries are not inflated, so the limit does not apply to them.
    let stored = zip(&[Entry::stored("a.npy", &a), Entry::stored("b.npy", &b)]);
    assert_eq!(read_entries(&stored, 1).unwrap().len(), 2);
}

/// A minimal HDF5 file (superblock v0, v1 object headers without checksums, a new-style root
/// group holding one link) with one float32 dataset `w` of `shape`, stored as a single
/// deflated chunk of the same shape holding `chunk` (a zlib stream).
#[cfg(feature = "hdf5")]
fn h5_single_chunk(shape: &[u64], chunk: &[u8]) -> Vec<u8> {
    const UNDEF: u64 = u64::MAX;
    fn message(kind: u16, body: &[u8]) -> Vec<u8> {
        let padded = body.len().div_ceil(8) * 8;
        let mut m = Vec::new();
        m.extend(kind.to_le_bytes());
        m.extend((padded as u16).to_le_bytes());
        m.extend([0u8; 4]); // flags, reserved
        m.extend(body);
        m.resize(8 + padded, 0);
        m
    }
    fn header(messages: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = messages.concat();
        let mut h = vec![1, 0];
        h.extend((messages.len() as u16).to_le_bytes());
        h.extend(1u32.to_le_bytes()); // reference count
        h.extend((body.len() as u32).to_le_bytes());
        h.extend([0u8; 4]); // alignment
        h.extend(body);
        h
    }
    let (root_at, dataset_at): (u64, u64) = (96, 96 + 16 + 24);
    // The root group: a link named "w" to the dataset's object header.
    let mut link = vec![1, 0, 1, b'w'];
    link.extend(dataset_at.to_le_bytes());
    let root = header(&[message(6, &link)]);
    assert_eq!(root.len() as u64, dataset_at - root_at);
    let mut dataspace = vec![1, shape.len() as u8, 0, 0, 0, 0, 0, 0];
    for d in shape {
        dataspace.extend(d.to_le_bytes());
    }
    // IEEE float32, little-endian: class 1, version 1; sign at bit 31, exponent 23..31, bias 127.
    let mut datatype = vec![0x11, 0x20, 31, 0];
    datatype.extend(4u32.to_le_bytes());
    datatype.extend([0, 0, 32, 0, 23, 8, 0, 23]);
    datatype.extend(127u32.to_le_bytes());
    let pipeline = [2u8, 1, 1, 0, 0, 0, 1, 0, 6, 0, 0, 0]; // v2, one filter: deflate, level 6
    let layout_len = 5 + 4 * shape.len() + 1 + 12 + 8;
    let dataset_len =
        16 + [dataspace.len(), datatype.len(), pipeline.len(), layout_len].iter().map(|l| 8 + l.div_ceil(8) * 8).sum::<usize>();
    let chunk_at = dataset_at + dataset_len as u64;
    // Layout v4, chunked, one chunk as large as the dataset, with its filtered size and mask.
    let mut layout = vec![4, 2, 0x02, shape.len() as u8, 4];
    for d in shape {
        layout.extend((*d as u32).to_le_bytes());
    }
    layout.push(1);
    layout.extend((chunk.len() as u64).to_le_bytes());
    layout.extend(0u32.to_le_bytes());
    layout.extend(chunk_at.to_le_bytes());
    assert_eq!(layout.len(), layout_len);
    let dataset = header(&[message(1, &dataspace), message(3, &datatype), message(11, &pipeline), message(8, &layout)]);
    assert_eq!(dataset.len(), dataset_len);

    let mut file = b"\x89HDF\r\n\x1a\n".to_vec();
    file.extend([0, 0, 0, 0, 0, 8, 8, 0]); // versions, offset and length sizes
    file.extend(4u16.to_le_bytes());
    file.extend(16u16.to_le_bytes());
    file.extend(0u32.to_le_bytes());
    let eof = chunk_at + chunk.len() as u64;
    for a in [0, UNDEF, eof, UNDEF] {
        file.extend(a.to_le_bytes());
    }
    // The root group's symbol-table entry: no name, its object header, no cached data.
    file.extend(0u64.to_le_bytes());
    file.extend(root_at.to_le_bytes());
    file.extend([0u8; 24]);
    assert_eq!(file.len() as u64, root_at);
    file.extend(root);
    file.extend(dataset);
    file.extend(chunk);
    file
}

#[cfg(feature = "hdf5")]
fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[cfg(feature = "hdf5")]
#[test]
fn an_honest_deflated_hdf5_dataset_reads_just_under_the_limit() {
    use fovea_nn::hdf5::{H5Data, H5File};
    let values: Vec<f32> = (0..1024).map(|i| i as f32 * 0.5).collect();
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let file = h5_single_chunk(&[1024], &zlib(&raw));
    let h5 = H5File::from_bytes_with_limit(file, "ok.h5", 4096).unwrap();
    let H5Data::Float(t) = h5.dataset("w").unwrap() else { panic!("a float dataset") };
    assert_eq!(t.dims(), &[1024]);
    assert_eq!(t.to_vec::<f32>().unwrap(), values);
}

#[cfg(feature = "hdf5")]
#[test]
fn a_deflate_chunk_that_inflates_past_its_declared_size_is_an_error() {
    use fovea_nn::hdf5::H5File;
    // The chunk holds 16 floats (64 bytes) but its stream inflates to 16 MiB.
    let zeros = vec![0u8; 16 << 20];
    let file = h5_single_chunk(&[16], &zlib(&zeros));
    drop(zeros);
    let h5 = H5File::from_bytes_with_limit(file, "bomb.h5", 64 * MIB).unwrap();
    let (result, peak) = PeakAlloc::peak_during(|| h5.dataset("w"));
    let e = result.err().expect("the bomb is refused").to_string();
    assert!(e.starts_with("invalid configuration: bomb.h5: HDF5 object \"w\": ") && e.contains("65 bytes, expected 64"), "{e}");
    assert!(peak < MIB, "took {peak} bytes");
}

#[cfg(feature = "hdf5")]
#[test]
fn an_hdf5_dataset_whose_shape_declares_more_than_the_limit_is_refused_before_reading() {
    use fovea_nn::hdf5::H5File;
    // 2^28 float32 = 1 GiB declared; the chunk is a few bytes.
    let file = h5_single_chunk(&[1 << 28], &zlib(&[0; 64]));
    let h5 = H5File::from_bytes_with_limit(file.clone(), "big.h5", 16 * MIB).unwrap();
    let (result, peak) = PeakAlloc::peak_during(|| h5.dataset("w"));
    let e = result.err().expect("over the limit");
    assert!(matches!(e, Error::Limit(LimitError::OverLimit { size: Some(s), .. }) if s == 1 << 30), "{e:?}");
    assert_eq!(
        e.to_string(),
        "big.h5: dataset \"w\" (shape [268435456], 4-byte elements) declares 1 GiB, over the decompression limit of 16 MiB \
         (set FOVEA_MAX_DECOMPRESSED_BYTES to raise it)"
    );
    assert!(peak < MIB, "took {peak} bytes");
    // Datasets count together: after a 3 KiB one, a 2 KiB budget is gone.
    let small = h5_single_chunk(&[768], &zlib(&[0; 3072]));
    let h5 = H5File::from_bytes_with_limit(small, "two.h5", 4096).unwrap();
    h5.dataset("w").unwrap();
    let e = h5.dataset("w").err().expect("over the limit together").to_string();
    assert!(e.contains("with the 3 KiB of datasets read before it declares 6 KiB, over the decompression limit of 4 KiB"), "{e}");
}
