//! The writer thread: files, fsync and group commit, off the workers' path; and [`start`], which
//! writes the loaded table as a new generation before the writer begins.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::journal::Journal;
use super::load::Loaded;
use super::record::{self, KIND_UPSERT};
use super::{Config, FileName, Stats};

/// Messages from the journals, in each shard's order.
pub(super) enum Msg {
    /// Records for the shard's current journal file.
    Journal {
        shard: usize,
        buf: Vec<u8>,
    },
    /// Compaction `c` begins: journal records from now on go to log `c`; a snapshot follows.
    SnapBegin {
        shard: usize,
        c: u64,
    },
    SnapChunk {
        shard: usize,
        buf: Vec<u8>,
    },
    /// The snapshot of compaction `c` is whole: make it durable and drop what it supersedes.
    SnapEnd {
        shard: usize,
        c: u64,
    },
    /// The snapshot in progress is abandoned (shutdown).
    SnapAbort {
        shard: usize,
    },
    /// Answered once every message before it has been handled (written, renamed, deleted).
    Barrier {
        done: mpsc::Sender<()>,
    },
}

impl Msg {
    pub(super) fn bytes(&self) -> usize {
        match self {
            Msg::Journal { buf, .. } | Msg::SnapChunk { buf, .. } => buf.len(),
            _ => 0,
        }
    }
}

/// What a journal and the writer share about one shard.
#[derive(Debug, Default)]
pub(super) struct ShardShared {
    /// Set by the worker when it dropped journal records (overflow): the files on disk have a
    /// gap and must not be loaded as they are.
    pub gap: AtomicBool,
    /// Set by the writer after a failure: the worker should take a fresh snapshot.
    pub resnapshot: AtomicBool,
    /// Snapshots completed, for the worker to reset its retry backoff.
    pub snapshots: AtomicU64,
    /// Snapshot chunks sent and not yet written: the worker keeps this small so that journal
    /// buffers never wait behind a whole snapshot in the queue (the durability window holds
    /// during a snapshot).
    pub chunks_in_flight: AtomicUsize,
}

/// The running persistence layer: the writer thread and the shared [`Stats`].
#[derive(Debug)]
pub struct Persist {
    thread: Option<JoinHandle<()>>,
    stats: Arc<Stats>,
    dir: PathBuf,
}

impl Persist {
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Waits for the writer to write and fsync everything the journals sent. Call after every
    /// [`Journal`] has been closed (or dropped): the writer stops once the last one is gone.
    pub fn finish(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts persistence in `dir` for the shards of `loaded` (one [`Journal`] per shard, in shard
/// order): writes the loaded bindings as a new generation with that shard count (snapshots,
/// fsync, then the generation marker), deletes every older file, and starts the writer thread.
/// Call before serving; the caller then restores `loaded`'s bindings into its shards
/// ([`Shard::restore`](crate::location::Shard::restore)).
///
/// Errors if the directory cannot be created or the new generation cannot be written: the
/// caller decides whether to serve without persistence.
pub fn start(dir: &Path, loaded: &Loaded, config: Config) -> io::Result<(Persist, Vec<Journal>)> {
    fs::create_dir_all(dir)?;
    let g = loaded.last_generation + 1;
    let shards = loaded.shards.len().max(1);
    let mut snapshot_bytes = Vec::with_capacity(shards);
    let mut buf = Vec::with_capacity(1 << 20);
    for s in 0..shards {
        let name = FileName::snapshot(g, s, 0);
        let tmp = dir.join(format!("{name}.tmp"));
        let mut file = File::create(&tmp)?;
        let mut total = 0u64;
        for (aor, binding) in loaded.shards.get(s).into_iter().flatten() {
            record::push_binding(&mut buf, KIND_UPSERT, aor, binding);
            if buf.len() >= 1 << 20 {
                record::seal(&mut buf);
                file.write_all(&buf)?;
                total += buf.len() as u64;
                buf.clear();
            }
        }
        record::seal(&mut buf);
        file.write_all(&buf)?;
        total += buf.len() as u64;
        buf.clear();
        file.sync_all()?;
        fs::rename(&tmp, dir.join(name))?;
        snapshot_bytes.push(total);
    }
    let marker = FileName::generation(g);
    let tmp = dir.join(format!("{marker}.tmp"));
    let mut file = File::create(&tmp)?;
    record::push_generation(&mut buf, shards as u32);
    record::seal(&mut buf);
    file.write_all(&buf)?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(&marker))?;
    sync_dir(dir)?;
    // The new generation is complete and durable: the old files can go.
    for old in &loaded.old_files {
        if let Err(e) = fs::remove_file(old)
            && e.kind() != io::ErrorKind::NotFound
        {
            eprintln!("sipreg: persist: cannot delete {}: {e}", old.display());
        }
    }
    sync_dir(dir)?;

    let stats = Arc::new(Stats::default());
    // Room for a window's worth of buffers per shard; beyond it journals hold their own.
    let (tx, rx) = mpsc::sync_channel::<Msg>(64 * shards);
    let mut journals = Vec::with_capacity(shards);
    let mut states = Vec::with_capacity(shards);
    for (s, &bytes) in snapshot_bytes.iter().enumerate() {
        let shared = Arc::new(ShardShared::default());
        let (recycle_tx, recycle_rx) = mpsc::sync_channel(16);
        journals.push(Journal::new(
            s,
            config.clone(),
            tx.clone(),
            recycle_rx,
            Arc::clone(&shared),
            Arc::clone(&stats),
            bytes,
        ));
        states.push(ShardFiles {
            base: 0,
            c: 0,
            log: None,
            dirty: false,
            snap: None,
            broken: false,
            not_durable: false,
            shared,
            recycle: recycle_tx,
        });
    }
    drop(tx);
    let writer = Writer {
        dir: dir.to_path_buf(),
        g,
        shards: states,
        stats: Arc::clone(&stats),
        half_window: Duration::from_millis(config.window_ms / 2),
        dirty_since: None,
        dir_dirty: false,
    };
    let thread = std::thread::Builder::new()
        .name("sipreg-persist".into())
        .spawn(move || writer.run(rx))?;
    Ok((
        Persist {
            thread: Some(thread),
            stats,
            dir: dir.to_path_buf(),
        },
        journals,
    ))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

struct ShardFiles {
    /// The compaction of the newest durable snapshot.
    base: u64,
    /// The compaction whose journal is being written.
    c: u64,
    log: Option<File>,
    dirty: bool,
    /// The snapshot being written: its compaction and temporary file.
    snap: Option<(u64, File)>,
    /// The journal is not loadable (a failed write or a gap): records are dropped until the
    /// next snapshot begins.
    broken: bool,
    /// Counted in `Stats::shards_not_durable` until a snapshot lands.
    not_durable: bool,
    shared: Arc<ShardShared>,
    recycle: SyncSender<Vec<u8>>,
}

struct Writer {
    dir: PathBuf,
    g: u64,
    shards: Vec<ShardFiles>,
    stats: Arc<Stats>,
    half_window: Duration,
    /// When the oldest unsynced journal write happened.
    dirty_since: Option<Instant>,
    /// A journal file was created since the last commit.
    dir_dirty: bool,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        loop {
            // Wake for the group commit, or now and then to see a shard's gap flag.
            let timeout = match self.dirty_since {
                Some(t) => self.half_window.saturating_sub(t.elapsed()),
                None => Duration::from_millis(50),
            };
            match rx.recv_timeout(timeout) {
                Ok(msg) => {
                    self.handle(msg);
                    // Take what else is queued, so one fsync covers it (group commit).
                    for msg in rx.try_iter().take(256) {
                        self.handle(msg);
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.check_gaps(),
                Err(RecvTimeoutError::Disconnected) => {
                    self.check_gaps();
                    self.sync();
                    return;
                }
            }
            if self
                .dirty_since
                .is_some_and(|t| t.elapsed() >= self.half_window)
            {
                self.sync();
            }
        }
    }

    fn check_gaps(&mut self) {
        for s in 0..self.shards.len() {
            if self
                .shards
                .get(s)
                .is_some_and(|f| f.shared.gap.swap(false, Ordering::AcqRel))
            {
                self.invalidate(s);
            }
        }
    }

    fn handle(&mut self, msg: Msg) {
        let s = match &msg {
            Msg::Journal { shard, .. }
            | Msg::SnapBegin { shard, .. }
            | Msg::SnapChunk { shard, .. }
            | Msg::SnapEnd { shard, .. }
            | Msg::SnapAbort { shard } => *shard,
            Msg::Barrier { done } => {
                // The waiter may have given up; nothing to do then.
                let _ = done.send(());
                return;
            }
        };
        if self
            .shards
            .get(s)
            .is_some_and(|f| f.shared.gap.swap(false, Ordering::AcqRel))
        {
            self.invalidate(s);
        }
        match msg {
            Msg::Journal { buf, .. } => self.journal(s, buf),
            Msg::SnapBegin { c, .. } => self.snap_begin(s, c),
            Msg::SnapChunk { buf, .. } => self.snap_chunk(s, buf),
            Msg::SnapEnd { c, .. } => self.snap_end(s, c),
            Msg::SnapAbort { .. } => self.snap_drop(s),
            Msg::Barrier { .. } => {}
        }
    }

    fn journal(&mut self, s: usize, mut buf: Vec<u8>) {
        let (g, dir) = (self.g, &self.dir);
        let Some(f) = self.shards.get_mut(s) else {
            return;
        };
        if !f.broken {
            record::seal(&mut buf);
            let result = match &mut f.log {
                Some(log) => log.write_all(&buf),
                None => OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(FileName::log(g, s, f.c)))
                    .and_then(|mut log| {
                        log.write_all(&buf)?;
                        f.log = Some(log);
                        // The new name must reach disk too: fsync the directory at the commit.
                        self.dir_dirty = true;
                        Ok(())
                    }),
            };
            match result {
                Ok(()) => {
                    f.dirty = true;
                    self.dirty_since.get_or_insert_with(Instant::now);
                    self.stats
                        .bytes_written
                        .fetch_add(buf.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    self.stats.error("journal write", &e);
                    self.invalidate(s);
                }
            }
        }
        self.recycle(s, buf);
    }

    fn recycle(&self, s: usize, mut buf: Vec<u8>) {
        if let Some(f) = self.shards.get(s) {
            buf.clear();
            let _ = f.recycle.try_send(buf);
        }
    }

    /// fsyncs every journal written since the last group commit.
    fn sync(&mut self) {
        self.dirty_since = None;
        if self.dir_dirty {
            self.dir_dirty = false;
            if let Err(e) = sync_dir(&self.dir) {
                self.stats.error("directory fsync", &e);
            }
        }
        for s in 0..self.shards.len() {
            let Some(f) = self.shards.get_mut(s) else {
                continue;
            };
            if !f.dirty {
                continue;
            }
            f.dirty = false;
            let result = f.log.as_ref().map_or(Ok(()), File::sync_data);
            self.stats.syncs.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = result {
                // After a failed fsync the kernel may have dropped the pages: the journal has a
                // gap from here on.
                self.stats.error("journal fsync", &e);
                self.invalidate(s);
            }
        }
    }

    /// The shard's journal has a gap: delete its files, snapshot first (a journal without its
    /// snapshot is not loaded), so that a restart cannot replay an upsert whose removal was
    /// lost; wait for the worker's next snapshot.
    fn invalidate(&mut self, s: usize) {
        self.snap_drop(s);
        let (g, dir) = (self.g, self.dir.clone());
        let Some(f) = self.shards.get_mut(s) else {
            return;
        };
        f.log = None;
        f.dirty = false;
        f.broken = true;
        if !f.not_durable {
            f.not_durable = true;
            self.stats
                .shards_not_durable
                .fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "sipreg: persist: shard {s}'s journal is interrupted; its bindings are not \
                 durable until the next snapshot ({})",
                self.stats
                    .last_error()
                    .unwrap_or_else(|| "writer overloaded".into())
            );
        }
        let mut names = vec![FileName::snapshot(g, s, f.base)];
        names.extend((f.base..=f.c).map(|c| FileName::log(g, s, c)));
        for name in names {
            match fs::remove_file(dir.join(&name)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => self.stats.error(&format!("delete {name}"), &e),
            }
        }
        let _ = sync_dir(&dir);
        f.shared.resnapshot.store(true, Ordering::Release);
    }

    fn snap_begin(&mut self, s: usize, c: u64) {
        self.snap_drop(s);
        let (g, dir) = (self.g, self.dir.clone());
        let Some(f) = self.shards.get_mut(s) else {
            return;
        };
        // Journal records from here on belong to compaction c. The old journal stays part of
        // the recovery chain until the snapshot lands, and needs its fsync like any other.
        if f.dirty
            && let Some(log) = &f.log
            && let Err(e) = log.sync_data()
        {
            self.stats.error("journal fsync", &e);
            self.invalidate(s);
            return self.snap_begin(s, c);
        }
        let Some(f) = self.shards.get_mut(s) else {
            return;
        };
        f.dirty = false;
        f.log = None;
        f.c = c;
        f.broken = false;
        let tmp = dir.join(FileName::snapshot(g, s, c) + ".tmp");
        match File::create(&tmp) {
            Ok(file) => f.snap = Some((c, file)),
            Err(e) => self.snap_failed(s, "snapshot create", &e),
        }
    }

    fn snap_chunk(&mut self, s: usize, mut buf: Vec<u8>) {
        if let Some(f) = self.shards.get(s) {
            f.shared.chunks_in_flight.fetch_sub(1, Ordering::AcqRel);
        }
        if let Some((_, file)) = self.shards.get_mut(s).and_then(|f| f.snap.as_mut()) {
            record::seal(&mut buf);
            match file.write_all(&buf) {
                Ok(()) => {
                    self.stats
                        .bytes_written
                        .fetch_add(buf.len() as u64, Ordering::Relaxed);
                }
                Err(e) => self.snap_failed(s, "snapshot write", &e),
            }
        }
        self.recycle(s, buf);
    }

    fn snap_end(&mut self, s: usize, c: u64) {
        let (g, dir) = (self.g, self.dir.clone());
        let Some(f) = self.shards.get_mut(s) else {
            return;
        };
        let Some((sc, file)) = f.snap.take() else {
            return; // abandoned after an error
        };
        if sc != c {
            return;
        }
        let name = FileName::snapshot(g, s, c);
        let tmp = dir.join(name.clone() + ".tmp");
        let done = file
            .sync_all()
            .and_then(|()| fs::rename(&tmp, dir.join(&name)))
            .and_then(|()| sync_dir(&dir));
        if let Err(e) = done {
            let _ = fs::remove_file(&tmp);
            return self.snap_failed(s, "snapshot sync", &e);
        }
        // Snapshot c and the journals from c on now hold everything: drop the older ones.
        let Some(f) = self.shards.get_mut(s) else {
            return;
        };
        for old in f.base..c {
            for name in [FileName::snapshot(g, s, old), FileName::log(g, s, old)] {
                let _ = fs::remove_file(dir.join(name));
            }
        }
        f.base = c;
        f.shared.snapshots.fetch_add(1, Ordering::Release);
        self.stats.snapshots.fetch_add(1, Ordering::Relaxed);
        if f.not_durable {
            f.not_durable = false;
            self.stats
                .shards_not_durable
                .fetch_sub(1, Ordering::Relaxed);
            eprintln!("sipreg: persist: shard {s} is durable again");
        }
    }

    fn snap_failed(&mut self, s: usize, what: &str, e: &io::Error) {
        self.stats.error(what, e);
        self.snap_drop(s);
        if let Some(f) = self.shards.get(s) {
            f.shared.resnapshot.store(true, Ordering::Release);
        }
    }

    /// Drops the snapshot in progress, if any, and its temporary file.
    fn snap_drop(&mut self, s: usize) {
        let (g, dir) = (self.g, self.dir.clone());
        if let Some((c, file)) = self.shards.get_mut(s).and_then(|f| f.snap.take()) {
            drop(file);
            let _ = fs::remove_file(dir.join(FileName::snapshot(g, s, c) + ".tmp"));
        }
    }
}
