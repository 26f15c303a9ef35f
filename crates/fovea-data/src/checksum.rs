//! MD5 digests of downloads. The dataset authors publish MD5 sums (Fashion-MNIST's README,
//! the CIFAR page), so MD5 is what can be checked; it guards against truncated and corrupted
//! transfers, not against tampering. A few dozen lines here spare the crate a hashing dependency.

/// The per-round shift amounts of RFC 1321.
const S: [u32; 64] = [
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4,
    11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];

/// `floor(|sin(i + 1)| * 2^32)`, RFC 1321's table.
fn k(i: usize) -> u32 {
    ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32
}

fn block(state: &mut [u32; 4], chunk: &[u8], table: &[u32; 64]) {
    let m: Vec<u32> = chunk.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect();
    let [mut a, mut b, mut c, mut d] = *state;
    for i in 0..64 {
        let (f, g) = match i / 16 {
            0 => ((b & c) | (!b & d), i),
            1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
            2 => (b ^ c ^ d, (3 * i + 5) % 16),
            _ => (c ^ (b | !d), (7 * i) % 16),
        };
        let rotated = a.wrapping_add(f).wrapping_add(table[i]).wrapping_add(m[g]).rotate_left(S[i]);
        (a, d, c) = (d, c, b);
        b = b.wrapping_add(rotated);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d]) {
        *s = s.wrapping_add(v);
    }
}

/// The MD5 digest of `data` as 32 lowercase hex digits.
pub fn md5_hex(data: &[u8]) -> String {
    let table: [u32; 64] = std::array::from_fn(k);
    let mut state = [0x6745_2301u32, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let mut chunks = data.chunks_exact(64);
    for c in &mut chunks {
        block(&mut state, c, &table);
    }
    // Padding: a 1 bit, zeros to 56 mod 64, then the length in bits, little-endian.
    let mut tail = chunks.remainder().to_vec();
    tail.push(0x80);
    while tail.len() % 64 != 56 {
        tail.push(0);
    }
    tail.extend(((data.len() as u64).wrapping_mul(8)).to_le_bytes());
    for c in tail.chunks_exact(64) {
        block(&mut state, c, &table);
    }
    state.iter().flat_map(|s| s.to_le_bytes()).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::md5_hex;

    #[test]
    fn matches_the_rfc_1321_test_suite() {
        // RFC 1321, appendix A.5.
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"a"), "0cc175b9c0f1b6a831c399e269772661");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(md5_hex(b"message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
        assert_eq!(md5_hex(b"abcdefghijklmnopqrstuvwxyz"), "c3fcd3d76192e4007dfb496cca67e13b");
        assert_eq!(
            md5_hex(b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
        // 56..64-byte inputs need a second padding block; values from Python's hashlib.md5.
        assert_eq!(md5_hex(&(0..60).collect::<Vec<u8>>()), "63ed72093ae09e2c8553ee069e63d702");
        assert_eq!(md5_hex(&(0..200).collect::<Vec<u8>>()), "fb7001d34b8e82c9b579be5005d5b0a5");
    }
}
