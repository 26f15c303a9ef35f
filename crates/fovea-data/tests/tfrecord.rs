//! TFRecord files: TensorFlow's (tools/fixtures/gen_tfrecord_fixtures.py) read with identical
//! features, Fovea's written byte for byte (tools/check_fovea_records.py has TF parse them),
//! round trips, sharding, interleaving, and the named errors for corrupt or truncated records.

use fovea_core::Tensor;
use fovea_data::pipeline::{Dataset, Element};
use fovea_data::tfrecord::{
    parse_example, shard_path, Compression, Example, Feature, ReadOptions, ShardedWriter, TfRecordReader, TfRecordWriter,
};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tfrecord").join(name)
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fovea-tfrecord-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn read_all(path: &Path, options: &ReadOptions) -> Vec<Vec<u8>> {
    TfRecordReader::open(path, options).unwrap().collect::<Result<_, _>>().unwrap_or_else(|e| panic!("{e}"))
}

/// The pixels gen_tfrecord_fixtures.py encodes as PNG for example `i`.
fn tf_pixels(i: i64) -> Vec<u8> {
    let mut v = Vec::new();
    for y in 0..2 {
        for x in 0..3 {
            for c in 0..3 {
                v.push(((40 * i + 10 * y + 3 * x + c) % 256) as u8);
            }
        }
    }
    v
}

fn check_tf_example(i: i64, ex: &Example) {
    assert_eq!(ex.get("label").unwrap().as_int64s().unwrap(), &[i * 1_000_000_007 - 2]);
    assert_eq!(ex.get("ids").unwrap().as_int64s().unwrap(), &[i, -i, (1 << 40) + i]);
    assert_eq!(ex.get("score").unwrap().as_floats().unwrap(), &[i as f32 * 0.25 - 0.5, 0.1f32 * i as f32]);
    assert_eq!(ex.get("name").unwrap().as_bytes().unwrap(), &[format!("example-{i}").into_bytes()]);
    assert_eq!(ex.get("tags").unwrap().as_bytes().unwrap(), &[b"a".to_vec(), b"bc".repeat(i as usize)]);
    let png = &ex.get("image").unwrap().as_bytes().unwrap()[0];
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(ex.get("empty").map(|f| f.as_floats().unwrap().len()), if i == 0 { Some(0) } else { None });
}

#[test]
fn reads_tensorflow_records_plain_and_gzip_with_identical_features() {
    let plain = read_all(&fixture("tf_examples.tfrecord"), &ReadOptions::default());
    let gz = read_all(&fixture("tf_examples.tfrecord.gz"), &ReadOptions::default().gzip());
    assert_eq!(plain.len(), 4);
    assert_eq!(plain, gz);
    for (i, r) in plain.iter().enumerate() {
        let ex = Example::from_bytes(r).unwrap();
        check_tf_example(i as i64, &ex);
        // TF serialised with deterministic=True (map keys sorted); Fovea's encoding matches it.
        assert_eq!(&ex.to_bytes(), r, "example {i} re-encodes to TF's bytes");
    }
}

#[test]
fn tensorflow_examples_become_dicts_of_tensors() {
    let ds = Dataset::from_tfrecord_examples([fixture("tf_examples.tfrecord")], ReadOptions::default(), 1);
    let elements = ds.collect().unwrap();
    assert_eq!(elements.len(), 4);
    let e = &elements[2];
    let names: Vec<&str> = match e {
        Element::Dict(f) => f.iter().map(|(k, _)| k.as_str()).collect(),
        other => panic!("expected a dict, got {}", other.signature()),
    };
    assert_eq!(names, ["ids", "image", "label", "name", "score", "tags"]);
    let t = |k: &str| e.field(k).unwrap().tensor().unwrap().clone();
    assert_eq!(t("ids").to_vec::<i64>().unwrap(), [2, -2, (1 << 40) + 2]);
    assert_eq!(t("label").to_vec::<i64>().unwrap(), [2_000_000_012]);
    assert_eq!(t("score").to_vec::<f32>().unwrap(), [0.0, 0.2f32]);
    assert_eq!(t("name").to_vec::<u8>().unwrap(), b"example-2");
    let tags = e.field("tags").unwrap();
    assert_eq!(tags.get(1).unwrap().tensor().unwrap().to_vec::<u8>().unwrap(), b"bcbc");
    assert_eq!(elements[0].field("empty").unwrap().tensor().unwrap().dims(), &[0]);
    let _ = tf_pixels; // the pixels are checked after decoding, in fovea-vision's tests
}

fn fovea_examples() -> Vec<Example> {
    (0..3)
        .map(|i: i64| {
            Example::from_features([
                ("label", Feature::int64s([i, -7 * i, i64::MAX - i])),
                ("score", Feature::floats([0.5 * i as f32, -1.25, 1e-3])),
                ("text", Feature::bytes([format!("fovea-{i}").into_bytes(), vec![0, 255, i as u8]])),
            ])
        })
        .collect()
}

fn write_fovea(path: &Path, compression: Compression) {
    let mut w = TfRecordWriter::create(path, compression).unwrap();
    for ex in fovea_examples() {
        w.write_example(&ex).unwrap();
    }
    assert_eq!(w.records(), 3);
    w.finish().unwrap();
}

#[test]
fn fovea_writes_the_committed_fixture_byte_for_byte() {
    // tools/check_fovea_records.py has TensorFlow parse this file; set FOVEA_REGEN_FIXTURES=1 to
    // rewrite it after a deliberate change.
    let path = tmp("fovea_examples.tfrecord");
    write_fovea(&path, Compression::None);
    let written = std::fs::read(&path).unwrap();
    if std::env::var_os("FOVEA_REGEN_FIXTURES").is_some() {
        std::fs::write(fixture("fovea_examples.tfrecord"), &written).unwrap();
        write_fovea(&fixture("fovea_examples.tfrecord.gz"), Compression::Gzip);
    }
    assert_eq!(written, std::fs::read(fixture("fovea_examples.tfrecord")).unwrap());
    let gz = read_all(&fixture("fovea_examples.tfrecord.gz"), &ReadOptions::default().gzip());
    let decoded: Vec<Example> = gz.iter().map(|r| Example::from_bytes(r).unwrap()).collect();
    assert_eq!(decoded, fovea_examples());
}

#[test]
fn examples_round_trip_plain_and_gzip() {
    for (name, compression, options) in
        [("rt.tfrecord", Compression::None, ReadOptions::default()), ("rt.tfrecord.gz", Compression::Gzip, ReadOptions::default().gzip())]
    {
        let path = tmp(name);
        write_fovea(&path, compression);
        let back: Vec<Example> = read_all(&path, &options).iter().map(|r| Example::from_bytes(r).unwrap()).collect();
        assert_eq!(back, fovea_examples());
    }
}

fn numbered(n: i64) -> Vec<u8> {
    Example::from_features([("n", Feature::int64s([n]))]).to_bytes()
}

fn numbers(ds: &Dataset) -> Vec<i64> {
    ds.iter().map(|e| parse_example(e.unwrap()).unwrap().field("n").unwrap().tensor().unwrap().to_vec::<i64>().unwrap()[0]).collect()
}

#[test]
fn sharded_files_are_named_like_tensorflow_and_filled_round_robin() {
    assert_eq!(shard_path("/data/train", 3, 10), PathBuf::from("/data/train-00003-of-00010.tfrecord"));
    let mut w = ShardedWriter::create(tmp("shards"), 3, Compression::None).unwrap();
    for n in 0..8 {
        w.write(&numbered(n)).unwrap();
    }
    let paths = w.finish().unwrap();
    assert_eq!(paths[2].file_name().unwrap(), "shards-00002-of-00003.tfrecord");
    let per_file: Vec<usize> = paths.iter().map(|p| read_all(p, &ReadOptions::default()).len()).collect();
    assert_eq!(per_file, [3, 3, 2]);
    // Sequential reading: file by file.
    assert_eq!(numbers(&Dataset::from_tfrecord_files(paths.clone(), ReadOptions::default(), 1)), [0, 3, 6, 1, 4, 7, 2, 5]);
    // Interleaved reading of all shards restores the write order.
    assert_eq!(numbers(&Dataset::from_tfrecord_files(paths, ReadOptions::default(), 3)), [0, 1, 2, 3, 4, 5, 6, 7]);
}

#[test]
fn interleaving_refills_a_finished_slot_with_the_next_file_like_tensorflow() {
    // Files a = [0, 1, 2], b = [10], c = [20, 21] with two readers: TF's interleave gives
    // a0 b10 a1 (b ends, c takes its slot at once) c20 a2 c21.
    let mut paths = Vec::new();
    for (name, values) in [("a", vec![0, 1, 2]), ("b", vec![10]), ("c", vec![20, 21])] {
        let p = tmp(&format!("il-{name}.tfrecord"));
        let mut w = TfRecordWriter::create(&p, Compression::None).unwrap();
        for v in values {
            w.write(&numbered(v)).unwrap();
        }
        w.finish().unwrap();
        paths.push(p);
    }
    let ds = Dataset::from_tfrecord_files(paths, ReadOptions::default(), 2);
    assert_eq!(numbers(&ds), [0, 10, 1, 20, 2, 21]);
    assert_eq!(numbers(&ds), [0, 10, 1, 20, 2, 21], "every epoch starts afresh");
}

/// Three records of 3 + 16 bytes each: record k starts at byte 19 k.
fn three_records(name: &str) -> (PathBuf, Vec<u8>) {
    let path = tmp(name);
    let mut w = TfRecordWriter::create(&path, Compression::None).unwrap();
    for r in [b"abc", b"def", b"ghi"] {
        w.write(r).unwrap();
    }
    w.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

#[test]
fn a_corrupted_byte_is_an_error_naming_the_file_and_offset() {
    let (path, mut bytes) = three_records("corrupt.tfrecord");
    bytes[19 + 13] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let items: Vec<_> = TfRecordReader::open(&path, &ReadOptions::default()).unwrap().collect();
    assert_eq!(items.len(), 2, "the error ends the file");
    assert_eq!(items[0].as_ref().unwrap(), b"abc");
    let msg = items[1].as_ref().unwrap_err().to_string();
    assert!(msg.starts_with(&format!("{}: corrupt record at byte offset 19: data CRC mismatch (stored 0x", path.display())), "{msg}");
}

#[test]
fn skipping_bad_records_counts_them_and_keeps_the_good_ones() {
    let (path, mut bytes) = three_records("skip.tfrecord");
    bytes[19 + 13] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let options = ReadOptions::default().skip_bad_records();
    assert_eq!(read_all(&path, &options), [b"abc".to_vec(), b"ghi".to_vec()]);
    assert_eq!(options.bad_records.count(), 1);
    // Through a dataset: the same shared counter, once more per epoch.
    let ds = Dataset::from_tfrecord_files([path.clone(), path], options.clone(), 2);
    assert_eq!(ds.collect().unwrap().len(), 4);
    assert_eq!(options.bad_records.count(), 3);
}

#[test]
fn a_truncated_file_is_an_error_or_one_skipped_record() {
    let (path, bytes) = three_records("truncated.tfrecord");
    std::fs::write(&path, &bytes[..2 * 19 + 10]).unwrap();
    let items: Vec<_> = TfRecordReader::open(&path, &ReadOptions::default()).unwrap().collect();
    assert_eq!(items.len(), 3);
    let msg = items[2].as_ref().unwrap_err().to_string();
    assert_eq!(msg, format!("{}: truncated record at byte offset 38: expected 4 bytes of length CRC, got 2", path.display()));
    let options = ReadOptions::default().skip_bad_records();
    assert_eq!(read_all(&path, &options).len(), 2);
    assert_eq!(options.bad_records.count(), 1);
}

#[test]
fn a_gzip_file_read_as_plain_says_so_and_offsets_in_gzip_files_are_decompressed() {
    let err = TfRecordReader::open(fixture("tf_examples.tfrecord.gz"), &ReadOptions::default()).unwrap().next().unwrap().unwrap_err();
    assert!(err.to_string().contains("length CRC mismatch") && err.to_string().ends_with("read it with Compression::Gzip)"), "{err}");
    let path = tmp("cut.tfrecord.gz");
    write_fovea(&path, Compression::Gzip);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 12]).unwrap();
    let last = TfRecordReader::open(&path, &ReadOptions::default().gzip()).unwrap().last().unwrap();
    assert!(last.unwrap_err().to_string().contains("(GZIP; offsets count decompressed bytes)"));
}

#[test]
fn missing_files_and_bad_protobufs_are_named_errors() {
    let missing = tmp("does-not-exist.tfrecord");
    let err = Dataset::from_tfrecord_files([missing.clone()], ReadOptions::default(), 1).collect().unwrap_err();
    assert!(err.to_string().starts_with(&missing.display().to_string()), "{err}");
    let err = Dataset::from_tfrecord_files(Vec::<PathBuf>::new(), ReadOptions::default(), 1).collect().unwrap_err();
    assert_eq!(err.to_string(), "from_tfrecord_files: expected at least one file, got none");
    let err = Example::from_bytes(&[0x0A, 0x05, 0x01]).unwrap_err().to_string();
    assert!(err.starts_with("parse_example: expected a serialised tf.train.Example, got 3 bytes that do not parse"), "{err}");
    let err = parse_example(Element::Tensor(Tensor::from_vec(vec![1.0f32], vec![1], fovea_core::Device::Cpu).unwrap())).unwrap_err();
    assert_eq!(err.to_string(), "parse_example: expected a uint8 record tensor, got dtype float32");
}

#[test]
fn parse_single_example_follows_the_spec_like_tensorflow() {
    use fovea_data::tfrecord::{parse_single_example, FixedLenFeature};
    let spec = vec![
        ("label".to_string(), FixedLenFeature::int64(&[])),
        ("ids".to_string(), FixedLenFeature::int64(&[3])),
        ("score".to_string(), FixedLenFeature::float(&[2, 1])),
        ("name".to_string(), FixedLenFeature::bytes()),
        ("weight".to_string(), FixedLenFeature::float(&[]).with_default(Feature::floats([0.5]))),
    ];
    let record = Dataset::from_tfrecord_files([fixture("tf_examples.tfrecord")], ReadOptions::default(), 1).collect().unwrap().remove(3);
    let e = parse_single_example(record.clone(), &spec).unwrap();
    let t = |k: &str| e.field(k).unwrap().tensor().unwrap().clone();
    assert_eq!((t("label").dims(), t("label").to_vec::<i64>().unwrap()), (&[][..], vec![3_000_000_019]));
    assert_eq!(t("ids").to_vec::<i64>().unwrap(), [3, -3, (1 << 40) + 3]);
    assert_eq!((t("score").dims(), t("score").to_vec::<f32>().unwrap()), (&[2, 1][..], vec![0.25, 0.1f32 * 3.0]));
    assert_eq!(t("name").to_vec::<u8>().unwrap(), b"example-3");
    assert_eq!(t("weight").to_vec::<f32>().unwrap(), [0.5]);
    let cases = [
        (("missing", FixedLenFeature::int64(&[])), "parse_single_example: feature \"missing\" is missing and has no default"),
        (("label", FixedLenFeature::float(&[])), "parse_single_example: feature \"label\": expected a float_list, got int64_list"),
        (("ids", FixedLenFeature::int64(&[2, 2])), "parse_single_example: feature \"ids\": expected 4 value(s) for shape [2, 2], got 3"),
    ];
    for ((name, f), msg) in cases {
        let err = parse_single_example(record.clone(), &vec![(name.to_string(), f)]).unwrap_err();
        assert_eq!(err.to_string(), msg);
    }
}

#[test]
fn decode_raw_reads_little_endian_values() {
    use fovea_core::{DType, Device};
    use fovea_data::tfrecord::decode_raw;
    let bytes: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let t = Tensor::from_vec(bytes, vec![8], Device::Cpu).unwrap();
    assert_eq!(decode_raw(&t, DType::F32).unwrap().to_vec::<f32>().unwrap(), [1.5, -2.0]);
    assert_eq!(decode_raw(&t, DType::I64).unwrap().to_vec::<i64>().unwrap(), [i64::from_le_bytes([0, 0, 0xC0, 0x3F, 0, 0, 0, 0xC0])]);
    assert_eq!(decode_raw(&t, DType::U8).unwrap().dims(), &[8]);
    let odd = Tensor::from_vec(vec![0u8; 6], vec![6], Device::Cpu).unwrap();
    assert_eq!(
        decode_raw(&odd, DType::F32).unwrap_err().to_string(),
        "decode_raw: 6 bytes are not a whole number of float32 values (4 bytes each)"
    );
    let f = Tensor::from_vec(vec![0f32; 2], vec![2], Device::Cpu).unwrap();
    assert_eq!(decode_raw(&f, DType::F32).unwrap_err().to_string(), "decode_raw: expected uint8 bytes, got dtype float32");
}

#[test]
fn shuffled_file_order_changes_per_epoch_and_replays_with_the_seed() {
    let mut w = ShardedWriter::create(tmp("shuffled"), 6, Compression::None).unwrap();
    for n in 0..6 {
        w.write(&numbered(n)).unwrap();
    }
    let paths = w.finish().unwrap();
    let make = || Dataset::from_tfrecord_files(paths.clone(), ReadOptions::default().shuffle_files(9), 1);
    let (a, b) = (make(), make());
    let epochs: Vec<Vec<i64>> = (0..4).map(|_| numbers(&a)).collect();
    for e in &epochs {
        let mut sorted = e.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2, 3, 4, 5], "each epoch reads every file once");
    }
    assert!(epochs.windows(2).any(|w| w[0] != w[1]), "the order changes between epochs: {epochs:?}");
    assert_eq!((0..4).map(|_| numbers(&b)).collect::<Vec<_>>(), epochs, "the same seed replays the same epochs");
}
