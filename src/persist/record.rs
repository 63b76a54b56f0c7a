//! The record format shared by journals, snapshots and generation markers, and the scanner that
//! reads it back keeping every intact record.
//!
//! ```text
//! magic [0xFF 'S' 'R' '1'] | len u32 LE | crc u32 LE | body (len bytes)
//! body: kind u8 | ...
//!   kind 1 upsert, 2 remove: aor_len u32 LE | aor bytes | Binding::encode_durable
//!   kind 3 generation:       shards u32 LE
//! ```
//!
//! `crc` is CRC-32 (IEEE) over the four `len` bytes and the body, so a flipped length is caught
//! like a flipped body byte. The magic starts with 0xFF, a byte no UTF-8 text holds, so a resync
//! after damage rarely stops inside text fields, and never accepts a false start: a candidate
//! must also have a sane length and a matching checksum.
//!
//! Records are encoded by the worker with a zero checksum ([`push_binding`]: a few copies, no
//! syscall) and sealed by the writer thread ([`seal`]) just before they reach the file, so the
//! checksum work is off the hot path.

use crate::location::{Aor, Binding};

pub const MAGIC: [u8; 4] = [0xFF, b'S', b'R', b'1'];
pub const HEADER: usize = 12;
/// No body is longer: a binding's fields fit in 64 KiB, an AOR in far less. A larger length is
/// damage.
pub const MAX_BODY: usize = 1 << 20;

pub const KIND_UPSERT: u8 = 1;
pub const KIND_REMOVE: u8 = 2;
pub const KIND_GENERATION: u8 = 3;

/// Appends an unsealed upsert or remove record of `binding` of `aor` to `buf`.
pub fn push_binding(buf: &mut Vec<u8>, kind: u8, aor: &Aor, binding: &Binding) {
    let start = buf.len();
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&[0; 8]);
    buf.push(kind);
    let aor = aor.as_bytes();
    buf.extend_from_slice(&(aor.len() as u32).to_le_bytes());
    buf.extend_from_slice(aor);
    binding.encode_durable(buf);
    set_len(buf, start);
}

/// Appends an unsealed generation marker saying the generation has `shards` shards.
pub fn push_generation(buf: &mut Vec<u8>, shards: u32) {
    let start = buf.len();
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&[0; 8]);
    buf.push(KIND_GENERATION);
    buf.extend_from_slice(&shards.to_le_bytes());
    set_len(buf, start);
}

fn set_len(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start - HEADER) as u32;
    if let Some(field) = buf.get_mut(start + 4..start + 8) {
        field.copy_from_slice(&len.to_le_bytes());
    }
}

/// Fills in the checksum of every record in `buf`, a whole number of records from
/// [`push_binding`] / [`push_generation`].
pub fn seal(buf: &mut [u8]) {
    let mut pos = 0;
    while let Some(len_bytes) = buf.get(pos + 4..pos + 8) {
        let len = u32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        let end = pos + HEADER + len as usize;
        let Some(body) = buf.get(pos + HEADER..end) else {
            return;
        };
        let crc = checksum(len, body);
        if let Some(field) = buf.get_mut(pos + 8..pos + 12) {
            field.copy_from_slice(&crc.to_le_bytes());
        }
        pos = end;
    }
}

fn checksum(len: u32, body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(body);
    h.finalize()
}

/// The body of the intact record at `pos`, and where the next one starts.
fn record_at(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let header = buf.get(pos..pos.checked_add(HEADER)?)?;
    let (magic, rest) = header.split_first_chunk::<4>()?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let crc = u32::from_le_bytes(*rest.first_chunk::<4>()?);
    if *magic != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(*len);
    if len as usize > MAX_BODY {
        return None;
    }
    let end = pos + HEADER + len as usize;
    let body = buf.get(pos + HEADER..end)?;
    (checksum(len, body) == crc).then_some((body, end))
}

/// What a scan of one file found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Intact records handed to the visitor.
    pub records: u64,
    /// Damaged stretches skipped (a torn tail counts as one).
    pub damaged: u64,
    /// Bytes in those stretches.
    pub bytes_skipped: u64,
}

/// Hands the body of every intact record of `buf` to `visit`, in order. After damage it resyncs
/// on the next offset where a whole valid record starts, so one bad record costs only itself.
pub fn scan(buf: &[u8], mut visit: impl FnMut(&[u8])) -> Scan {
    let mut out = Scan::default();
    let mut pos = 0;
    while pos < buf.len() {
        if let Some((body, next)) = record_at(buf, pos) {
            visit(body);
            out.records += 1;
            pos = next;
            continue;
        }
        // Damage: look for the next magic that starts a valid record.
        let mut from = pos + 1;
        let resume = loop {
            let Some(rest) = buf.get(from..) else {
                break buf.len();
            };
            match memchr::memmem::find(rest, &MAGIC) {
                Some(i) if record_at(buf, from + i).is_some() => break from + i,
                Some(i) => from += i + 1,
                None => break buf.len(),
            }
        };
        out.damaged += 1;
        out.bytes_skipped += (resume - pos) as u64;
        pos = resume;
    }
    out
}

/// A decoded upsert or remove body.
pub struct BindingRecord {
    pub kind: u8,
    pub aor: Aor,
    pub binding: Binding,
}

/// Decodes an upsert or remove body; `None` for another kind or malformed fields (which a
/// matching checksum makes a bug or a newer format, not damage).
pub fn decode_binding(body: &[u8]) -> Option<BindingRecord> {
    let (&kind, rest) = body.split_first()?;
    if kind != KIND_UPSERT && kind != KIND_REMOVE {
        return None;
    }
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let (aor, rest) = rest.split_at_checked(u32::from_le_bytes(*len) as usize)?;
    let (binding, rest) = Binding::decode_durable(rest)?;
    rest.is_empty().then(|| BindingRecord {
        kind,
        aor: Aor::from_stored(aor),
        binding,
    })
}

/// The shard count of a generation marker body.
pub fn decode_generation(body: &[u8]) -> Option<u32> {
    match body {
        [KIND_GENERATION, a, b, c, d] => Some(u32::from_le_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies(buf: &[u8]) -> (Vec<Vec<u8>>, Scan) {
        let mut out = Vec::new();
        let scan = scan(buf, |b| out.push(b.to_vec()));
        (out, scan)
    }

    fn sample() -> Vec<u8> {
        let mut buf = Vec::new();
        for n in 1..=5 {
            push_generation(&mut buf, n);
        }
        seal(&mut buf);
        buf
    }

    #[test]
    fn sealed_records_scan_back() {
        let buf = sample();
        assert_eq!(buf.len(), 5 * (HEADER + 5));
        let (got, scan) = bodies(&buf);
        let shards: Vec<_> = got.iter().filter_map(|b| decode_generation(b)).collect();
        assert_eq!(shards, [1, 2, 3, 4, 5]);
        assert_eq!(
            scan,
            Scan {
                records: 5,
                damaged: 0,
                bytes_skipped: 0
            }
        );
    }

    #[test]
    fn unsealed_records_are_refused() {
        let mut buf = Vec::new();
        push_generation(&mut buf, 1);
        let (got, scan) = bodies(&buf);
        assert!(got.is_empty());
        assert_eq!(scan.bytes_skipped, buf.len() as u64);
    }

    #[test]
    fn every_single_bit_flip_costs_at_most_one_record() {
        let buf = sample();
        for bit in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let (got, scan) = bodies(&bad);
            assert!(got.len() >= 4, "bit {bit}: {scan:?}");
            assert_eq!(scan.damaged, 5 - got.len() as u64, "bit {bit}");
        }
    }

    #[test]
    fn every_truncation_keeps_the_whole_records_before_it() {
        let buf = sample();
        let rec = HEADER + 5;
        for n in 0..=buf.len() {
            let (got, scan) = bodies(&buf[..n]);
            assert_eq!(got.len(), n / rec, "{n}");
            assert_eq!(scan.bytes_skipped, (n % rec) as u64, "{n}");
        }
    }

    #[test]
    fn garbage_with_a_record_inside_keeps_the_record() {
        let mut buf = vec![0xFF; 100];
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&[0xFF; 3]);
        let mut rec = Vec::new();
        push_generation(&mut rec, 7);
        seal(&mut rec);
        buf.extend_from_slice(&rec);
        buf.extend_from_slice(b"trailing junk");
        let (got, scan) = bodies(&buf);
        assert_eq!(got.len(), 1);
        assert_eq!(decode_generation(&got[0]), Some(7));
        assert_eq!(scan.damaged, 2);
        assert_eq!(scan.bytes_skipped, (buf.len() - rec.len()) as u64);
    }
}
