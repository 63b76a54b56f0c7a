//! The `sipreg` command: parses the command line, loads credentials, opens the sockets and runs
//! the element; manages the credentials file.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand};

use sipreg::auth::Algorithm;
use sipreg::auth::file::{self, Entry};
use sipreg::auth::pattern::Pattern;
use sipreg::config::{self, DEFAULT_USERS, Listener, Protocol};
use sipreg::io;
use sipreg::persist;
use sipreg::registrar::{Peer, Pong, Received, Registrar, Ticket};
use sipreg::sip;

#[derive(Parser)]
#[command(name = "sipreg", version, about = "A carrier-grade SIP registrar")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registrar. With no options: UDP and TCP port 5060 on every IPv4 and IPv6 address,
    /// the local host name as domain and realm, users from /etc/sipreg/users if present.
    /// Options given here win over the configuration file.
    Serve {
        /// Configuration file (TOML; see `sipreg example-config`).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Address to listen on: `udp:ADDR`, `tcp:ADDR` or `ADDR` (UDP), e.g. `tcp:[::1]:5070`.
        /// Repeatable.
        #[arg(long = "listen", value_name = "ADDR")]
        listen: Vec<String>,
        /// Domain served (also its digest realm). Repeatable.
        #[arg(long = "domain", value_name = "NAME")]
        domain: Vec<String>,
        /// Credentials file (see `sipreg user`).
        #[arg(long, value_name = "FILE")]
        users: Option<PathBuf>,
        /// Digest algorithms offered, most preferred first (default
        /// SHA-512-256,SHA-256,MD5). SIPp answers only the first challenge, with MD5 only: give
        /// it MD5 first.
        #[arg(long, value_name = "LIST", value_delimiter = ',')]
        auth_algorithms: Vec<String>,
        /// Register without digest authentication (anyone may register any AOR of a served
        /// domain): only behind something that authenticates, or to measure without auth.
        #[arg(long)]
        no_auth: bool,
        /// Where bindings are kept across restarts (default /var/lib/sipreg; see [persist] in
        /// the configuration file).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Worker threads, each with its own sockets and share of the bindings (default: one
        /// per core; at most 1024).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(0..=sipreg::config::MAX_WORKERS as i64))]
        workers: Option<u16>,
        /// What to log: error, warn, info (the default: start-up, reloads, stop) or debug.
        /// Nothing is logged per message below debug.
        #[arg(long, value_name = "LEVEL", value_enum, default_value_t = LogLevel::Info)]
        log_level: LogLevel,
    },
    /// Manage the credentials file: HA1 per realm and algorithm, never the password.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Check a configuration file and exit: nothing is bound or started.
    CheckConfig {
        /// The configuration file.
        file: PathBuf,
    },
    /// Print the example configuration file, every key commented with its default.
    ExampleConfig,
}

#[derive(Args)]
struct UserTarget {
    /// The user name (the digest username, the user part of the AOR).
    user: String,
    /// The realm (by default, the domain).
    #[arg(long)]
    realm: String,
    /// Credentials file.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_USERS)]
    users: PathBuf,
}

#[derive(Args)]
struct PasswordSource {
    /// The password on the command line (visible to other local users; prefer a prompt or
    /// --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Subcommand)]
enum UserAction {
    /// Add a user (or set a new password for an existing one), or many users from a pattern
    /// (`--pattern u%06d --password-pattern p%06d --count 100000`, as load tests use).
    Add {
        /// The user name (the digest username, the user part of the AOR); omit with --pattern.
        #[arg(required_unless_present = "pattern", conflicts_with = "pattern")]
        user: Option<String>,
        /// The realm (by default, the domain).
        #[arg(long)]
        realm: String,
        /// Credentials file.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_USERS)]
        users: PathBuf,
        #[command(flatten)]
        password: PasswordSource,
        /// Bulk: user names from a printf-style pattern with one `%d` (`%06d` pads with zeros),
        /// numbered from --first for --count users.
        #[arg(long, requires_all = ["count", "password_pattern"])]
        pattern: Option<String>,
        /// Bulk: each user's password from this pattern and the same number.
        #[arg(long, requires = "pattern", conflicts_with_all = ["password", "password_stdin"])]
        password_pattern: Option<String>,
        /// Bulk: how many users.
        #[arg(long, requires = "pattern")]
        count: Option<u64>,
        /// Bulk: the first number.
        #[arg(long, default_value_t = 0, requires = "pattern")]
        first: u64,
    },
    /// Set a new password for an existing user.
    Passwd {
        #[command(flatten)]
        target: UserTarget,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Remove a user from a realm.
    Remove {
        #[command(flatten)]
        target: UserTarget,
    },
    /// List users and realms.
    List {
        #[arg(long, value_name = "FILE", default_value = DEFAULT_USERS)]
        users: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            config,
            listen,
            domain,
            users,
            auth_algorithms,
            workers,
            log_level,
            data_dir,
            no_auth,
        } => {
            Logger::install(log_level);
            serve(
                config.as_deref(),
                &listen,
                &domain,
                users,
                &auth_algorithms,
                workers,
                data_dir,
                no_auth,
            )
        }
        Command::User { action } => user(action),
        Command::CheckConfig { file } => {
            read_config(&file).map(|_| println!("{}: ok", file.display()))
        }
        Command::ExampleConfig => {
            print!("{}", config::EXAMPLE);
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sipreg: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One worker's registrar behind its poll loop (UDP and TCP). Each worker owns the bindings of
/// the AORs that hash to it; a REGISTER for another worker's AOR is handed to that worker, and
/// so is the answer to a keep-alive ping that worker sent.
struct Shell {
    registrar: Registrar,
    /// This worker's journal of binding changes, when persistence is on.
    journal: Option<persist::Journal>,
    index: usize,
    workers: usize,
}

/// What travels with a message handed to the worker that owns what it changes.
enum Work {
    /// A REGISTER, verified by the receiving worker.
    Register(Ticket),
    /// An answer to a keep-alive ping (which arrives on whichever worker the kernel or the
    /// connection picks, not necessarily the sender's).
    Pong(Pong),
}

fn peer(d: &io::Datagram<'_>) -> Peer {
    Peer {
        source: d.source,
        transport: d.transport,
        connection: d.connection,
        local: Some(d.local),
    }
}

impl io::Element for Shell {
    type Ticket = Work;
    type Control = Reload;

    fn on_message(&mut self, d: io::Datagram<'_>, out: &mut [u8]) -> io::Outcome<Self::Ticket> {
        // Answers to keep-alive pings are told apart before the registrar's request path,
        // which drops every response (a request costs a look at its first octets).
        if let Some(pong) = self.registrar.pong(d.bytes) {
            if pong.worker() == self.index || pong.worker() >= self.workers {
                self.registrar.credit(pong);
                return io::Outcome::Silent;
            }
            return io::Outcome::HandOff {
                worker: pong.worker(),
                ticket: Work::Pong(pong),
            };
        }
        let received =
            self.registrar
                .receive(d.now_ms, peer(&d), d.bytes, out, self.index, self.workers);
        self.drain_events(d.now_ms);
        match received {
            Received::Answered(Some(n)) => io::Outcome::Reply(n),
            Received::Answered(None) => io::Outcome::Silent,
            Received::Owner { shard, ticket } => io::Outcome::HandOff {
                worker: shard,
                ticket: Work::Register(ticket),
            },
        }
    }

    fn on_handoff(
        &mut self,
        d: io::Datagram<'_>,
        work: Self::Ticket,
        out: &mut [u8],
    ) -> Option<usize> {
        let ticket = match work {
            Work::Register(ticket) => ticket,
            Work::Pong(pong) => {
                self.registrar.credit(pong);
                return None;
            }
        };
        let answer = self.registrar.own(d.now_ms, peer(&d), d.bytes, ticket, out);
        self.drain_events(d.now_ms);
        answer
    }

    fn on_overload(&mut self, d: io::Datagram<'_>, out: &mut [u8]) -> Option<usize> {
        self.registrar.overloaded(peer(&d), d.bytes, out)
    }

    fn on_stream_error(
        &mut self,
        d: io::Datagram<'_>,
        error: sip::Error,
        out: &mut [u8],
    ) -> Option<usize> {
        self.registrar
            .reject_unframed(peer(&d), error, d.bytes, out)
    }

    fn on_closed(&mut self, connection: u64) {
        let now = io::now_ms();
        self.registrar.connection_closed(now, connection);
        self.drain_events(now);
    }

    fn on_tick(&mut self, now_ms: u64) {
        self.registrar.tick(now_ms);
        self.drain_events(now_ms);
        if let Some(j) = &mut self.journal {
            j.tick(self.registrar.shard(), now_ms);
        }
    }

    fn on_start(&mut self, udp: &[std::net::SocketAddr], tcp: &[std::net::SocketAddr]) {
        self.registrar.set_local_addresses(udp, tcp);
    }

    fn poll_transmit(&mut self, now_ms: u64, out: &mut [u8]) -> Option<io::Transmit> {
        let outgoing = self.registrar.poll_transmit(now_ms, out);
        // Bindings silent for the whole timeout were removed on the way.
        self.drain_events(now_ms);
        let outgoing = outgoing?;
        Some(io::Transmit {
            len: outgoing.len,
            to: io::Destination {
                transport: outgoing.to.transport,
                remote: outgoing.to.source,
                local: outgoing.local,
                connection: outgoing.to.connection,
            },
        })
    }

    fn on_undeliverable(&mut self, to: io::Destination) {
        let now = io::now_ms();
        let peer = Peer {
            source: to.remote,
            transport: to.transport,
            connection: to.connection,
            local: None,
        };
        self.registrar.unreachable(now, peer);
        self.drain_events(now);
    }

    fn on_stop(&mut self, now_ms: u64) {
        self.drain_events(now_ms);
        // A clean stop loses nothing: the journal is flushed and synced.
        if let Some(j) = self.journal.take() {
            j.close(self.registrar.shard(), now_ms);
        }
    }

    fn on_control(&mut self, reload: &Reload) {
        self.registrar.set_users(file::load(&reload.users));
        self.registrar.set_policy(reload.policy.clone());
        self.registrar.set_keepalive(reload.keepalive);
    }
}

impl Shell {
    /// Takes the location table's events (the registrar notes TCP flows from them on the way)
    /// into the journal.
    fn drain_events(&mut self, now: u64) {
        while let Some(event) = self.registrar.poll_event() {
            if let Some(j) = &mut self.journal {
                j.record(&event, now);
            }
            self.registrar.recycle(event);
        }
    }
}

/// What SIGHUP re-reads: the credentials, the registration policy and the NAT keep-alive
/// settings; bindings stay.
struct Reload {
    users: Vec<Entry>,
    policy: sipreg::registrar::Policy,
    keepalive: sipreg::registrar::Keepalive,
}

/// The `--log-level` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// Log lines on standard error: `sipreg: LEVEL: message`.
struct Logger;

impl Logger {
    fn install(level: LogLevel) {
        let level = match level {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
        };
        static LOGGER: Logger = Logger;
        // Only fails if a logger is installed already, which leaves that one in place.
        let _ = log::set_logger(&LOGGER);
        log::set_max_level(level);
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let level = record.level().as_str().to_ascii_lowercase();
            eprintln!("sipreg: {level}: {}", record.args());
        }
    }

    fn flush(&self) {}
}

/// Reads and checks a configuration file; errors read `FILE:LINE:COLUMN: KEY: MESSAGE`.
fn read_config(path: &Path) -> Result<config::File, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    config::File::parse(&text).map_err(|e| format!("{}:{e}", path.display()))
}

fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Reads a credentials file; a missing default file is an empty list.
fn read_users(path: &Path, explicit: bool) -> Result<Vec<Entry>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => file::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(Vec::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[allow(clippy::too_many_arguments)] // one per command-line option of `serve`
fn serve(
    config_path: Option<&Path>,
    listen: &[String],
    domains: &[String],
    users: Option<PathBuf>,
    algorithms: &[String],
    workers: Option<u16>,
    data_dir: Option<PathBuf>,
    no_auth: bool,
) -> Result<(), String> {
    let mut settings = match config_path {
        Some(path) => read_config(path)?,
        None => config::File::default(),
    };
    if !listen.is_empty() {
        settings.set_listeners(
            listen
                .iter()
                .map(|s| s.parse().map_err(|e| format!("--listen {s}: {e}")))
                .collect::<Result<_, _>>()?,
        );
    }
    if !domains.is_empty() {
        settings.set_domains(domains);
    }
    if let Some(path) = users {
        settings.set_users(path);
    }
    if !algorithms.is_empty() {
        settings.set_algorithms(
            algorithms
                .iter()
                .map(|a| {
                    Algorithm::from_token(a.trim().as_bytes()).ok_or_else(|| {
                        format!(
                            "--auth-algorithms: unknown algorithm {a:?} (MD5, SHA-256, SHA-512-256)"
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        );
    }
    if let Some(n) = workers {
        settings.set_workers(usize::from(n));
    }
    if let Some(dir) = data_dir {
        settings.set_data_dir(dir);
    }
    if no_auth {
        settings.set_auth_required(false);
    }
    let config = settings.registrar_config(&[local_host_name()]);
    let users_path = settings.users().to_path_buf();
    // A missing file at the default path means no users yet; one named explicitly must exist.
    let explicit = users_path != Path::new(DEFAULT_USERS);
    let entries = read_users(&users_path, explicit)?;
    // Nonces carry the worker index in 10 bits, so one per core stops at the most accepted.
    let workers = match settings.workers() {
        0 => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(sipreg::config::MAX_WORKERS),
        n => n,
    };
    let tcp = settings.tcp();
    let mut layout = io::Settings {
        workers,
        pin: settings.pin_workers(),
        tcp_limits: io::TcpLimits::new(tcp.max_connections, tcp.max_message, tcp.idle_timeout),
        buffers: io::udp::Buffers {
            recv: settings.recv_buffer(),
            send: settings.send_buffer(),
        },
        max_message: config.limits.max_message,
        ..io::Settings::default()
    };
    let defaults = settings.listeners() == config::default_listeners();
    for &l in settings.listeners() {
        let Listener { protocol, addr } = l;
        // A host without IPv6 still serves IPv4 on defaults; an explicit address must work.
        if defaults && addr.is_ipv6() {
            let probe = match protocol {
                Protocol::Udp => io::bind_udp(addr).map(drop),
                Protocol::Tcp => io::bind_tcp(addr).map(drop),
            };
            if let Err(e) = probe {
                log::warn!("not listening on {l}: {e}");
                continue;
            }
        }
        match protocol {
            Protocol::Udp => layout.udp.push(addr),
            Protocol::Tcp => layout.tcp.push(addr),
        }
    }
    // A configured secret keeps nonces valid across restarts and servers; otherwise a fresh one.
    let secret = settings.nonce_secret().unwrap_or_else(io::random_secret);
    let domains: Vec<&str> = config.domains.iter().map(|d| d.name.as_str()).collect();
    let domains = domains.join(", ");
    let policy = config.policy.clone();
    let keepalive = config.keepalive;
    // Each worker's shard holds its share of the AORs.
    let mut config = config;
    config.expected_aors = config.expected_aors.div_ceil(workers);
    let mut shells: Vec<Shell> = (0..workers)
        .map(|index| {
            let mut registrar = Registrar::new(config.clone(), secret);
            registrar.set_worker(index);
            registrar.set_users(file::load(&entries));
            Shell {
                registrar,
                journal: None,
                index,
                workers,
            }
        })
        .collect();
    // The bindings of the last run, before any socket opens.
    let persist = open_persist(settings.persist(), &mut shells)?;
    let server = io::Server::start(&layout, shells).map_err(|e| format!("cannot listen: {e}"))?;
    for w in server.warnings() {
        log::warn!("{w}");
    }
    for a in server.udp_addrs() {
        log::info!("listening on udp:{a}");
    }
    for a in server.tcp_addrs() {
        log::info!("listening on tcp:{a}");
    }
    log::info!(
        "{workers} worker{}{}, serving domains {domains}",
        if workers == 1 { "" } else { "s" },
        if layout.pin { ", pinned to cores" } else { "" }
    );
    log::info!("{}", describe_keepalive(&config.keepalive));
    if !config.auth.required {
        log::warn!("authentication is off: anyone may register any AOR of the served domains");
    } else if entries.is_empty() {
        log::warn!(
            "no credentials in {}: every REGISTER is challenged; add users with `sipreg user add`",
            users_path.display()
        );
    } else {
        log::info!(
            "{} credential entries from {}",
            entries.len(),
            users_path.display()
        );
    }
    // SIGTERM and SIGINT stop the workers (each within 100 ms); SIGHUP re-reads the credentials
    // file and the configuration file's policy, keeping every binding.
    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
        .map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
    let (mut policy, mut keepalive) = (policy, keepalive);
    // The disk's health, reported when it changes (the writer logs each failure as it happens).
    let mut durable = true;
    while !stop.load(Ordering::Relaxed) && !server.any_finished() {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if let Some(p) = &persist {
            let healthy = p.stats().healthy();
            if healthy != durable {
                durable = healthy;
                if healthy {
                    log::info!("persistence: every shard is durable again: {}", p.stats());
                } else {
                    log::error!(
                        "persistence: bindings are NOT all durable; serving from memory: {}",
                        p.stats()
                    );
                }
            }
        }
        if reload.swap(false, Ordering::Relaxed) {
            match reread(config_path, &users_path, explicit, (&policy, keepalive)) {
                Ok(r) => {
                    log::info!(
                        "reloaded: {} credential entries from {}",
                        r.users.len(),
                        users_path.display()
                    );
                    if r.keepalive != keepalive {
                        log::info!("{}", describe_keepalive(&r.keepalive));
                    }
                    policy = r.policy.clone();
                    keepalive = r.keepalive;
                    server.control(r);
                }
                // A bad file changes nothing: the server goes on with what it had.
                Err(e) => log::error!("reload failed, nothing changed: {e}"),
            }
        }
    }
    let done = server.stop().map_err(|e| format!("worker failed: {e}"))?;
    if let Some(p) = persist {
        let stats = std::sync::Arc::clone(p.stats());
        // Every journal was closed by its worker; this waits for the last write and sync.
        p.finish();
        log::info!("persistence: {stats}");
    }
    let handed: u64 = done.iter().map(|(_, s)| s.handed_off).sum();
    let overloaded: u64 = done.iter().map(|(_, s)| s.overloaded).sum();
    let received: u64 = done.iter().map(|(_, s)| s.received).sum();
    let transmitted: u64 = done.iter().map(|(_, s)| s.transmitted).sum();
    log::info!(
        "stopped: {received} messages, {handed} handed between workers, {overloaded} answered 503 for overload, {transmitted} keep-alive pings sent"
    );
    // The location tables go back to the operating system with the process, not binding by
    // binding: with a million bindings that is a million calls to `free` on the way out.
    // Nothing is lost: each worker closed its journal when it stopped.
    for (shell, _) in done {
        let Shell {
            registrar, journal, ..
        } = shell;
        drop(journal);
        std::mem::forget(registrar);
    }
    Ok(())
}

/// The start-up line about NAT keep-alive pings.
fn describe_keepalive(k: &sipreg::registrar::Keepalive) -> String {
    use sipreg::registrar::KeepaliveMode;
    let which = match k.mode {
        KeepaliveMode::Off => return "keep-alive pings off".to_string(),
        _ if k.interval == 0 => return "keep-alive pings off".to_string(),
        KeepaliveMode::Nat => "bindings behind NAT",
        KeepaliveMode::All => "every reachable binding",
    };
    let removal = match k.timeout {
        0 => "never removed for silence".to_string(),
        t => format!("removed after {t} s without an answer"),
    };
    format!(
        "keep-alive: OPTIONS every {} s to {which}; {removal}",
        k.interval
    )
}

/// Loads the bindings saved in the data directory into the workers' registrars (split by AOR
/// over however many workers there are now) and starts the journals. `None` when persistence is
/// off, or when the default directory cannot be used (a warning; a chosen one is an error).
fn open_persist(
    p: &config::Persist,
    shells: &mut [Shell],
) -> Result<Option<persist::Persist>, String> {
    if !p.enabled {
        log::info!("persistence off: bindings are kept in memory only");
        return Ok(None);
    }
    let opened = (|| -> std::io::Result<(persist::Persist, Vec<persist::Journal>, usize)> {
        std::fs::create_dir_all(&p.dir)?;
        // Held until the process exits.
        std::mem::forget(persist::lock(&p.dir)?);
        let now = io::now_ms();
        let loaded = persist::load(&p.dir, now, shells.len())?;
        if loaded.report.has_damage() {
            log::warn!("{}: {}", p.dir.display(), loaded.report);
        } else {
            log::info!("{}: {}", p.dir.display(), loaded.report);
        }
        let config = persist::Config {
            window_ms: p.window_ms,
            ..persist::Config::default()
        };
        let (handle, journals) = persist::start(&p.dir, &loaded, config)?;
        let mut restored = 0;
        for (shell, bindings) in shells.iter_mut().zip(loaded.shards) {
            for (aor, binding) in bindings {
                if shell.registrar.restore(&aor, binding, now).unwrap_or(false) {
                    restored += 1;
                }
            }
        }
        Ok((handle, journals, restored))
    })();
    match opened {
        Ok((handle, journals, restored)) => {
            for (shell, journal) in shells.iter_mut().zip(journals) {
                shell.journal = Some(journal);
            }
            log::info!(
                "{restored} bindings restored from {}; changes reach disk within {} ms",
                p.dir.display(),
                p.window_ms
            );
            Ok(Some(handle))
        }
        Err(e) if p.explicit => Err(format!("data directory {}: {e}", p.dir.display())),
        Err(e) => {
            log::warn!(
                "data directory {}: {e}: bindings are NOT persisted (set --data-dir or [persist] dir)",
                p.dir.display()
            );
            Ok(None)
        }
    }
}

/// What SIGHUP reads again: the credentials file, and the `[policy]` and `[nat]` of the
/// configuration file if the server was started with one (command-line options are not re-read).
fn reread(
    config_path: Option<&Path>,
    users: &Path,
    explicit: bool,
    (policy, keepalive): (&sipreg::registrar::Policy, sipreg::registrar::Keepalive),
) -> Result<Reload, String> {
    let (policy, keepalive) = match config_path {
        Some(path) => {
            let config = read_config(path)?.registrar_config(&[]);
            (config.policy, config.keepalive)
        }
        None => (policy.clone(), keepalive),
    };
    Ok(Reload {
        users: read_users(users, explicit)?,
        policy,
        keepalive,
    })
}

/// Stores `target`'s password (HA1 for every algorithm), replacing what the file had for them.
fn set_password(target: &UserTarget, password: &PasswordSource) -> Result<(), String> {
    for (what, v) in [("user name", &target.user), ("realm", &target.realm)] {
        if !file::is_storable(v) {
            return Err(format!(
                "{what} {v:?} must be non-empty, without white space"
            ));
        }
    }
    let mut entries = read_users(&target.users, false)?;
    let password = read_password(password)?;
    entries.retain(|e| !(e.user == target.user && e.realm == target.realm));
    entries.extend(file::entries_for(
        &target.user,
        &target.realm,
        password.as_bytes(),
    ));
    write_users(&target.users, &entries)?;
    eprintln!(
        "sipreg: {}@{} stored in {}",
        target.user,
        target.realm,
        target.users.display()
    );
    Ok(())
}

/// A user-name or password pattern for `user add`: exactly one `%d` or `%0Nd` (and `%%` for a
/// percent sign), so that every user gets its own name without spaces.
fn numbering(text: &str) -> Result<Pattern, String> {
    match Pattern::parse(text) {
        Ok(p) if p.numbers_without_spaces() => Ok(p),
        Ok(_) => Err(format!(
            "pattern {text:?}: use exactly one %d or %0Nd (and %% for a percent sign)"
        )),
        Err(e) => Err(format!("pattern {e}")),
    }
}

/// Adds `count` users named by `pattern` with passwords from `password_pattern`, numbered from
/// `first`, replacing what the file had for them.
fn bulk_add(
    pattern: &str,
    password_pattern: &str,
    first: u64,
    count: u64,
    realm: &str,
    users: &Path,
) -> Result<(), String> {
    if !file::is_storable(realm) {
        return Err(format!(
            "realm {realm:?} must be non-empty, without white space"
        ));
    }
    let last = first
        .checked_add(count)
        .ok_or_else(|| "--first plus --count overflows".to_string())?;
    let (pattern, password_pattern) = (numbering(pattern)?, numbering(password_pattern)?);
    let mut names = std::collections::HashSet::new();
    let mut added = Vec::new();
    for n in first..last {
        let user = pattern.format(n);
        if !file::is_storable(&user) {
            return Err(format!(
                "user name {user:?} must be non-empty, without white space"
            ));
        }
        let password = password_pattern.format(n);
        added.extend(file::entries_for(&user, realm, password.as_bytes()));
        names.insert(user);
    }
    let mut entries = read_users(users, false)?;
    entries.retain(|e| !(e.realm == realm && names.contains(&e.user)));
    entries.extend(added);
    write_users(users, &entries)?;
    eprintln!(
        "sipreg: {count} users ({} to {}) stored in {}",
        pattern.format(first),
        pattern.format(last.saturating_sub(1)),
        users.display()
    );
    Ok(())
}

fn read_password(source: &PasswordSource) -> Result<String, String> {
    if let Some(p) = &source.password {
        return Ok(p.clone());
    }
    let stdin = std::io::stdin();
    if !source.password_stdin && stdin.is_terminal() {
        eprint!("Password: ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err("empty password".to_string());
    }
    Ok(password)
}

/// Writes the credentials file atomically with mode 0600.
fn write_users(path: &Path, entries: &[Entry]) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    f.write_all(file::format(entries).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))
}

fn user(action: UserAction) -> Result<(), String> {
    match action {
        UserAction::Passwd { target, .. }
            if !read_users(&target.users, true)?
                .iter()
                .any(|e| e.user == target.user && e.realm == target.realm) =>
        {
            Err(format!(
                "no user {} in realm {}; use `sipreg user add`",
                target.user, target.realm
            ))
        }
        UserAction::Add {
            pattern: Some(pattern),
            password_pattern: Some(password_pattern),
            count: Some(count),
            first,
            realm,
            users,
            ..
        } => bulk_add(&pattern, &password_pattern, first, count, &realm, &users),
        UserAction::Add {
            user: Some(user),
            realm,
            users,
            password,
            ..
        } => set_password(&UserTarget { user, realm, users }, &password),
        UserAction::Add { .. } => {
            Err("give a user name, or --pattern with --password-pattern and --count".into())
        }
        UserAction::Passwd { target, password } => set_password(&target, &password),
        UserAction::Remove { target } => {
            let mut entries = read_users(&target.users, true)?;
            let before = entries.len();
            entries.retain(|e| !(e.user == target.user && e.realm == target.realm));
            if entries.len() == before {
                return Err(format!("no user {} in realm {}", target.user, target.realm));
            }
            write_users(&target.users, &entries)
        }
        UserAction::List { users } => {
            let entries = read_users(&users, true)?;
            let mut seen: Vec<(&str, &str, Vec<&str>)> = Vec::new();
            for e in &entries {
                let alg = e.ha1.algorithm().name();
                match seen
                    .iter_mut()
                    .find(|(u, r, _)| *u == e.user && *r == e.realm)
                {
                    Some((_, _, algs)) => algs.push(alg),
                    None => seen.push((&e.user, &e.realm, vec![alg])),
                }
            }
            let mut out = std::io::stdout().lock();
            for (u, r, algs) in seen {
                let _ = writeln!(out, "{u} {r} {}", algs.join(","));
            }
            Ok(())
        }
    }
}
