//! PNG bombs (a small file whose header declares far more pixels than the limit) end in a clear
//! error before anything is inflated, within a small memory budget; an image at the limit
//! still decodes; damaged PNGs and JPEGs are clean errors. Limits are passed explicitly.

use fovea_core::testing::PeakAlloc;
use fovea_core::{Device, Tensor};
use fovea_vision::image::{decode_image_with_limit, decode_png, encode_png};

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

const MIB: u64 = 1 << 20;

fn zeros_png(h: usize, w: usize, c: usize) -> Vec<u8> {
    encode_png(&Tensor::from_vec(vec![0u8; h * w * c], vec![h, w, c], Device::Cpu).unwrap()).unwrap()
}

#[test]
fn a_png_declaring_more_pixels_than_the_limit_is_refused_before_inflating() {
    // 2048×2048 RGB zeros: 64 KiB of PNG for 12 MiB of pixels.
    let png = zeros_png(2048, 2048, 3);
    assert!(png.len() < 128 << 10, "{}", png.len());
    let (result, peak) = PeakAlloc::peak_during(|| decode_image_with_limit(&png, 0, Device::Cpu, MIB));
    let e = result.unwrap_err();
    assert!(matches!(e, fovea_core::Error::InvalidArgument { op: "decode_image", .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "decode_image: invalid argument: a 2048×2048 PNG with 3 channel(s) of 1 byte(s) declares 12 MiB, over the \
         decompression limit of 1 MiB (set FOVEA_MAX_DECOMPRESSED_BYTES to raise it)"
    );
    assert!(peak < MIB, "took {peak} bytes");
    // Asking for more channels than the file has counts the tensor that would come out.
    let e = decode_image_with_limit(&zeros_png(512, 512, 1), 4, Device::Cpu, MIB - 1).unwrap_err().to_string();
    assert!(e.contains("a 512×512 PNG with 1 channel(s) of 1 byte(s) declares 1 MiB, over the decompression limit of"), "{e}");
}

#[test]
fn a_forged_png_header_of_gigapixels_fails_under_the_default_limit() {
    // A 1×1 PNG whose header is rewritten to 100,000 × 100,000 (with a valid CRC): 30 GB of
    // RGB pixels declared, over the default 4 GiB limit.
    let mut png = zeros_png(1, 1, 3);
    png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    let (result, peak) = PeakAlloc::peak_during(|| decode_png(&png, 0, Device::Cpu));
    let e = result.unwrap_err().to_string();
    // The default limit, unless FOVEA_MAX_DECOMPRESSED_BYTES says otherwise where this runs.
    assert!(
        e.starts_with("decode_png: invalid argument: a 100000×100000 PNG with 3 channel(s) of 1 byte(s) declares 30,000,000,000 bytes, over the decompression limit of ")
            && e.ends_with("(set FOVEA_MAX_DECOMPRESSED_BYTES to raise it)"),
        "{e}"
    );
    assert!(peak < MIB, "took {peak} bytes");
}

#[test]
fn a_png_at_the_limit_decodes() {
    let img: Vec<u8> = (0..64 * 48 * 3).map(|i| (i * 7 % 256) as u8).collect();
    let t = Tensor::from_vec(img.clone(), vec![64, 48, 3], Device::Cpu).unwrap();
    let png = encode_png(&t).unwrap();
    let back = decode_image_with_limit(&png, 0, Device::Cpu, img.len() as u64).unwrap();
    assert_eq!((back.dims().to_vec(), back.to_vec::<u8>().unwrap()), (vec![64, 48, 3], img.clone()));
    assert!(decode_image_with_limit(&png, 0, Device::Cpu, img.len() as u64 - 1).is_err());
}

/// Recomputes every chunk's CRC, so damage inside a chunk reaches the decoder instead of
/// stopping at the checksum.
fn fix_crcs(png: &mut [u8]) {
    let mut at = 8;
    while at + 12 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let Some(end) = (at + 8).checked_add(len).filter(|&e| e + 4 <= png.len()) else { break };
        let crc = crc32fast::hash(&png[at + 4..end]);
        png[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        at = end + 4;
    }
}

#[test]
fn damaged_pngs_are_clean_errors_within_a_small_memory_budget() {
    // A bounded, deterministic mutation test: byte and bit flips, size fields set huge,
    // truncations and spliced copies of a small valid PNG (CRCs fixed up, so the damage reaches
    // the decoder) must each give Ok or a clean Err, never a panic, and never a large allocation.
    let img: Vec<u8> = (0..6 * 5 * 3).map(|i| (i * 11 % 256) as u8).collect();
    let valid = encode_png(&Tensor::from_vec(img, vec![6, 5, 3], Device::Cpu).unwrap()).unwrap();
    let mut state = 0x5eed_u64;
    let mut next = move |n: usize| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % n.max(1) as u64) as usize
    };
    for case in 0..400 {
        let mut png = valid.clone();
        for _ in 0..1 + next(3) {
            let at = next(png.len());
            match next(5) {
                0 => png[at] = next(256) as u8,
                1 => png[at] ^= 1 << next(8),
                2 => {
                    let end = (at + 4).min(png.len());
                    png[at..end].fill(0xff);
                }
                3 => png.truncate(at.max(1)),
                _ => {
                    let from = next(png.len());
                    let chunk = png[from..(from + 1 + next(16)).min(png.len())].to_vec();
                    png.splice(at..at, chunk);
                }
            }
        }
        if next(4) != 0 {
            fix_crcs(&mut png);
        }
        let (result, peak) = PeakAlloc::peak_during(|| {
            std::panic::catch_unwind(|| {
                let _ = decode_image_with_limit(&png, 0, Device::Cpu, MIB);
                let _ = decode_image_with_limit(&png, 4, Device::Cpu, MIB);
            })
        });
        assert!(result.is_ok(), "case {case} panicked: {png:02x?}");
        // Whatever the header declares, the decoder stays within the limit it was given.
        assert!(peak < 8 * MIB, "case {case} took {peak} bytes");
    }
}

#[test]
fn damaged_jpegs_are_clean_errors_within_a_small_memory_budget() {
    // The same for JPEG (no checksums to fix): damaged copies of a small baseline JPEG decode
    // or fail cleanly, never panic, and stay within the limit they were given.
    let valid = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smooth24x32.jpg")).unwrap();
    assert!(decode_image_with_limit(&valid, 0, Device::Cpu, MIB).is_ok(), "the undamaged JPEG decodes");
    fovea_core::testing::mutation::no_panics("JPEG", &valid, 400, false, |b| {
        let (_, peak) = PeakAlloc::peak_during(|| {
            let _ = decode_image_with_limit(b, 0, Device::Cpu, MIB);
            let _ = decode_image_with_limit(b, 3, Device::Cpu, MIB);
        });
        assert!(peak < 8 * MIB, "a damaged JPEG took {peak} bytes");
    });
}
