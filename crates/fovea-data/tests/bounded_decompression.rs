//! Hostile gzip inputs end in a clear error within a small memory budget: IDX files that
//! inflate past their header's size or past the limit, TFRecord files whose one record
//! inflates to far more than the file, `.npz` entries; and honest files just under the limit
//! still load. Bombs are built here, in memory; limits are passed explicitly (tests share the
//! process environment).

use flate2::write::{DeflateEncoder, GzEncoder};
use flate2::Compression;
use fovea_core::io::limit::LimitError;
use fovea_core::io::record::masked_crc32c;
use fovea_core::testing::PeakAlloc;
use fovea_core::Device;
use fovea_data::idx::{gunzip_idx, read_idx_with_limit};
use fovea_data::tfrecord::{ReadOptions, TfRecordReader, TfRecordWriter};
use fovea_data::Error;
use std::io::Write;
use std::path::PathBuf;

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

const MIB: u64 = 1 << 20;

fn gzip(parts: &[&[u8]]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    for p in parts {
        e.write_all(p).unwrap();
    }
    e.finish().unwrap()
}

fn idx_header(dims: &[u32]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fovea-bounded-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn a_gzip_idx_file_stops_at_the_size_its_header_declares() {
    // The header says 10 labels; the stream goes on with 16 MiB of zeros.
    let bomb = gzip(&[&idx_header(&[10]), &vec![0u8; 16 << 20]]);
    let path = temp("labels-bomb.gz");
    std::fs::write(&path, &bomb).unwrap();
    let (result, peak) = PeakAlloc::peak_during(|| read_idx_with_limit(&path, 64 * MIB));
    let e = result.unwrap_err();
    assert!(matches!(e, Error::Limit(LimitError::PastDeclared { declared: 18, .. })), "{e:?}");
    assert_eq!(e.to_string(), format!("{} inflates past its declared 18 bytes", path.display()));
    assert!(peak < MIB, "took {peak} bytes");
}

#[test]
fn a_gzip_idx_header_over_the_limit_and_a_stream_without_one_stop_at_the_limit() {
    // An honest 4096×4096 image file (16 MiB of pixels) under a 1 MiB limit.
    let big = gzip(&[&idx_header(&[4096, 4096]), &vec![0u8; 16 << 20]]);
    let (result, peak) = PeakAlloc::peak_during(|| gunzip_idx(&big, "train-images.gz", MIB));
    let e = result.unwrap_err();
    assert!(matches!(e, Error::Limit(LimitError::OverLimit { size: Some(s), .. }) if s == 16 * MIB + 12), "{e:?}");
    assert_eq!(
        e.to_string(),
        "train-images.gz declares 16,777,228 bytes, over the decompression limit of 1 MiB (set FOVEA_MAX_DECOMPRESSED_BYTES to raise it)"
    );
    assert!(peak < MIB, "took {peak} bytes");
    // No IDX header: nothing is declared, so the stream is read only up to the limit.
    let junk = gzip(&[&vec![7u8; 16 << 20]]);
    let (result, peak) = PeakAlloc::peak_during(|| gunzip_idx(&junk, "junk.gz", MIB));
    assert_eq!(
        result.unwrap_err().to_string(),
        "junk.gz inflates past the decompression limit of 1 MiB (set FOVEA_MAX_DECOMPRESSED_BYTES to raise it)"
    );
    assert!(peak < 4 * MIB, "took {peak} bytes");
}

#[test]
fn an_honest_gzip_idx_file_at_the_limit_loads() {
    let pixels: Vec<u8> = (0..100 * 28 * 28).map(|i| (i % 251) as u8).collect();
    let path = temp("images-ok.gz");
    std::fs::write(&path, gzip(&[&idx_header(&[100, 28, 28]), &pixels])).unwrap();
    let a = read_idx_with_limit(&path, 16 + pixels.len() as u64).unwrap();
    assert_eq!((a.dims, a.data == pixels), (vec![100, 28, 28], true));
    // One byte less and it is refused.
    let e = read_idx_with_limit(&path, 15 + pixels.len() as u64).unwrap_err();
    assert!(matches!(e, Error::Limit(LimitError::OverLimit { .. })), "{e:?}");
}

/// A record header: its length and the length's masked CRC32C.
fn record_header(len: u64) -> Vec<u8> {
    let l = len.to_le_bytes();
    let mut h = l.to_vec();
    h.extend(masked_crc32c(&l).to_le_bytes());
    h
}

#[test]
fn a_gzip_tfrecord_whose_record_inflates_to_gigabytes_is_refused_before_reading_it() {
    // One record declaring 16 MiB, followed by the zeros that make it up: a 16 KiB file.
    let len = 16 * MIB;
    let path = temp("bomb.tfrecord.gz");
    std::fs::write(&path, gzip(&[&record_header(len), &vec![0u8; len as usize], &[0; 4]])).unwrap();
    let options = ReadOptions::default().gzip().max_record_bytes(MIB);
    let (result, peak) = PeakAlloc::peak_during(|| TfRecordReader::open(&path, &options).unwrap().next().unwrap());
    let e = result.unwrap_err();
    assert!(matches!(e, Error::Limit(LimitError::OverLimit { size: Some(s), .. }) if s == len), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "{} (GZIP; offsets count decompressed bytes): the record at byte offset 0 declares 16 MiB, over the decompression \
             limit of 1 MiB (set FOVEA_MAX_DECOMPRESSED_BYTES to raise it)",
            path.display()
        )
    );
    assert!(peak < MIB, "took {peak} bytes");
}

#[test]
fn gzip_tfrecords_at_the_limit_still_read() {
    let path = temp("ok.tfrecord.gz");
    let mut w = TfRecordWriter::create(&path, fovea_data::tfrecord::Compression::Gzip).unwrap();
    let big = vec![3u8; 100_000];
    w.write(&big).unwrap();
    w.write(b"tail").unwrap();
    w.finish().unwrap();
    let options = ReadOptions::default().gzip().max_record_bytes(100_000);
    let records: Vec<Vec<u8>> = TfRecordReader::open(&path, &options).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(records, vec![big, b"tail".to_vec()]);
    let e = TfRecordReader::open(&path, &ReadOptions::default().gzip().max_record_bytes(99_999)).unwrap().next().unwrap().unwrap_err();
    assert!(e.to_string().contains("declares 100,000 bytes, over the decompression limit of 99,999 bytes"), "{e}");
}

#[test]
fn an_npz_entry_that_inflates_past_its_declared_size_is_an_error_naming_both() {
    // A one-entry zip whose deflated entry claims 128 bytes and inflates to 16 MiB.
    let mut d = DeflateEncoder::new(Vec::new(), Compression::fast());
    d.write_all(&vec![0u8; 16 << 20]).unwrap();
    let data = d.finish().unwrap();
    let name = b"x.npy";
    let fields = |v: &mut Vec<u8>| {
        v.extend(8u16.to_le_bytes());
        v.extend([0u8; 8]); // time, date, CRC
        v.extend((data.len() as u32).to_le_bytes());
        v.extend(128u32.to_le_bytes());
        v.extend((name.len() as u16).to_le_bytes());
        v.extend([0u8; 2]);
    };
    let mut zip = 0x0403_4b50u32.to_le_bytes().to_vec();
    zip.extend([20, 0, 0, 0]);
    fields(&mut zip);
    zip.extend(name);
    zip.extend(&data);
    let cd = zip.len() as u32;
    zip.extend(0x0201_4b50u32.to_le_bytes());
    zip.extend([20, 0, 20, 0, 0, 0]);
    fields(&mut zip);
    zip.extend([0u8; 14]); // comment length, disk, attributes, local header offset 0
    zip.extend(name);
    let cd_len = zip.len() as u32 - cd;
    zip.extend(0x0605_4b50u32.to_le_bytes());
    zip.extend([0, 0, 0, 0, 1, 0, 1, 0]);
    zip.extend(cd_len.to_le_bytes());
    zip.extend(cd.to_le_bytes());
    zip.extend([0, 0]);
    let (result, peak) = PeakAlloc::peak_during(|| fovea_data::npy::parse_npz_with_limit(&zip, "bomb.npz", Device::Cpu, 64 * MIB));
    let e = result.unwrap_err();
    assert!(matches!(e, Error::Limit(LimitError::PastDeclared { declared: 128, .. })), "{e:?}");
    assert_eq!(e.to_string(), "bomb.npz: entry \"x.npy\" inflates past its declared 128 bytes");
    assert!(peak < MIB, "took {peak} bytes");
}
