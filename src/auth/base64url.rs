//! Base64url without padding (RFC 4648 section 5), into and out of caller-provided buffers.
//!
//! What it does: the small encoder and strict decoder the nonce and opaque tokens need. The
//! decoder accepts only the canonical encoding (no padding, no whitespace, unused trailing bits
//! zero), so every token has exactly one spelling. What it does not do: padding, the `+/`
//! alphabet, or streaming.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Value of each byte in the alphabet; 0xFF for bytes outside it.
const DECODE: [u8; 256] = {
    let mut table = [0xFF; 256];
    let mut i = 0;
    while i < 64 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Characters needed for `n` bytes.
pub const fn encoded_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

/// Writes `input` into the front of `out`; `None` if `out` is shorter than
/// [`encoded_len`]`(input.len())`.
pub fn encode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let len = encoded_len(input.len());
    let out = out.get_mut(..len)?;
    let enc = |n: u32, k: u32| ALPHABET[(n >> (18 - 6 * k)) as usize & 63];
    // Whole groups first, with fixed-size chunks the compiler unrolls.
    let (groups, tail) = input.as_chunks::<3>();
    let (chars, rest) = out.as_chunks_mut::<4>();
    for (&[a, b, c], out) in groups.iter().zip(chars) {
        let n = u32::from(a) << 16 | u32::from(b) << 8 | u32::from(c);
        *out = [enc(n, 0), enc(n, 1), enc(n, 2), enc(n, 3)];
    }
    if !tail.is_empty() {
        let b = |i: usize| u32::from(tail.get(i).copied().unwrap_or(0));
        let n = b(0) << 16 | b(1) << 8 | b(2);
        for (k, c) in rest.iter_mut().enumerate() {
            // A 6-bit value: always inside the 64-entry alphabet.
            *c = enc(n, k as u32);
        }
    }
    Some(len)
}

/// Decodes `input` into the front of `out` and returns the byte count; `None` for a character
/// outside the alphabet, an impossible length, non-zero unused bits, or `out` too short.
pub fn decode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    if input.len() % 4 == 1 {
        return None;
    }
    let len = input.len() * 3 / 4;
    let out = out.get_mut(..len)?;
    let (chunks, tail) = input.as_chunks::<4>();
    let (groups, group) = out.as_chunks_mut::<3>();
    // Whole groups: a byte outside the alphabet decodes to 0xFF, so OR-ing every value and
    // checking once afterwards finds it.
    let mut bad = 0u8;
    for (chars, g) in chunks.iter().zip(groups) {
        let [a, b, c, d] = chars.map(|c| DECODE[usize::from(c)]);
        bad |= a | b | c | d;
        let n = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
        *g = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
    }
    if bad & 0xC0 != 0 {
        return None;
    }
    if !tail.is_empty() {
        let mut n = 0u32;
        for &c in tail {
            let v = DECODE[usize::from(c)];
            if v == 0xFF {
                return None;
            }
            n = n << 6 | u32::from(v);
        }
        // Left-align a short final group as if it had been padded with zero characters.
        n <<= 6 * (4 - tail.len());
        // The bits past the last whole byte must be zero, else two texts decode alike.
        let unused = (0xFF_FFFF >> (8 * group.len())) & n;
        if unused != 0 {
            return None;
        }
        for (k, b) in group.iter_mut().enumerate() {
            *b = (n >> (16 - 8 * k)) as u8;
        }
    }
    Some(len)
}

/// The two characters of each 12-bit value, the first in the low byte: a group's four
/// characters in two lookups (8 KiB, for the nonces, which are written and checked on every
/// challenge and every authenticated request).
static PAIRS: [u16; 4096] = {
    let mut table = [0; 4096];
    let mut i = 0;
    while i < 4096 {
        table[i] = ALPHABET[i >> 6] as u16 | (ALPHABET[i & 63] as u16) << 8;
        i += 1;
    }
    table
};

/// Writes the four characters of each 24-bit group (its low 24 bits) into `out`, as many groups
/// as both hold: what [`encode`] writes for the same bytes, three to a group, without laying the
/// bytes out first.
#[inline]
pub fn encode_groups(groups: &[u32], out: &mut [u8]) {
    let pair = |n: u32| u32::from(PAIRS[n as usize & 0xfff]);
    let (chars, _) = out.as_chunks_mut::<4>();
    for (c, &n) in chars.iter_mut().zip(groups) {
        *c = (pair(n >> 12) | pair(n) << 16).to_le_bytes();
    }
}

/// For each place `k` in a group of four characters, the value of each ASCII byte shifted to
/// where that place's six bits go in the group's 24-bit value (the first character highest), or
/// [`NOT_IN_ALPHABET`] for a byte outside the alphabet: a group is the or of four lookups.
static DECODE_AT: [[u32; 128]; 4] = {
    let mut table = [[NOT_IN_ALPHABET; 128]; 4];
    let mut k = 0;
    while k < 4 {
        let mut i = 0;
        while i < 64 {
            table[k][ALPHABET[i] as usize] = (i as u32) << (18 - 6 * k);
            i += 1;
        }
        k += 1;
    }
    table
};

/// Bits no 24-bit group has: [`DECODE_AT`]'s mark for a byte outside the alphabet.
const NOT_IN_ALPHABET: u32 = 0xFF00_0000;

/// The 24-bit values of `input` read as exactly `G` groups of four characters (so no tail and
/// no unused bits: the canonical encoding of `3 * G` bytes); `None` for another length or a
/// character outside the alphabet. Decodes like [`decode`], without writing the bytes out: each
/// group's four characters read as one word, looked up where they go ([`DECODE_AT`]); bytes
/// above 0x7F (which the 128-entry tables do not cover) refused by their high bit.
#[inline]
pub fn decode_groups<const G: usize>(input: &[u8]) -> Option<[u32; G]> {
    let (chunks, tail) = input.as_chunks::<4>();
    if chunks.len() != G || !tail.is_empty() {
        return None;
    }
    let mut groups = [0u32; G];
    let (mut marks, mut high) = (0u32, 0u32);
    for (g, chars) in groups.iter_mut().zip(chunks) {
        let w = u32::from_le_bytes(*chars);
        let at = |k: usize| DECODE_AT[k][(w >> (8 * k)) as usize & 0x7F];
        *g = at(0) | at(1) | at(2) | at(3);
        marks |= *g;
        high |= w;
    }
    (marks & NOT_IN_ALPHABET == 0 && high & 0x8080_8080 == 0).then_some(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648 section 10 vectors, padding stripped.
    #[test]
    fn rfc4648_vectors() {
        let cases: [(&[u8], &[u8]); 7] = [
            (b"", b""),
            (b"f", b"Zg"),
            (b"fo", b"Zm8"),
            (b"foo", b"Zm9v"),
            (b"foob", b"Zm9vYg"),
            (b"fooba", b"Zm9vYmE"),
            (b"foobar", b"Zm9vYmFy"),
        ];
        for (plain, text) in cases {
            let mut buf = [0u8; 16];
            let n = encode(plain, &mut buf).unwrap();
            assert_eq!(&buf[..n], text);
            let mut back = [0u8; 16];
            let n = decode(text, &mut back).unwrap();
            assert_eq!(&back[..n], plain);
        }
    }

    #[test]
    fn url_alphabet_and_round_trip() {
        let mut text = [0u8; 4];
        encode(&[0xFB, 0xFF, 0xBF], &mut text).unwrap();
        assert_eq!(&text, b"-_-_");
        let all: Vec<u8> = (0..=255).collect();
        for len in 0..=all.len() {
            let mut text = [0u8; 344];
            let n = encode(&all[..len], &mut text).unwrap();
            assert_eq!(n, encoded_len(len));
            let mut back = [0u8; 256];
            let m = decode(&text[..n], &mut back).unwrap();
            assert_eq!(&back[..m], &all[..len]);
        }
    }

    /// Groups against the byte decoder: every byte value through each position, and every
    /// character, valid or not.
    #[test]
    fn groups_agree_with_decode() {
        let all: Vec<u8> = (0..=255).collect();
        for window in all.windows(6) {
            let mut text = [0u8; 8];
            encode(window, &mut text).unwrap();
            let groups = decode_groups::<2>(&text).unwrap();
            let bytes: Vec<u8> = groups
                .iter()
                .flat_map(|g| [(g >> 16) as u8, (g >> 8) as u8, *g as u8])
                .collect();
            assert_eq!(bytes, window);
        }
        for c in 0..=255u8 {
            for at in 0..8 {
                let mut text = *b"Zm9vYmFy";
                text[at] = c;
                let mut out = [0u8; 6];
                assert_eq!(
                    decode_groups::<2>(&text).is_some(),
                    decode(&text, &mut out).is_some(),
                    "{c:#x} at {at}"
                );
            }
        }
        for window in all.windows(6) {
            let groups = [0, 3].map(|k| {
                u32::from(window[k]) << 16
                    | u32::from(window[k + 1]) << 8
                    | u32::from(window[k + 2])
            });
            let (mut by_groups, mut by_bytes) = ([0u8; 8], [0u8; 8]);
            encode_groups(&groups, &mut by_groups);
            encode(window, &mut by_bytes).unwrap();
            assert_eq!(by_groups, by_bytes);
        }
        assert!(decode_groups::<2>(b"Zm9vYmF").is_none());
        assert!(decode_groups::<2>(b"Zm9vYmFyZg").is_none());
        assert!(decode_groups::<1>(b"Zm9vYmFy").is_none());
    }

    #[test]
    fn rejects_non_canonical_and_short_buffers() {
        let cases: [&[u8]; 7] = [
            b"Zg==", // padding
            b"Z",    // a lone character carries no whole byte
            b"Zh",   // unused bits set: 'h' leaves a 1 in the low four bits
            b"Zm8",  // canonical "fo": the one that decodes
            b"Zm+v", // the standard alphabet, not the URL one
            b"Zm9 ", // whitespace
            b"Zm/v",
        ];
        for text in cases {
            let mut out = [0u8; 8];
            let ok = decode(text, &mut out).is_some();
            assert_eq!(ok, text == b"Zm8", "{text:?}");
        }
        // "Zm9" also spells "fo" if the two unused bits are ignored; they are not.
        assert!(decode(b"Zm9", &mut [0u8; 8][..]).is_none());
        assert_eq!(decode(b"Zm8", &mut [0u8; 2][..]), Some(2));
        assert!(decode(b"Zm9v", &mut [0u8; 2][..]).is_none());
        assert!(encode(b"foo", &mut [0u8; 3][..]).is_none());
    }
}
