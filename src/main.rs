//! The `sipreg` command: parses the command line, loads credentials, opens the sockets and runs
//! the element; manages the credentials file.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::{Args, Parser, Subcommand};

use sipreg::auth::Algorithm;
use sipreg::auth::file::{self, Entry};
use sipreg::config::{self, DEFAULT_USERS, Listener, Protocol};
use sipreg::io;
use sipreg::registrar::{Peer, Registrar};
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
    /// Add a user (or set a new password for an existing one).
    Add {
        #[command(flatten)]
        target: UserTarget,
        #[command(flatten)]
        password: PasswordSource,
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
        } => serve(config.as_deref(), &listen, &domain, users, &auth_algorithms),
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

/// The registrar behind the poll loop (UDP and TCP).
struct Shell(Registrar);

fn peer(d: &io::Datagram<'_>) -> Peer {
    Peer {
        source: d.source,
        transport: d.transport,
        connection: d.connection,
    }
}

impl io::Element for Shell {
    fn on_datagram(&mut self, d: io::Datagram<'_>, out: &mut [u8]) -> Option<usize> {
        self.0.handle(d.now_ms, peer(&d), d.bytes, out)
    }

    fn on_stream_error(
        &mut self,
        d: io::Datagram<'_>,
        error: sip::Error,
        out: &mut [u8],
    ) -> Option<usize> {
        self.0.reject_unframed(peer(&d), error, d.bytes, out)
    }

    // on_closed: the default (nothing) until the registrar marks bindings learnt over the
    // connection unreachable.

    fn on_tick(&mut self, now_ms: u64) {
        self.0.tick(now_ms);
        // Nothing consumes the events yet (persistence and metrics come later); keep the queue
        // from growing.
        while self.0.poll_event().is_some() {}
    }
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

fn serve(
    config_path: Option<&Path>,
    listen: &[String],
    domains: &[String],
    users: Option<PathBuf>,
    algorithms: &[String],
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
    // Not applied yet: one worker thread, the kernel's socket buffers. Say so rather than
    // pretend.
    if settings.workers() != 1
        || settings.pin_workers()
        || settings.recv_buffer().is_some()
        || settings.send_buffer().is_some()
    {
        eprintln!(
            "sipreg: server.workers, pin_workers, recv_buffer and send_buffer are not applied \
             yet: one thread, kernel buffers"
        );
    }
    let config = settings.registrar_config(&[local_host_name()]);
    let users_path = settings.users();
    // A missing file at the default path means no users yet; one named explicitly must exist.
    let entries = read_users(users_path, users_path != Path::new(DEFAULT_USERS))?;
    let defaults = settings.listeners() == config::default_listeners();
    let tcp = settings.tcp();
    let mut listeners = io::Listeners {
        tcp_limits: io::TcpLimits::new(tcp.max_connections, tcp.max_message, tcp.idle_timeout),
        ..io::Listeners::default()
    };
    for &l in settings.listeners() {
        let Listener { protocol, addr } = l;
        let bound = match protocol {
            Protocol::Udp => io::bind_udp(addr).map(|s| listeners.udp.push(s)),
            Protocol::Tcp => io::bind_tcp(addr).map(|t| listeners.tcp.push(t)),
        };
        match bound {
            Ok(()) => {}
            // A host without IPv6 still serves IPv4 on defaults; an explicit address must work.
            Err(e) if defaults && addr.is_ipv6() => {
                eprintln!("sipreg: not listening on {l}: {e}");
            }
            Err(e) => return Err(format!("cannot listen on {l}: {e}")),
        }
    }
    // A configured secret keeps nonces valid across restarts and servers; otherwise a fresh one.
    let secret = settings.nonce_secret().unwrap_or_else(io::random_secret);
    let domains: Vec<&str> = config.domains.iter().map(|d| d.name.as_str()).collect();
    let domains = domains.join(", ");
    let mut registrar = Registrar::new(config, secret);
    registrar.set_users(file::load(&entries));
    for s in &listeners.udp {
        if let Ok(a) = s.local_addr() {
            eprintln!("sipreg: listening on udp:{a}");
        }
    }
    for l in &listeners.tcp {
        if let Ok(a) = l.local_addr() {
            eprintln!("sipreg: listening on tcp:{a}");
        }
    }
    eprintln!("sipreg: serving domains {domains}");
    if entries.is_empty() {
        eprintln!(
            "sipreg: no credentials in {}: every REGISTER is challenged; add users with `sipreg user add`",
            users_path.display()
        );
    } else {
        eprintln!(
            "sipreg: {} credential entries from {}",
            entries.len(),
            users_path.display()
        );
    }
    // SIGTERM and SIGINT stop the loop after the datagram in hand (within 200 ms when idle).
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
    }
    io::serve(listeners, &mut Shell(registrar), stop)
        .map_err(|e| format!("poll loop failed: {e}"))?;
    eprintln!("sipreg: stopped");
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
        UserAction::Add { target, password } | UserAction::Passwd { target, password } => {
            for (what, v) in [("user name", &target.user), ("realm", &target.realm)] {
                if !file::is_storable(v) {
                    return Err(format!(
                        "{what} {v:?} must be non-empty, without white space"
                    ));
                }
            }
            let mut entries = read_users(&target.users, false)?;
            let password = read_password(&password)?;
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
