//! The MD5 block function (RFC 1321 3.4) and a one-shot digest over a buffer with room to pad
//! in place: the digest a registrar computes for every authenticated MD5 request.
//!
//! Why not the md-5 crate on this path: it does not export its block function, and through its
//! `Digest` API a one-shot digest costs about 125 instructions besides the compressions (the
//! tail copied into the block buffer, padded there, the output copied out twice). Its soft block
//! function also loads all sixteen message words into an array first, which spills to the stack
//! (about 660 instructions a block). This one reads each word where it is added, through a
//! pointer the optimizer cannot see is the same across the rounds (so it neither keeps sixteen
//! words live nor spills them), and computes F and G in their three-operation forms
//! (`F(x,y,z) = z ^ (x & (y ^ z))`, `G(x,y,z) = y ^ (z & (x ^ y))`, where RFC 1321 writes
//! four): about 590 instructions a block. The crate remains the MD5 of the incremental paths
//! (inputs longer than the stack buffer); the tests compare the two at every length across
//! several blocks.
//!
//! What it does not do: streaming, or anything but whole 64-byte blocks of a buffer the caller
//! has already zeroed past the message.

/// The state before the first block (RFC 1321 3.3).
const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// Bytes of padding MD5 adds at least: the 0x80 byte and the 64-bit length.
pub(super) const MIN_PAD: usize = 9;

/// The length of `len` message bytes once padded: the next multiple of 64 with room for
/// [`MIN_PAD`] bytes.
pub(super) const fn padded_len(len: usize) -> usize {
    (len + MIN_PAD).div_ceil(64) * 64
}

/// The message word `i` (0 to 15) of `block`, little-endian.
#[inline(always)]
fn word(block: &[u8; 64], i: usize) -> u32 {
    let (_, rest) = block.split_at(4 * i);
    let (w, _) = rest.split_first_chunk::<4>().unwrap_or((&[0; 4], &[]));
    u32::from_le_bytes(*w)
}

/// Processes one 64-byte block into `state` (RFC 1321 3.4, the 64 steps unrolled).
#[inline(never)]
fn compress(state: &mut [u32; 4], block: &[u8; 64]) {
    let [mut a, mut b, mut c, mut d] = *state;
    // Each round reads the block through a pointer the optimizer cannot see is the same: it then
    // loads every word where it is added (16 loads a round) instead of keeping all sixteen live
    // across the rounds, which spills them to the stack and reloads them (about 60 instructions
    // more a block).
    let mut m = block;
    macro_rules! step {
        ($f:expr, $a:ident, $b:ident, $c:ident, $d:ident, $i:expr, $k:expr, $s:expr) => {
            $a = $b.wrapping_add(
                $a.wrapping_add($f($b, $c, $d))
                    .wrapping_add(word(m, $i))
                    .wrapping_add($k)
                    .rotate_left($s),
            );
        };
    }
    let f = |x: u32, y: u32, z: u32| z ^ (x & (y ^ z));
    let g = |x: u32, y: u32, z: u32| y ^ (z & (x ^ y));
    let h = |x: u32, y: u32, z: u32| x ^ y ^ z;
    let i = |x: u32, y: u32, z: u32| y ^ (x | !z);

    step!(f, a, b, c, d, 0, 0xd76a_a478, 7);
    step!(f, d, a, b, c, 1, 0xe8c7_b756, 12);
    step!(f, c, d, a, b, 2, 0x2420_70db, 17);
    step!(f, b, c, d, a, 3, 0xc1bd_ceee, 22);
    step!(f, a, b, c, d, 4, 0xf57c_0faf, 7);
    step!(f, d, a, b, c, 5, 0x4787_c62a, 12);
    step!(f, c, d, a, b, 6, 0xa830_4613, 17);
    step!(f, b, c, d, a, 7, 0xfd46_9501, 22);
    step!(f, a, b, c, d, 8, 0x6980_98d8, 7);
    step!(f, d, a, b, c, 9, 0x8b44_f7af, 12);
    step!(f, c, d, a, b, 10, 0xffff_5bb1, 17);
    step!(f, b, c, d, a, 11, 0x895c_d7be, 22);
    step!(f, a, b, c, d, 12, 0x6b90_1122, 7);
    step!(f, d, a, b, c, 13, 0xfd98_7193, 12);
    step!(f, c, d, a, b, 14, 0xa679_438e, 17);
    step!(f, b, c, d, a, 15, 0x49b4_0821, 22);

    m = core::hint::black_box(block);
    step!(g, a, b, c, d, 1, 0xf61e_2562, 5);
    step!(g, d, a, b, c, 6, 0xc040_b340, 9);
    step!(g, c, d, a, b, 11, 0x265e_5a51, 14);
    step!(g, b, c, d, a, 0, 0xe9b6_c7aa, 20);
    step!(g, a, b, c, d, 5, 0xd62f_105d, 5);
    step!(g, d, a, b, c, 10, 0x0244_1453, 9);
    step!(g, c, d, a, b, 15, 0xd8a1_e681, 14);
    step!(g, b, c, d, a, 4, 0xe7d3_fbc8, 20);
    step!(g, a, b, c, d, 9, 0x21e1_cde6, 5);
    step!(g, d, a, b, c, 14, 0xc337_07d6, 9);
    step!(g, c, d, a, b, 3, 0xf4d5_0d87, 14);
    step!(g, b, c, d, a, 8, 0x455a_14ed, 20);
    step!(g, a, b, c, d, 13, 0xa9e3_e905, 5);
    step!(g, d, a, b, c, 2, 0xfcef_a3f8, 9);
    step!(g, c, d, a, b, 7, 0x676f_02d9, 14);
    step!(g, b, c, d, a, 12, 0x8d2a_4c8a, 20);

    m = core::hint::black_box(block);
    step!(h, a, b, c, d, 5, 0xfffa_3942, 4);
    step!(h, d, a, b, c, 8, 0x8771_f681, 11);
    step!(h, c, d, a, b, 11, 0x6d9d_6122, 16);
    step!(h, b, c, d, a, 14, 0xfde5_380c, 23);
    step!(h, a, b, c, d, 1, 0xa4be_ea44, 4);
    step!(h, d, a, b, c, 4, 0x4bde_cfa9, 11);
    step!(h, c, d, a, b, 7, 0xf6bb_4b60, 16);
    step!(h, b, c, d, a, 10, 0xbebf_bc70, 23);
    step!(h, a, b, c, d, 13, 0x289b_7ec6, 4);
    step!(h, d, a, b, c, 0, 0xeaa1_27fa, 11);
    step!(h, c, d, a, b, 3, 0xd4ef_3085, 16);
    step!(h, b, c, d, a, 6, 0x0488_1d05, 23);
    step!(h, a, b, c, d, 9, 0xd9d4_d039, 4);
    step!(h, d, a, b, c, 12, 0xe6db_99e5, 11);
    step!(h, c, d, a, b, 15, 0x1fa2_7cf8, 16);
    step!(h, b, c, d, a, 2, 0xc4ac_5665, 23);

    m = core::hint::black_box(block);
    step!(i, a, b, c, d, 0, 0xf429_2244, 6);
    step!(i, d, a, b, c, 7, 0x432a_ff97, 10);
    step!(i, c, d, a, b, 14, 0xab94_23a7, 15);
    step!(i, b, c, d, a, 5, 0xfc93_a039, 21);
    step!(i, a, b, c, d, 12, 0x655b_59c3, 6);
    step!(i, d, a, b, c, 3, 0x8f0c_cc92, 10);
    step!(i, c, d, a, b, 10, 0xffef_f47d, 15);
    step!(i, b, c, d, a, 1, 0x8584_5dd1, 21);
    step!(i, a, b, c, d, 8, 0x6fa8_7e4f, 6);
    step!(i, d, a, b, c, 15, 0xfe2c_e6e0, 10);
    step!(i, c, d, a, b, 6, 0xa301_4314, 15);
    step!(i, b, c, d, a, 13, 0x4e08_11a1, 21);
    step!(i, a, b, c, d, 4, 0xf753_7e82, 6);
    step!(i, d, a, b, c, 11, 0xbd3a_f235, 10);
    step!(i, c, d, a, b, 2, 0x2ad7_d2bb, 15);
    step!(i, b, c, d, a, 9, 0xeb86_d391, 21);

    let [sa, sb, sc, sd] = state;
    *sa = sa.wrapping_add(a);
    *sb = sb.wrapping_add(b);
    *sc = sc.wrapping_add(c);
    *sd = sd.wrapping_add(d);
}

/// MD5 of `buf[..len]`, padded in place: `buf[len..]` must be zero up to
/// [`padded_len`]`(len)`, which must fit in `buf`; `None` if it does not.
#[inline]
pub(super) fn digest_in_place(buf: &mut [u8], len: usize) -> Option<[u8; 16]> {
    let end = padded_len(len);
    let padded = buf.get_mut(..end)?;
    *padded.get_mut(len)? = 0x80;
    let bits = (len as u64).wrapping_mul(8).to_le_bytes();
    padded.get_mut(end - 8..)?.copy_from_slice(&bits);
    let mut state = INIT;
    let (blocks, _) = padded.as_chunks::<64>();
    for block in blocks {
        compress(&mut state, block);
    }
    Some(output(&state))
}

/// The digest of a final state: the four words little-endian.
fn output(state: &[u32; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use md5::{Digest, Md5};

    use super::*;

    fn one_shot(data: &[u8]) -> [u8; 16] {
        let mut buf = vec![0u8; padded_len(data.len())];
        buf[..data.len()].copy_from_slice(data);
        digest_in_place(&mut buf, data.len()).unwrap()
    }

    /// RFC 1321 A.5, the test suite.
    #[test]
    fn rfc1321_suite() {
        let cases: [(&str, &str); 7] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (text, want) in cases {
            let got: String = one_shot(text.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(got, want, "{text:?}");
        }
    }

    /// Every length across the block boundaries, against the md-5 crate.
    #[test]
    fn matches_the_crate() {
        let data: Vec<u8> = (0..400u32).map(|i| (i * 31 + i / 7) as u8).collect();
        for len in 0..=data.len() {
            let want: [u8; 16] = Md5::digest(&data[..len]).into();
            assert_eq!(one_shot(&data[..len]), want, "{len}");
        }
    }

    #[test]
    fn padding_must_fit() {
        for len in [0, 55, 56, 63, 64, 119, 120] {
            let end = padded_len(len);
            assert!(
                end >= len + MIN_PAD && end.is_multiple_of(64) && end - len <= 64 + 8,
                "{len}"
            );
            let mut short = vec![0u8; end - 1];
            assert!(digest_in_place(&mut short, len).is_none(), "{len}");
        }
        assert_eq!(padded_len(55), 64);
        assert_eq!(padded_len(56), 128);
        assert_eq!(padded_len(117), 128);
        assert_eq!(padded_len(119), 128);
        assert_eq!(padded_len(120), 192);
    }
}
