//! CIFAR binary files: synthetic records whose every byte says where it belongs, the planes →
//! channels-last transposition, label ranges, truncated files, and installing from an archive.

use fovea_core::{DType, Device};
use fovea_data::checksum::md5_hex;
use fovea_data::cifar::{self, CifarSource, LabelMode, Variant};
use fovea_data::Error;
use std::path::PathBuf;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fovea-cifar-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A record whose pixel at (row y, column x) of plane c is `(c * 80 + y + x) % 256`, after
/// `labels`.
fn record(labels: &[u8]) -> Vec<u8> {
    let mut r = labels.to_vec();
    for c in 0..3 {
        for y in 0..32 {
            for x in 0..32 {
                r.push(((c * 80 + y + x) % 256) as u8);
            }
        }
    }
    r
}

#[test]
fn cifar10_records_become_channels_last_images_and_labels() {
    let bytes: Vec<u8> = [record(&[3]), record(&[9])].concat();
    let r = cifar::parse_records(&bytes, Variant::Cifar10, "data_batch_1.bin", Device::Cpu).unwrap();
    assert_eq!(r.images.dims(), &[2, 32, 32, 3]);
    assert_eq!(r.images.dtype(), DType::U8);
    assert_eq!(r.labels.to_vec::<i64>().unwrap(), vec![3, 9]);
    assert!(r.coarse_labels.is_none());
    let px = r.images.to_vec::<u8>().unwrap();
    // Image 1, row 2, column 5: red 7, green 87, blue 167.
    let at = ((32 + 2) * 32 + 5) * 3;
    assert_eq!(&px[at..at + 3], &[7, 87, 167]);
}

#[test]
fn cifar100_records_carry_coarse_then_fine_labels() {
    let bytes: Vec<u8> = [record(&[19, 99]), record(&[0, 42])].concat();
    let r = cifar::parse_records(&bytes, Variant::Cifar100, "train.bin", Device::Cpu).unwrap();
    assert_eq!(r.labels.to_vec::<i64>().unwrap(), vec![99, 42]);
    assert_eq!(r.coarse_labels.unwrap().to_vec::<i64>().unwrap(), vec![19, 0]);
    let e = cifar::parse_records(&record(&[20, 1]), Variant::Cifar100, "test.bin", Device::Cpu).unwrap_err().to_string();
    assert!(e.starts_with("test.bin: record 0 has coarse label 20; CIFAR-100 coarse labels are 0..20"), "{e}");
}

#[test]
fn truncated_and_corrupt_files_are_named() {
    let dir = temp("bad");
    let p = dir.join("data_batch_1.bin");
    let mut bytes = [record(&[1]), record(&[2])].concat();
    bytes.pop();
    std::fs::write(&p, &bytes).unwrap();
    let e = cifar::read_records(&p, Variant::Cifar10, Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("data_batch_1.bin") && e.contains("6145 bytes is not a whole number of 3073-byte CIFAR-10 records"), "{e}");
    assert!(e.contains("1 full records and 3072 bytes over"), "{e}");
    std::fs::write(&p, [record(&[1]), record(&[10])].concat()).unwrap();
    let e = cifar::read_records(&p, Variant::Cifar10, Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("data_batch_1.bin: record 1 has class label 10; CIFAR-10 class labels are 0..10"), "{e}");
    std::fs::write(&p, []).unwrap();
    assert!(cifar::read_records(&p, Variant::Cifar10, Device::Cpu).unwrap_err().to_string().contains("0 bytes"));
    let e = cifar::read_records(&dir.join("nope.bin"), Variant::Cifar10, Device::Cpu).unwrap_err();
    assert!(matches!(e, Error::Io { .. }) && e.to_string().contains("nope.bin"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_directory_of_batches_loads_as_train_and_test() {
    let dir = temp("dir10");
    for (i, f) in cifar::CIFAR10.train.iter().enumerate() {
        std::fs::write(dir.join(f), [record(&[i as u8]), record(&[i as u8 + 5])].concat()).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), record(&[7])).unwrap();
    let s = cifar::load_cifar10_from(&dir, Device::Cpu).unwrap();
    assert_eq!(s.train_images.dims(), &[10, 32, 32, 3]);
    assert_eq!(s.train_labels.to_vec::<i64>().unwrap(), vec![0, 5, 1, 6, 2, 7, 3, 8, 4, 9]);
    assert_eq!(s.test_labels.to_vec::<i64>().unwrap(), vec![7]);
    std::fs::remove_file(dir.join("data_batch_3.bin")).unwrap();
    let e = cifar::load_cifar10_from(&dir, Device::Cpu).unwrap_err();
    assert!(matches!(e, Error::Missing(_)) && e.to_string().contains("data_batch_3.bin not found"), "{e}");

    let dir100 = temp("dir100");
    std::fs::write(dir100.join("train.bin"), [record(&[1, 11]), record(&[2, 22])].concat()).unwrap();
    std::fs::write(dir100.join("test.bin"), record(&[3, 33])).unwrap();
    let fine = cifar::load_cifar100_from(&dir100, LabelMode::Fine, Device::Cpu).unwrap();
    let coarse = cifar::load_cifar100_from(&dir100, LabelMode::Coarse, Device::Cpu).unwrap();
    assert_eq!(fine.train_labels.to_vec::<i64>().unwrap(), vec![11, 22]);
    assert_eq!(coarse.train_labels.to_vec::<i64>().unwrap(), vec![1, 2]);
    assert_eq!(coarse.test_labels.to_vec::<i64>().unwrap(), vec![3]);
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(dir100).unwrap();
}

fn targz(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

#[test]
fn an_archive_in_the_data_dir_is_checked_and_installed() {
    let files = vec![
        ("cifar-100-binary/train.bin", [record(&[1, 11]), record(&[2, 22])].concat()),
        ("cifar-100-binary/test.bin", record(&[3, 33])),
        ("cifar-100-binary/fine_label_names.txt", b"apple\naquarium_fish\n".to_vec()),
        ("cifar-100-binary/other.txt", b"ignored".to_vec()),
    ];
    let tgz = targz(&files);
    let md5: &'static str = Box::leak(md5_hex(&tgz).into_boxed_str());
    let src = CifarSource { records: &[2, 1], md5, ..cifar::CIFAR100 };
    let dir = temp("archive");
    std::fs::write(dir.join("cifar-100-binary.tar.gz"), &tgz).unwrap();
    assert_eq!(cifar::fetch_into(&src, &dir).unwrap(), dir);
    assert_eq!(std::fs::read(dir.join("test.bin")).unwrap(), record(&[3, 33]));
    assert_eq!(cifar::class_names(&dir, "fine_label_names.txt").unwrap(), vec!["apple", "aquarium_fish"]);
    assert!(!dir.join("other.txt").exists());
    // Once installed, the files are validated by size on every fetch.
    std::fs::write(dir.join("train.bin"), record(&[1, 1])).unwrap();
    let e = cifar::fetch_into(&src, &dir).unwrap_err().to_string();
    assert!(e.contains("train.bin: expected 2 records = 6148 bytes, found 3074 bytes") && e.contains("delete this file"), "{e}");

    // A corrupted archive never lands: the checksum names it, and the error says what to put where.
    let fresh = temp("archive-bad");
    let mut bad = tgz.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(fresh.join("cifar-100-binary.tar.gz"), &bad).unwrap();
    let e = cifar::fetch_into(&src, &fresh).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Missing(_)), "{msg}");
    assert!(msg.contains("cifar-100-binary.tar.gz: checksum mismatch") && msg.contains("Put the archive cifar-100-binary.tar.gz"), "{msg}");
    assert!(!fresh.join("train.bin").exists());
    // A member of the wrong size is named inside the archive.
    let short = targz(&[("cifar-100-binary/train.bin", record(&[1, 11])), ("cifar-100-binary/test.bin", record(&[3, 33]))]);
    let e = cifar::install_archive(&src, &fresh, &short, "c100.tgz", false).unwrap_err().to_string();
    assert!(e.starts_with("c100.tgz:cifar-100-binary/train.bin: expected 2 records"), "{e}");
    let e = cifar::install_archive(&src, &fresh, &targz(&[]), "empty.tgz", false).unwrap_err().to_string();
    assert!(e.contains("the archive has no train.bin, test.bin under cifar-100-binary/"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(fresh).unwrap();
}
