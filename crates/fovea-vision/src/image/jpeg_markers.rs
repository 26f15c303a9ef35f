//! Whether a JPEG stream reaches its end-of-image marker. The JPEG decoder pads a stream that
//! stops mid-scan with grey and reports success; libjpeg (TensorFlow's `decode_jpeg`) and Pillow
//! refuse such a file, and so must we: a half-downloaded photo is not an image to classify.

/// Walks the JPEG's marker segments (skipping APPn payloads, which may hold a whole thumbnail
/// JPEG of their own) and the entropy-coded data after each SOS, and reports whether the
/// end-of-image marker (FFD9) is reached. Data after EOI is allowed, as decoders allow it.
pub(crate) fn reaches_end_of_image(bytes: &[u8]) -> bool {
    if bytes.len() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8 {
        return false;
    }
    let mut at = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while at < bytes.len() && bytes[at] == 0xFF && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (bytes.get(at), bytes.get(at + 1)) else { return false };
        at += 2;
        match marker {
            0xD9 => return true,
            // Stand-alone markers: TEM and RSTn carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = bytes.get(at..at + 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))) else { return false };
        if len < 2 {
            return false;
        }
        at += len;
        if at > bytes.len() {
            return false;
        }
        if marker == 0xDA {
            // Entropy-coded data: 0xFF is stuffed as FF00 and restart markers are FFD0–FFD7;
            // any other FFxx ends the scan.
            loop {
                match (bytes.get(at), bytes.get(at + 1)) {
                    (Some(0xFF), Some(0x00 | 0xD0..=0xD7)) => at += 2,
                    (Some(0xFF), Some(_)) => break,
                    (Some(_), _) => at += 1,
                    (None, _) => return false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reaches_end_of_image;

    /// SOI, an APP0 segment, an SOS header and two bytes of scan data with a stuffed FF00 and a
    /// restart marker, then EOI.
    fn minimal() -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x4A, 0x46];
        j.extend([0xFF, 0xDA, 0x00, 0x03, 0x01, 0x12, 0xFF, 0x00, 0xFF, 0xD0, 0x34]);
        j.extend([0xFF, 0xD9]);
        j
    }

    #[test]
    fn a_complete_stream_reaches_eoi_and_every_truncation_does_not() {
        let full = minimal();
        assert!(reaches_end_of_image(&full));
        for cut in 0..full.len() {
            assert!(!reaches_end_of_image(&full[..cut]), "cut at {cut}");
        }
        let mut trailing = full.clone();
        trailing.extend([0, 0, 0]);
        assert!(reaches_end_of_image(&trailing));
    }

    #[test]
    fn an_eoi_inside_an_app_segment_is_not_the_end() {
        // An EXIF thumbnail is a JPEG of its own inside APP1: its EOI must not count.
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD8, 0xFF, 0xD9];
        j.extend([0xFF, 0xDA, 0x00, 0x03, 0x01, 0x12]);
        assert!(!reaches_end_of_image(&j));
        j.extend([0xFF, 0xD9]);
        assert!(reaches_end_of_image(&j));
    }

    #[test]
    fn the_sample_photos_are_complete() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "jpg" || e == "jpeg") {
                let bytes = std::fs::read(&path).unwrap();
                assert!(reaches_end_of_image(&bytes), "{}", path.display());
                assert!(!reaches_end_of_image(&bytes[..bytes.len() * 2 / 3]), "{}", path.display());
                seen += 1;
            }
        }
        assert!(seen > 0, "no JPEG fixtures in {dir}");
    }
}
