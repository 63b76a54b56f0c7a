//! Start-up: the bindings on disk, replayed, checked and split by the new shard count.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use core::hash::BuildHasher;
use hashbrown::{DefaultHashBuilder, HashTable};

use super::record::{self, KIND_REMOVE, KIND_UPSERT};
use super::{FileName, shard_of};
use crate::location::{Aor, Binding};

/// What [`load`] found: the live bindings grouped by the new shard count, and a report.
#[derive(Debug, Default)]
pub struct Loaded {
    /// `shards[i]` holds the bindings of shard `i` (by [`shard_of`]), each with its AOR.
    pub shards: Vec<Vec<(Aor, Binding)>>,
    pub report: Report,
    /// The highest generation number seen, complete or not; [`start`](super::start) writes the
    /// next one.
    pub(super) last_generation: u64,
    /// Every file of ours in the directory; [`start`](super::start) deletes them once the new
    /// generation is complete.
    pub(super) old_files: Vec<PathBuf>,
}

/// What start-up read, skipped and dropped. `Display` gives a one-line summary to log; the
/// per-file details are in [`Report::files`].
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The generation loaded (0: none).
    pub generation: u64,
    /// Its shard count.
    pub generation_shards: usize,
    /// The files replayed, in order, with what each held.
    pub files: Vec<FileReport>,
    /// Intact records read.
    pub records: u64,
    /// Damaged stretches skipped, over all files (a torn tail is one).
    pub damaged: u64,
    pub bytes_skipped: u64,
    /// Records with a valid checksum but a body this version cannot decode.
    pub undecodable: u64,
    /// Bindings dropped because they expired while the server was down.
    pub expired: u64,
    /// Bindings loaded.
    pub bindings: u64,
    /// Shards of the loaded generation with no snapshot (their disk state had been invalidated
    /// after a write error, see the module docs): their bindings are lost.
    pub missing_shards: Vec<usize>,
    /// Files not replayed, with why (superseded by a newer snapshot or generation, unreadable,
    /// an unfinished `.tmp`). They are deleted by [`start`](super::start).
    pub ignored: Vec<(String, String)>,
}

/// One replayed file.
#[derive(Clone, Debug, Default)]
pub struct FileReport {
    pub name: String,
    pub bytes: u64,
    pub records: u64,
    pub damaged: u64,
    pub bytes_skipped: u64,
    pub undecodable: u64,
}

impl Report {
    /// Whether anything was skipped or missing: worth a warning in the log.
    pub fn has_damage(&self) -> bool {
        self.damaged > 0 || self.undecodable > 0 || !self.missing_shards.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "generation {} ({} shards): {} bindings from {} records in {} files; \
             {} expired while down; {} damaged stretches ({} bytes) and {} undecodable records skipped",
            self.generation,
            self.generation_shards,
            self.bindings,
            self.records,
            self.files.len(),
            self.expired,
            self.damaged,
            self.bytes_skipped,
            self.undecodable,
        )?;
        for fr in self
            .files
            .iter()
            .filter(|f| f.damaged > 0 || f.undecodable > 0)
        {
            write!(
                f,
                "; {}: {} damaged stretches, {} bytes, {} undecodable",
                fr.name, fr.damaged, fr.bytes_skipped, fr.undecodable
            )?;
        }
        if !self.missing_shards.is_empty() {
            write!(
                f,
                "; shards without snapshot (lost): {:?}",
                self.missing_shards
            )?;
        }
        Ok(())
    }
}

/// Reads the data directory `dir` for a server of `shards` shards at time `now_ms`.
///
/// Takes the newest generation with an intact marker (or, if no marker is intact, the newest
/// generation with files, reported), and for each of its shards the newest snapshot and the
/// journals from it on. Every intact record is kept: damage is skipped record by record and
/// counted. Replays upserts and removes by binding identity (AOR, contact, instance, reg-id),
/// drops bindings expired at `now_ms`, and groups the rest by [`shard_of`] over `shards`.
///
/// A missing directory is an empty table. Errors only when the directory cannot be listed;
/// an unreadable file is reported and skipped.
pub fn load(dir: &Path, now_ms: u64, shards: usize) -> io::Result<Loaded> {
    let shards = shards.max(1);
    let mut out = Loaded {
        shards: (0..shards).map(|_| Vec::new()).collect(),
        ..Loaded::default()
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    let mut names: BTreeMap<String, FileName> = BTreeMap::new();
    for entry in entries {
        let entry = entry?;
        if let Some(name) = entry.file_name().to_str()
            && let Some(parsed) = FileName::parse(name)
        {
            names.insert(name.to_owned(), parsed);
            out.old_files.push(entry.path());
        }
    }
    let report = &mut out.report;
    out.last_generation = names
        .values()
        .map(|n| match *n {
            FileName::Generation { g }
            | FileName::Snapshot { g, .. }
            | FileName::Log { g, .. }
            | FileName::Temporary { g } => g,
        })
        .max()
        .unwrap_or(0);

    // The newest generation with an intact marker.
    let mut chosen: Option<(u64, usize)> = None;
    for (name, parsed) in names.iter().rev() {
        let FileName::Generation { g } = *parsed else {
            continue;
        };
        if chosen.is_some() {
            break;
        }
        let mut n = None;
        match std::fs::read(dir.join(name)) {
            Ok(bytes) => {
                record::scan(&bytes, |body| n = n.or(record::decode_generation(body)));
            }
            Err(e) => report
                .ignored
                .push((name.clone(), format!("unreadable: {e}"))),
        }
        match n {
            Some(n) => chosen = Some((g, n as usize)),
            None => report
                .ignored
                .push((name.clone(), "damaged generation marker".into())),
        }
    }
    if chosen.is_none() {
        // No intact marker: rather than discard the files, take the newest generation with data
        // and as many shards as it has files for.
        chosen = names
            .values()
            .filter_map(|n| match *n {
                FileName::Snapshot { g, s, .. } => Some((g, s)),
                _ => None,
            })
            .max_by_key(|&(g, _)| g)
            .map(|(g, _)| {
                let n = names
                    .values()
                    .filter_map(|n| match *n {
                        FileName::Snapshot { g: h, s, .. } if h == g => Some(s + 1),
                        _ => None,
                    })
                    .max()
                    .unwrap_or(1);
                (g, n)
            });
        if let Some((g, _)) = chosen {
            report.ignored.push((
                FileName::generation(g),
                "marker missing; loading the generation's files anyway".into(),
            ));
        }
    }
    let Some((generation, old_shards)) = chosen else {
        return Ok(out);
    };
    report.generation = generation;
    report.generation_shards = old_shards;

    // A binding record takes 150 bytes or more: room for every record, no rehash on the way.
    let mut table = Table::default();
    let total: u64 = names
        .keys()
        .filter_map(|n| fs::metadata(dir.join(n)).ok())
        .map(|m| m.len())
        .sum();
    table.reserve(usize::try_from(total / 150).unwrap_or(0));
    let mut used = vec![false; names.len()];
    let keys: Vec<(&String, &FileName)> = names.iter().collect();
    for s in 0..old_shards {
        let newest_snapshot = keys
            .iter()
            .filter_map(|(_, n)| match **n {
                FileName::Snapshot { g, s: t, c } if g == generation && t == s => Some(c),
                _ => None,
            })
            .max();
        let Some(base) = newest_snapshot else {
            report.missing_shards.push(s);
            continue;
        };
        // The snapshot, then its journals in order (names sort by compaction number, and the
        // snapshot of compaction C replays before the journal of C).
        let mut order: Vec<(u64, bool, usize)> = keys
            .iter()
            .enumerate()
            .filter_map(|(i, (_, n))| match **n {
                FileName::Snapshot { g, s: t, c } if g == generation && t == s && c == base => {
                    Some((c, false, i))
                }
                FileName::Log { g, s: t, c } if g == generation && t == s && c >= base => {
                    Some((c, true, i))
                }
                _ => None,
            })
            .collect();
        order.sort_unstable();
        for (_, _, i) in order {
            let Some((name, _)) = keys.get(i) else {
                continue;
            };
            if let Some(u) = used.get_mut(i) {
                *u = true;
            }
            let bytes = match std::fs::read(dir.join(name)) {
                Ok(b) => b,
                Err(e) => {
                    report
                        .ignored
                        .push(((*name).clone(), format!("unreadable: {e}")));
                    continue;
                }
            };
            let mut fr = FileReport {
                name: (*name).clone(),
                bytes: bytes.len() as u64,
                ..FileReport::default()
            };
            let scan = record::scan(&bytes, |body| match record::decode_binding(body) {
                Some(r) if r.kind == KIND_UPSERT => table.upsert(r.aor, r.binding),
                Some(r) if r.kind == KIND_REMOVE => table.remove(&r.aor, &r.binding),
                _ => fr.undecodable += 1,
            });
            fr.records = scan.records;
            fr.damaged = scan.damaged;
            fr.bytes_skipped = scan.bytes_skipped;
            report.records += fr.records;
            report.damaged += fr.damaged;
            report.bytes_skipped += fr.bytes_skipped;
            report.undecodable += fr.undecodable;
            report.files.push(fr);
        }
    }
    for ((name, parsed), used) in keys.iter().zip(&used) {
        if *used || matches!(parsed, FileName::Generation { g } if *g == generation) {
            continue;
        }
        let why = match parsed {
            FileName::Temporary { .. } => "unfinished",
            FileName::Generation { .. } => "older or incomplete generation",
            _ if matches!(parsed, FileName::Snapshot { g, .. } | FileName::Log { g, .. } if *g != generation) => {
                "another generation"
            }
            FileName::Snapshot { s, .. } | FileName::Log { s, .. }
                if report.missing_shards.contains(s) =>
            {
                "journal of a shard without snapshot"
            }
            _ => "superseded by a newer snapshot",
        };
        report.ignored.push(((*name).clone(), why.into()));
    }

    let per_shard = table.slab.len() / shards + table.slab.len() / (8 * shards);
    for v in &mut out.shards {
        v.reserve(per_shard);
    }
    for (aor, binding) in table.slab.into_iter().flatten() {
        if !binding.is_live(now_ms) {
            report.expired += 1;
            continue;
        }
        report.bindings += 1;
        if let Some(v) = out.shards.get_mut(shard_of(aor.as_bytes(), shards)) {
            v.push((aor, binding));
        }
    }
    Ok(out)
}

/// Bindings by identity during replay: a slab and an index of slab positions.
#[derive(Default)]
struct Table {
    slab: Vec<Option<(Aor, Binding)>>,
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl Table {
    fn reserve(&mut self, n: usize) {
        self.slab.reserve(n);
        let (slab, hasher) = (&self.slab, &self.hasher);
        self.index.reserve(n, |&j| match slab.get(j as usize) {
            Some(Some((a, x))) => {
                hasher.hash_one((a.as_bytes(), x.contact(), x.instance(), x.reg_id()))
            }
            _ => 0,
        });
    }

    fn hash(&self, aor: &Aor, b: &Binding) -> u64 {
        self.hasher
            .hash_one((aor.as_bytes(), b.contact(), b.instance(), b.reg_id()))
    }

    fn find(&self, hash: u64, aor: &Aor, b: &Binding) -> Option<u32> {
        let slab = &self.slab;
        self.index
            .find(hash, |&i| {
                matches!(slab.get(i as usize), Some(Some((a, x))) if a == aor && x.same_identity(b))
            })
            .copied()
    }

    fn upsert(&mut self, aor: Aor, b: Binding) {
        let hash = self.hash(&aor, &b);
        if let Some(i) = self.find(hash, &aor, &b) {
            if let Some(slot) = self.slab.get_mut(i as usize) {
                *slot = Some((aor, b));
            }
            return;
        }
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.slab.get_mut(i as usize) {
                    *slot = Some((aor, b));
                }
                i
            }
            None => {
                self.slab.push(Some((aor, b)));
                (self.slab.len() - 1) as u32
            }
        };
        let (slab, hasher) = (&self.slab, &self.hasher);
        self.index
            .insert_unique(hash, i, |&j| match slab.get(j as usize) {
                Some(Some((a, x))) => {
                    hasher.hash_one((a.as_bytes(), x.contact(), x.instance(), x.reg_id()))
                }
                _ => 0,
            });
    }

    fn remove(&mut self, aor: &Aor, b: &Binding) {
        let hash = self.hash(aor, b);
        let Some(i) = self.find(hash, aor, b) else {
            return;
        };
        if let Ok(entry) = self.index.find_entry(hash, |&j| j == i) {
            entry.remove();
        }
        if let Some(slot) = self.slab.get_mut(i as usize) {
            *slot = None;
            self.free.push(i);
        }
    }
}
