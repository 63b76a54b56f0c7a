//! The configuration file (`sipreg.toml`): TOML text in, typed and checked settings out.
//!
//! [`File::parse`] reads every setting the server has: listeners, workers, socket buffers, the
//! served domains and their realms, the expiry and contact policy, digest authentication (the
//! algorithms offered, the nonce lifetime and secret, the nonce-count table, the credentials file),
//! TCP limits and message limits, persistence, NAT keep-alive pings. Every key is optional and defaults to the built-in value
//! ([`File::default`]); an unknown key, a value of the wrong type, or a value that breaks a rule
//! (`min_expires` above `default_expires`, a listener that is not an address) is a
//! [`ConfigError`] naming the key path and its line and column. [`EXAMPLE`] is the shipped,
//! commented example, which states every default.
//!
//! Sans-I/O like the rest of the core: this module does not open the file (the binary reads it and
//! passes the text), bind sockets, draw a random nonce secret, or read the credentials file; it
//! says what to do, and the shell does it.

use core::fmt;
use core::net::SocketAddr;
use core::str::FromStr;
use core::time::Duration;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::auth::Algorithm;
use crate::registrar::{
    self, AuthConfig, ContactPolicy, Domain, FlowClose, Keepalive, KeepaliveMode, Policy,
};
use crate::sip;

/// The shipped example: every key, commented, with its default (`sipreg example-config`).
pub const EXAMPLE: &str = include_str!("example.toml");

/// The credentials file when neither the configuration nor the command line names one. A missing
/// file at this path means "no users yet"; a missing file named explicitly is an error.
pub const DEFAULT_USERS: &str = "/etc/sipreg/users";

/// Where bindings are kept across restarts unless configured otherwise.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/sipreg";

/// Persistence of the location table (`[persist]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Persist {
    /// Off: bindings live in memory only and die with the process.
    pub enabled: bool,
    pub dir: PathBuf,
    /// Whether `dir` was chosen (file or `--data-dir`) rather than the default: a chosen
    /// directory that cannot be used stops the server; the default only warns.
    pub explicit: bool,
    /// The durability window in milliseconds: after kill -9 at most this much is lost.
    pub window_ms: u64,
}

impl Default for Persist {
    fn default() -> Self {
        Persist {
            enabled: true,
            dir: PathBuf::from(DEFAULT_DATA_DIR),
            explicit: false,
            window_ms: 1000,
        }
    }
}

/// The listeners when none are configured: UDP and TCP port 5060 on every IPv4 and IPv6
/// address. The shell still starts when the IPv6 ones fail (a host without IPv6); listeners
/// configured explicitly must all work.
pub fn default_listeners() -> Vec<Listener> {
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5060);
    let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 5060);
    [
        (Protocol::Udp, v4),
        (Protocol::Udp, v6),
        (Protocol::Tcp, v4),
        (Protocol::Tcp, v6),
    ]
    .into_iter()
    .map(|(protocol, addr)| Listener { protocol, addr })
    .collect()
}

/// The transport a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Udp,
    Tcp,
}

/// An address to listen on, written `udp:ADDR`, `tcp:ADDR` or `ADDR` (UDP), as in `--listen`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listener {
    pub protocol: Protocol,
    pub addr: SocketAddr,
}

impl FromStr for Listener {
    type Err = String;

    fn from_str(spec: &str) -> Result<Listener, String> {
        let (protocol, addr) = match spec.split_once(':') {
            Some(("udp", rest)) => (Protocol::Udp, rest),
            Some(("tcp", rest)) => (Protocol::Tcp, rest),
            Some(("tls", _)) => return Err("TLS is not served yet".to_string()),
            _ => (Protocol::Udp, spec),
        };
        let addr = addr.parse().map_err(|_| {
            format!(
                "{spec:?} is not an address; expected udp:ADDR or tcp:ADDR, e.g. \
                 udp:0.0.0.0:5060 or tcp:[::1]:5060"
            )
        })?;
        Ok(Listener { protocol, addr })
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.protocol {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
        };
        write!(f, "{name}:{}", self.addr)
    }
}

/// Limits on TCP connections (the shell turns them into `io::TcpLimits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tcp {
    /// Open connections per loop; one more is accepted and closed at once.
    pub max_connections: usize,
    /// Largest message on a stream, head and body, in octets.
    pub max_message: usize,
    /// A connection without a complete message or a keep-alive ping for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for Tcp {
    fn default() -> Self {
        Tcp {
            max_connections: 10_000,
            max_message: 65_535,
            idle_timeout: Duration::from_secs(120),
        }
    }
}

/// The nonce key material; `Debug` does not print it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Secret([u8; 32]);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A parsed and checked configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    listeners: Vec<Listener>,
    workers: usize,
    pin_workers: bool,
    recv_buffer: Option<usize>,
    send_buffer: Option<usize>,
    server_header: String,
    domains: Vec<Domain>,
    policy: Policy,
    auth: AuthConfig,
    nonce_secret: Option<Secret>,
    users: PathBuf,
    tcp: Tcp,
    limits: sip::Limits,
    /// AORs the whole server is sized for (split over the workers).
    expected_aors: usize,
    persist: Persist,
    keepalive: Keepalive,
}

impl Default for File {
    /// The built-in defaults: what `serve` does with no configuration file.
    fn default() -> Self {
        let registrar = registrar::Config::with_domains(&[]);
        File {
            listeners: default_listeners(),
            // One thread, as `serve` runs today.
            workers: 0,
            pin_workers: true,
            // Registration storms come in bursts; the kernel's default (about 200 KiB, some
            // 200 REGISTERs) overflows while a worker is busy.
            recv_buffer: Some(8 << 20),
            send_buffer: None,
            server_header: registrar.server,
            domains: registrar.domains,
            policy: registrar.policy,
            auth: registrar.auth,
            nonce_secret: None,
            users: PathBuf::from(DEFAULT_USERS),
            tcp: Tcp::default(),
            limits: registrar.limits,
            expected_aors: 1_000_000,
            persist: Persist::default(),
            keepalive: registrar.keepalive,
        }
    }
}

/// Most worker threads accepted; more is a typo, not a machine. Nonces carry the index of the
/// worker that issued them in 10 bits ([`crate::auth::NonceKeys::issue`]), so two workers never
/// issue the same nonce in one second.
pub const MAX_WORKERS: usize = 1024;

impl File {
    /// Parses and checks a configuration file's text.
    pub fn parse(text: &str) -> Result<File, ConfigError> {
        let doc = DeTable::parse(text).map_err(|e| {
            // A syntax error: the document did not parse, so there is no key path to give; a
            // duplicate key is named at least.
            let span = e.span().unwrap_or_default();
            let message = match text.get(span.clone()) {
                Some(name) if e.message() == "duplicate key" => format!("duplicate key `{name}`"),
                _ => e.message().to_string(),
            };
            ConfigError::at(text, span.start, String::new(), &message)
        })?;
        let locate = Locate {
            text,
            root: doc.get_ref(),
        };
        let raw = Raw::deserialize(toml::de::Deserializer::from(doc.clone())).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            let key = path_at(doc.get_ref(), offset).unwrap_or_default();
            ConfigError::at(text, offset, key, &plain(e.message()))
        })?;
        raw.check(&locate)
    }

    /// The registrar's configuration: the file's domains, or, when it names none,
    /// `default_domains` (each its own realm; the shell passes the local host name).
    pub fn registrar_config(&self, default_domains: &[String]) -> registrar::Config {
        let domains = if self.domains.is_empty() {
            registrar::Config::with_domains(default_domains).domains
        } else {
            self.domains.clone()
        };
        registrar::Config {
            domains,
            policy: self.policy.clone(),
            auth: self.auth.clone(),
            server: self.server_header.clone(),
            limits: self.limits,
            expected_aors: self.expected_aors,
            keepalive: self.keepalive,
        }
    }

    /// The addresses to listen on.
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// The domains served; empty when the file names none (see [`File::registrar_config`]).
    pub fn domains(&self) -> &[Domain] {
        &self.domains
    }

    /// Worker threads; 0 means one per core.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Whether each worker is pinned to its own core.
    pub fn pin_workers(&self) -> bool {
        self.pin_workers
    }

    /// SO_RCVBUF in bytes; `None` leaves the kernel's default.
    pub fn recv_buffer(&self) -> Option<usize> {
        self.recv_buffer
    }

    /// SO_SNDBUF in bytes; `None` leaves the kernel's default.
    pub fn send_buffer(&self) -> Option<usize> {
        self.send_buffer
    }

    /// The nonce secret, if the file sets one; `None` means the shell draws one at random.
    pub fn nonce_secret(&self) -> Option<[u8; 32]> {
        self.nonce_secret.map(|s| s.0)
    }

    /// The credentials file.
    pub fn users(&self) -> &Path {
        &self.users
    }

    pub fn tcp(&self) -> Tcp {
        self.tcp
    }

    /// Replaces the listeners (a command-line `--listen` wins over the file).
    pub fn set_listeners(&mut self, listeners: Vec<Listener>) {
        self.listeners = listeners;
    }

    /// Replaces the served domains, each its own realm (a command-line `--domain` wins).
    /// Persistence of the location table.
    pub fn persist(&self) -> &Persist {
        &self.persist
    }

    /// The data directory (`--data-dir`), which also turns persistence on.
    pub fn set_data_dir(&mut self, dir: PathBuf) {
        self.persist.dir = dir;
        self.persist.explicit = true;
        self.persist.enabled = true;
    }

    /// Worker threads (`--workers`); 0 means one per core.
    pub fn set_workers(&mut self, workers: usize) {
        self.workers = workers;
    }

    pub fn set_domains(&mut self, names: &[String]) {
        self.domains = registrar::Config::with_domains(names).domains;
    }

    /// Replaces the credentials file (a command-line `--users` wins).
    pub fn set_users(&mut self, path: PathBuf) {
        self.users = path;
    }

    /// Replaces the algorithms offered (a command-line `--auth-algorithms` wins).
    /// `--no-auth`: REGISTER needs no credentials.
    pub fn set_auth_required(&mut self, required: bool) {
        self.auth.required = required;
    }

    pub fn set_algorithms(&mut self, algorithms: Vec<Algorithm>) {
        self.auth.algorithms = algorithms;
    }
}

/// A configuration error: where, which key, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line of the offending key or value.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The key path, e.g. `policy.min_expires` or `domain[1].name`; empty for a syntax error
    /// outside any key.
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn at(text: &str, offset: usize, key: String, message: &str) -> ConfigError {
        let (line, column) = line_column(text, offset);
        ConfigError {
            line,
            column,
            key,
            message: message.trim_end().to_string(),
        }
    }
}

/// `12:3: policy.min_expires: must be at most policy.default_expires (3600)`; the binary puts the
/// file name in front.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// serde's messages name Rust types ("expected u32"); an operator reads numbers.
fn plain(message: &str) -> String {
    const TYPES: [(&str, &str); 3] = [
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        ("expected u64", "expected a whole number"),
        ("expected usize", "expected a whole number"),
    ];
    TYPES
        .iter()
        .find_map(|(rust, plain)| message.strip_suffix(rust).map(|m| format!("{m}{plain}")))
        .unwrap_or_else(|| message.to_string())
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or_default();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// The key path of the deepest key or value whose span holds `offset`, like `auth.algorithms[1]`.
/// Container spans are not relied on (a `[table]` header's span is the header alone), so every
/// entry is searched.
fn path_at(table: &DeTable<'_>, offset: usize) -> Option<String> {
    for (key, value) in table.iter() {
        let name = key.get_ref();
        if key.span().contains(&offset) {
            return Some(name.to_string());
        }
        if let Some(inner) = path_in(value, offset) {
            return Some(format!("{name}{inner}"));
        }
    }
    None
}

/// The rest of the path (`.key`, `[i]`) inside `value`, or `""` if `offset` is in `value` itself.
fn path_in(value: &Spanned<DeValue<'_>>, offset: usize) -> Option<String> {
    let inner = match value.get_ref() {
        DeValue::Table(t) => path_at(t, offset).map(|p| format!(".{p}")),
        DeValue::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| path_in(v, offset).map(|p| format!("[{i}]{p}"))),
        _ => None,
    };
    inner.or_else(|| value.span().contains(&offset).then(String::new))
}

/// Finds keys in the parsed document to place the errors the checks find.
struct Locate<'a> {
    text: &'a str,
    root: &'a DeTable<'a>,
}

impl Locate<'_> {
    /// An error at `key` (a path like `policy.min_expires` or `server.listen[2]`): at the key of
    /// a table entry, at the element of an array; at the nearest enclosing entry that is present.
    fn error(&self, key: &str, message: impl fmt::Display) -> ConfigError {
        let offset = self.offset(key).unwrap_or(0);
        ConfigError::at(self.text, offset, key.to_string(), &message.to_string())
    }

    fn offset(&self, key: &str) -> Option<usize> {
        let mut table = self.root;
        let mut found = None;
        for segment in key.split('.') {
            let (name, index) = match segment.split_once('[') {
                Some((name, rest)) => (name, rest.strip_suffix(']')?.parse::<usize>().ok()),
                None => (segment, None),
            };
            let (k, mut v) = table.get_key_value(name)?;
            found = Some(k.span().start);
            if let Some(i) = index {
                let DeValue::Array(a) = v.get_ref() else {
                    return found;
                };
                let Some(element) = a.get(i) else {
                    return found;
                };
                v = element;
                found = Some(v.span().start);
            }
            match v.get_ref() {
                DeValue::Table(t) => table = t,
                _ => break,
            }
        }
        found
    }
}

// The file as written: every key optional, unknown keys refused. `None` takes the default from
// `File::default()`, the one place defaults live.

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    server: RawServer,
    #[serde(default, rename = "domain")]
    domains: Vec<RawDomain>,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    tcp: RawTcp,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    persist: RawPersist,
    #[serde(default)]
    nat: RawNat,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNat {
    keepalive: Option<RawKeepalive>,
    keepalive_interval: Option<u32>,
    keepalive_timeout: Option<u32>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawKeepalive {
    Off,
    Nat,
    All,
}

impl RawNat {
    fn apply(self, k: &mut Keepalive, at: &Locate<'_>) -> Result<(), ConfigError> {
        if let Some(mode) = self.keepalive {
            k.mode = match mode {
                RawKeepalive::Off => KeepaliveMode::Off,
                RawKeepalive::Nat => KeepaliveMode::Nat,
                RawKeepalive::All => KeepaliveMode::All,
            };
        }
        if let Some(seconds) = self.keepalive_interval {
            if seconds > 3600 {
                return Err(at.error(
                    "nat.keepalive_interval",
                    "must be at most 3600 seconds (0 turns pinging off)",
                ));
            }
            k.interval = seconds;
        }
        if let Some(seconds) = self.keepalive_timeout {
            if seconds > 86_400 {
                return Err(at.error(
                    "nat.keepalive_timeout",
                    "must be at most 86400 seconds (0 never removes)",
                ));
            }
            k.timeout = seconds;
        }
        // One lost ping (or answer) must not remove a binding.
        let pinging = k.mode != KeepaliveMode::Off && k.interval > 0;
        if pinging && k.timeout > 0 && k.timeout < 2 * k.interval {
            return Err(if self.keepalive_timeout.is_some() {
                at.error(
                    "nat.keepalive_timeout",
                    format!(
                        "must be 0 (never remove) or at least twice nat.keepalive_interval ({})",
                        k.interval
                    ),
                )
            } else {
                at.error(
                    "nat.keepalive_interval",
                    format!(
                        "must be at most half of nat.keepalive_timeout ({})",
                        k.timeout
                    ),
                )
            });
        }
        Ok(())
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPersist {
    enabled: Option<bool>,
    dir: Option<String>,
    window_ms: Option<u64>,
}

impl RawPersist {
    fn apply(self, p: &mut Persist, at: &Locate<'_>) -> Result<(), ConfigError> {
        if let Some(e) = self.enabled {
            p.enabled = e;
        }
        if let Some(dir) = self.dir {
            if dir.is_empty() {
                return Err(at.error("persist.dir", "must not be empty"));
            }
            p.dir = PathBuf::from(dir);
            p.explicit = true;
        }
        if let Some(w) = self.window_ms {
            if !(10..=60_000).contains(&w) {
                return Err(at.error("persist.window_ms", "must be 10 to 60000 milliseconds"));
            }
            p.window_ms = w;
        }
        Ok(())
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Vec<String>>,
    workers: Option<usize>,
    pin_workers: Option<bool>,
    recv_buffer: Option<usize>,
    send_buffer: Option<usize>,
    server_header: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomain {
    name: String,
    realm: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawContactPolicy {
    Reject,
    ReplaceOldest,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawFlowClose {
    Unreachable,
    Remove,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    min_expires: Option<u32>,
    max_expires: Option<u32>,
    default_expires: Option<u32>,
    max_contacts: Option<usize>,
    contact_policy: Option<RawContactPolicy>,
    retry_after: Option<u32>,
    tcp_close: Option<RawFlowClose>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    algorithms: Option<Vec<String>>,
    required: Option<bool>,
    nonce_lifetime: Option<u64>,
    nonce_secret: Option<String>,
    nc_entries: Option<usize>,
    users: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTcp {
    max_connections: Option<usize>,
    max_message: Option<usize>,
    idle_timeout: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_message: Option<usize>,
    max_line: Option<usize>,
    expected_aors: Option<usize>,
}

/// A socket buffer size the kernel accepts (setsockopt takes an `int`).
const MAX_BUFFER: usize = i32::MAX as usize;

impl Raw {
    /// Applies the file over the defaults, checking each value and the relations between them.
    fn check(self, at: &Locate<'_>) -> Result<File, ConfigError> {
        let mut file = File::default();
        self.server.apply(&mut file, at)?;
        apply_domains(self.domains, &mut file, at)?;
        self.policy.apply(&mut file.policy, at)?;
        self.auth.apply(&mut file, at)?;
        if let Some(n) = self.limits.expected_aors {
            if n > 1 << 31 {
                return Err(at.error("limits.expected_aors", "must be at most 2^31"));
            }
            file.expected_aors = n;
        }
        self.limits.apply(&mut file.limits, at)?;
        self.tcp.apply(&mut file, at)?;
        self.persist.apply(&mut file.persist, at)?;
        self.nat.apply(&mut file.keepalive, at)?;
        Ok(file)
    }
}

impl RawServer {
    fn apply(self, file: &mut File, at: &Locate<'_>) -> Result<(), ConfigError> {
        if let Some(listen) = self.listen {
            if listen.is_empty() {
                return Err(at.error("server.listen", "must name at least one address"));
            }
            file.listeners = listen
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    s.parse()
                        .map_err(|e| at.error(&format!("server.listen[{i}]"), e))
                })
                .collect::<Result<_, _>>()?;
            for (i, l) in file.listeners.iter().enumerate() {
                if file
                    .listeners
                    .get(..i)
                    .is_some_and(|before| before.contains(l))
                {
                    return Err(at.error(
                        &format!("server.listen[{i}]"),
                        format!("{l} is listed twice"),
                    ));
                }
            }
        }
        if let Some(workers) = self.workers {
            if workers > MAX_WORKERS {
                return Err(at.error(
                    "server.workers",
                    format!("must be at most {MAX_WORKERS} (0 means one per core)"),
                ));
            }
            file.workers = workers;
        }
        if let Some(pin) = self.pin_workers {
            file.pin_workers = pin;
        }
        for (key, value, slot) in [
            (
                "server.recv_buffer",
                self.recv_buffer,
                &mut file.recv_buffer,
            ),
            (
                "server.send_buffer",
                self.send_buffer,
                &mut file.send_buffer,
            ),
        ] {
            if let Some(bytes) = value {
                if bytes > MAX_BUFFER {
                    return Err(at.error(key, format!("must be at most {MAX_BUFFER} bytes")));
                }
                // 0: the kernel's default (net.core.rmem_default / wmem_default).
                *slot = (bytes > 0).then_some(bytes);
            }
        }
        if let Some(header) = self.server_header {
            // It is written as a header field value: one line of visible characters.
            if header.trim().is_empty() || header.chars().any(|c| c.is_control()) {
                return Err(at.error(
                    "server.server_header",
                    "must be one line of text without control characters",
                ));
            }
            file.server_header = header;
        }
        Ok(())
    }
}

fn apply_domains(
    domains: Vec<RawDomain>,
    file: &mut File,
    at: &Locate<'_>,
) -> Result<(), ConfigError> {
    for (i, d) in domains.into_iter().enumerate() {
        let name = d.name.to_ascii_lowercase();
        // Matched against Request-URI hosts the way the registrar parses them.
        if sip::Host::parse(name.as_bytes()).is_none() {
            return Err(at.error(
                &format!("domain[{i}].name"),
                format!("{:?} is not a host name or address", d.name),
            ));
        }
        if file.domains.iter().any(|seen| seen.name == name) {
            return Err(at.error(
                &format!("domain[{i}].name"),
                format!("{name:?} is served twice"),
            ));
        }
        let realm = match d.realm {
            // Written in a quoted string of every challenge and as one field of the credentials
            // file.
            Some(r) if !crate::auth::file::is_storable(&r) || r.contains(['"', '\\']) => {
                return Err(at.error(
                    &format!("domain[{i}].realm"),
                    format!("{r:?} must be non-empty, without white space, quotes or backslashes"),
                ));
            }
            Some(r) => r,
            None => name.clone(),
        };
        file.domains.push(Domain { name, realm });
    }
    Ok(())
}

impl RawPolicy {
    fn apply(self, policy: &mut Policy, at: &Locate<'_>) -> Result<(), ConfigError> {
        let set = |value: Option<u32>, slot: &mut u32| {
            if let Some(v) = value {
                *slot = v;
            }
        };
        set(self.min_expires, &mut policy.min_expires);
        set(self.max_expires, &mut policy.max_expires);
        set(self.default_expires, &mut policy.default_expires);
        set(self.retry_after, &mut policy.retry_after);
        if let Some(c) = self.tcp_close {
            policy.flow_close = match c {
                RawFlowClose::Unreachable => FlowClose::Unreachable,
                RawFlowClose::Remove => FlowClose::Remove,
            };
        }
        if let Some(p) = self.contact_policy {
            policy.contact_policy = match p {
                RawContactPolicy::Reject => ContactPolicy::Reject,
                RawContactPolicy::ReplaceOldest => ContactPolicy::ReplaceOldest,
            };
        }
        if let Some(n) = self.max_contacts {
            if n == 0 {
                return Err(at.error("policy.max_contacts", "must be at least 1"));
            }
            policy.max_contacts = n;
        }
        // RFC 3261 10.3 step 7: the registrar MAY reject an expiration "if and only if the
        // requested expiration interval is greater than zero AND smaller than one hour".
        if policy.min_expires > 3600 {
            return Err(at.error(
                "policy.min_expires",
                "must be at most 3600 (RFC 3261 10.3: a registrar rejects only intervals below one hour)",
            ));
        }
        // min <= default <= max; the error names a key the file sets, and min against max first
        // (the mistake when both are set and default is not).
        let (min, default, max) = (
            policy.min_expires,
            policy.default_expires,
            policy.max_expires,
        );
        if min > max {
            return Err(if self.min_expires.is_some() {
                at.error(
                    "policy.min_expires",
                    format!("must be at most policy.max_expires ({max})"),
                )
            } else {
                at.error(
                    "policy.max_expires",
                    format!("must be at least policy.min_expires ({min})"),
                )
            });
        }
        if min > default {
            return Err(if self.min_expires.is_some() {
                at.error(
                    "policy.min_expires",
                    format!("must be at most policy.default_expires ({default})"),
                )
            } else {
                at.error(
                    "policy.default_expires",
                    format!("must be at least policy.min_expires ({min})"),
                )
            });
        }
        if default > max {
            return Err(if self.default_expires.is_some() {
                at.error(
                    "policy.default_expires",
                    format!("must be at most policy.max_expires ({max})"),
                )
            } else {
                at.error(
                    "policy.max_expires",
                    format!("must be at least policy.default_expires ({default})"),
                )
            });
        }
        Ok(())
    }
}

impl RawAuth {
    fn apply(self, file: &mut File, at: &Locate<'_>) -> Result<(), ConfigError> {
        if let Some(names) = self.algorithms {
            if names.is_empty() {
                return Err(at.error("auth.algorithms", "must name at least one algorithm"));
            }
            let mut algorithms = Vec::with_capacity(names.len());
            for (i, name) in names.iter().enumerate() {
                let key = format!("auth.algorithms[{i}]");
                let a = Algorithm::from_token(name.as_bytes()).ok_or_else(|| {
                    at.error(
                        &key,
                        format!("unknown algorithm {name:?} (SHA-512-256, SHA-256, MD5)"),
                    )
                })?;
                if algorithms.contains(&a) {
                    return Err(at.error(&key, format!("{} is listed twice", a.name())));
                }
                algorithms.push(a);
            }
            file.auth.algorithms = algorithms;
        }
        if let Some(r) = self.required {
            file.auth.required = r;
        }
        if let Some(seconds) = self.nonce_lifetime {
            if seconds == 0 {
                return Err(at.error("auth.nonce_lifetime", "must be at least 1 second"));
            }
            file.auth.nonce_lifetime = seconds;
        }
        if let Some(n) = self.nc_entries {
            if n == 0 {
                return Err(at.error("auth.nc_entries", "must be at least 1"));
            }
            file.auth.nc_entries = n;
        }
        if let Some(hex) = self.nonce_secret {
            let secret = parse_secret(&hex).ok_or_else(|| {
                at.error(
                    "auth.nonce_secret",
                    format!(
                        "must be 64 hex digits (32 bytes), e.g. from `openssl rand -hex 32`; \
                         found {} characters",
                        hex.chars().count()
                    ),
                )
            })?;
            file.nonce_secret = Some(Secret(secret));
        }
        if let Some(users) = self.users {
            if users.is_empty() {
                return Err(at.error("auth.users", "must be a file path"));
            }
            file.users = PathBuf::from(users);
        }
        Ok(())
    }
}

/// 64 hex digits, either case, into 32 bytes.
fn parse_secret(hex: &str) -> Option<[u8; 32]> {
    let digits = hex.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut secret = [0u8; 32];
    for (byte, pair) in secret.iter_mut().zip(digits.chunks_exact(2)) {
        let text = core::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(text, 16).ok()?;
    }
    Some(secret)
}

impl RawLimits {
    fn apply(self, limits: &mut sip::Limits, at: &Locate<'_>) -> Result<(), ConfigError> {
        if let Some(n) = self.max_message {
            // RFC 3261 18.1.1 expects messages up to 1300 bytes over UDP; with headroom for
            // Path and several contacts, a kilobyte less than that is no registrar.
            if n < 1024 {
                return Err(at.error("limits.max_message", "must be at least 1024 bytes"));
            }
            limits.max_message = n;
        }
        if let Some(n) = self.max_line {
            if n < 256 {
                return Err(at.error("limits.max_line", "must be at least 256 bytes"));
            }
            limits.max_line = n;
        }
        if limits.max_line > limits.max_message {
            return Err(if self.max_line.is_some() {
                at.error(
                    "limits.max_line",
                    format!(
                        "must be at most limits.max_message ({})",
                        limits.max_message
                    ),
                )
            } else {
                at.error(
                    "limits.max_message",
                    format!("must be at least limits.max_line ({})", limits.max_line),
                )
            });
        }
        Ok(())
    }
}

impl RawTcp {
    /// Runs after [`RawLimits::apply`]: a stream message is also bounded by `limits.max_message`.
    fn apply(self, file: &mut File, at: &Locate<'_>) -> Result<(), ConfigError> {
        if let Some(n) = self.max_connections {
            if n == 0 {
                return Err(at.error("tcp.max_connections", "must be at least 1"));
            }
            file.tcp.max_connections = n;
        }
        if let Some(seconds) = self.idle_timeout {
            if seconds == 0 {
                return Err(at.error("tcp.idle_timeout", "must be at least 1 second"));
            }
            file.tcp.idle_timeout = Duration::from_secs(seconds);
        }
        let parser = file.limits.max_message;
        match self.max_message {
            // A larger stream message would frame, then fail the parser's limit.
            Some(n) if n > parser => {
                return Err(at.error(
                    "tcp.max_message",
                    format!("must be at most limits.max_message ({parser})"),
                ));
            }
            Some(n) if n < 1024 => {
                return Err(at.error("tcp.max_message", "must be at least 1024 bytes"));
            }
            Some(n) => file.tcp.max_message = n,
            // Unset, it follows a lowered limits.max_message.
            None => file.tcp.max_message = file.tcp.max_message.min(parser),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file that sets every key to something other than its default.
    const FULL: &str = r#"
[server]
listen = ["udp:192.0.2.1:5060", "tcp:[2001:db8::1]:5070", "198.51.100.7:5080"]
workers = 0
pin_workers = false
recv_buffer = 8388608
send_buffer = 0
server_header = "edge-registrar"

[[domain]]
name = "Example.COM"

[[domain]]
name = "[2001:db8::10]"
realm = "v6.example.com"

[policy]
min_expires = 120
max_expires = 86400
default_expires = 1800
max_contacts = 3
contact_policy = "reject"
retry_after = 10
tcp_close = "remove"

[auth]
required = false
algorithms = ["md5", "SHA-256"]
nonce_lifetime = 600
nonce_secret = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F"
nc_entries = 4096
users = "/srv/sipreg/users"

[tcp]
max_connections = 500
max_message = 16384
idle_timeout = 30

[limits]
max_message = 32768
max_line = 4096
expected_aors = 5000

[nat]
keepalive = "all"
keepalive_interval = 20
keepalive_timeout = 0
"#;

    #[test]
    fn full_file_round_trips_to_registrar_config() {
        let file = File::parse(FULL).unwrap();
        let config = file.registrar_config(&["ignored.example".to_string()]);
        assert_eq!(
            config,
            registrar::Config {
                domains: vec![
                    Domain {
                        name: "example.com".into(),
                        realm: "example.com".into(),
                    },
                    Domain {
                        name: "[2001:db8::10]".into(),
                        realm: "v6.example.com".into(),
                    },
                ],
                policy: Policy {
                    min_expires: 120,
                    max_expires: 86400,
                    default_expires: 1800,
                    max_contacts: 3,
                    contact_policy: ContactPolicy::Reject,
                    retry_after: 10,
                    flow_close: FlowClose::Remove,
                },
                auth: AuthConfig {
                    required: false,
                    algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
                    nonce_lifetime: 600,
                    nc_entries: 4096,
                },
                server: "edge-registrar".into(),
                limits: sip::Limits {
                    max_message: 32768,
                    max_line: 4096,
                },
                expected_aors: 5000,
                keepalive: Keepalive {
                    mode: KeepaliveMode::All,
                    interval: 20,
                    timeout: 0,
                },
            }
        );
        let listeners: Vec<String> = file.listeners().iter().map(|l| l.to_string()).collect();
        assert_eq!(
            listeners,
            [
                "udp:192.0.2.1:5060",
                "tcp:[2001:db8::1]:5070",
                "udp:198.51.100.7:5080"
            ]
        );
        assert_eq!((file.workers(), file.pin_workers()), (0, false));
        assert_eq!(
            (file.recv_buffer(), file.send_buffer()),
            (Some(8_388_608), None)
        );
        let secret: Vec<u8> = (0..32).collect();
        assert_eq!(file.nonce_secret().map(|s| s.to_vec()), Some(secret));
        assert_eq!(file.users(), Path::new("/srv/sipreg/users"));
        assert_eq!(
            file.tcp(),
            Tcp {
                max_connections: 500,
                max_message: 16384,
                idle_timeout: Duration::from_secs(30),
            }
        );
        assert!(
            !format!("{file:?}").contains("0a0b"),
            "Debug hides the secret"
        );
    }

    #[test]
    fn shipped_example_parses_to_the_defaults() {
        let file = File::parse(EXAMPLE).unwrap();
        assert_eq!(file, File::default());
        // The commented-out keys are real keys: uncommented (with a value), they parse too.
        let uncommented = EXAMPLE
            .replace("# server_header =", "server_header =")
            .replace(
                "# nonce_secret = \"<64 hex digits>\"",
                &format!("nonce_secret = \"{}\"", "ab".repeat(32)),
            )
            .replace("# [[domain]]", "[[domain]]")
            .replace("# name =", "name =")
            .replace("# realm =", "realm =")
            .replace("# dir =", "dir =");
        let file = File::parse(&uncommented).unwrap();
        assert!(file.persist().explicit);
        assert_eq!(file.domains().len(), 2);
        assert_eq!(file.nonce_secret(), Some([0xab; 32]));
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(File::parse("").unwrap(), File::default());
        assert_eq!(File::parse("# nothing\n\n").unwrap(), File::default());
    }

    #[test]
    fn defaults_are_the_built_in_ones() {
        let file = File::default();
        let names = ["host.example".to_string()];
        // The file sizes the table for a million AORs; a bare registrar grows on demand.
        let mut bare = registrar::Config::with_domains(&names);
        bare.expected_aors = 1_000_000;
        assert_eq!(file.registrar_config(&names), bare);
        let tcp = file.tcp();
        assert_eq!(
            crate::io::TcpLimits::new(tcp.max_connections, tcp.max_message, tcp.idle_timeout),
            crate::io::TcpLimits::default()
        );
        assert_eq!(file.listeners(), default_listeners());
        assert_eq!(file.users(), Path::new(DEFAULT_USERS));
        assert_eq!(file.nonce_secret(), None);
    }

    /// (what, file, line, column, key, a fragment of the message)
    const BAD: &[(&str, &str, usize, usize, &str, &str)] = &[
        (
            "unknown top-level key",
            "colour = 1\n",
            1,
            1,
            "colour",
            "unknown field `colour`",
        ),
        (
            "unknown table",
            "[policy]\nmin_expires = 60\n\n[polcy]\nmax_expires = 60\n",
            4,
            2,
            "polcy",
            "unknown field `polcy`",
        ),
        (
            "unknown nested key",
            "[policy]\nmin_expires = 60\nmax_expire = 7200\n",
            3,
            1,
            "policy.max_expire",
            "unknown field `max_expire`",
        ),
        (
            "unknown key in a dotted key",
            "policy.min_expire = 60\n",
            1,
            8,
            "policy.min_expire",
            "unknown field `min_expire`",
        ),
        (
            "unknown key in a domain",
            "[[domain]]\nname = \"a.example\"\n\n[[domain]]\nname = \"b.example\"\nrelm = \"b\"\n",
            6,
            1,
            "domain[1].relm",
            "unknown field `relm`",
        ),
        (
            "domain without a name",
            "[[domain]]\nrealm = \"a\"\n",
            1,
            1,
            "domain[0]",
            "missing field `name`",
        ),
        (
            "string for a number",
            "[policy]\nmin_expires = \"60\"\n",
            2,
            15,
            "policy.min_expires",
            "invalid type: string \"60\"",
        ),
        (
            "negative number",
            "[tcp]\nidle_timeout = -5\n",
            2,
            16,
            "tcp.idle_timeout",
            "invalid value: integer `-5`",
        ),
        (
            "number too large for the field",
            "[policy]\nmax_expires = 4294967296\n",
            2,
            15,
            "policy.max_expires",
            "4294967296",
        ),
        (
            "string for a list",
            "[server]\nlisten = \"udp:0.0.0.0:5060\"\n",
            2,
            10,
            "server.listen",
            "invalid type: string",
        ),
        (
            "number in a list of strings",
            "[auth]\nalgorithms = [\"MD5\", 5]\n",
            2,
            22,
            "auth.algorithms[1]",
            "invalid type: integer `5`",
        ),
        (
            "table for a value",
            "[server.workers]\n",
            1,
            1,
            "server.workers",
            "invalid type",
        ),
        (
            "bad listen address",
            "[server]\nlisten = [\"udp:0.0.0.0:5060\", \"tcp:example.com:5060\"]\n",
            2,
            31,
            "server.listen[1]",
            "\"tcp:example.com:5060\" is not an address",
        ),
        (
            "listen address without a port",
            "[server]\nlisten = [\"udp:[::1]\"]\n",
            2,
            11,
            "server.listen[0]",
            "is not an address",
        ),
        (
            "TLS listener",
            "[server]\nlisten = [\"tls:0.0.0.0:5061\"]\n",
            2,
            11,
            "server.listen[0]",
            "TLS is not served yet",
        ),
        (
            "empty listen list",
            "[server]\nlisten = []\n",
            2,
            1,
            "server.listen",
            "at least one address",
        ),
        (
            "listener twice",
            "[server]\nlisten = [\"udp:0.0.0.0:5060\", \"0.0.0.0:5060\"]\n",
            2,
            31,
            "server.listen[1]",
            "listed twice",
        ),
        (
            "too many workers",
            "[server]\nworkers = 100000\n",
            2,
            1,
            "server.workers",
            "at most 1024",
        ),
        (
            "server header with a line break",
            "[server]\nserver_header = \"a\\r\\nX-Evil: 1\"\n",
            2,
            1,
            "server.server_header",
            "control characters",
        ),
        (
            "bad algorithm",
            "[auth]\nalgorithms = [\"SHA-256\", \"SHA-1\"]\n",
            2,
            26,
            "auth.algorithms[1]",
            "unknown algorithm \"SHA-1\"",
        ),
        (
            "-sess algorithm",
            "[auth]\nalgorithms = [\"MD5-sess\"]\n",
            2,
            15,
            "auth.algorithms[0]",
            "unknown algorithm",
        ),
        (
            "algorithm twice",
            "[auth]\nalgorithms = [\"MD5\", \"md5\"]\n",
            2,
            22,
            "auth.algorithms[1]",
            "MD5 is listed twice",
        ),
        (
            "no algorithm",
            "[auth]\nalgorithms = []\n",
            2,
            1,
            "auth.algorithms",
            "at least one algorithm",
        ),
        (
            "short secret",
            "[auth]\nnonce_secret = \"00112233\"\n",
            2,
            1,
            "auth.nonce_secret",
            "64 hex digits (32 bytes)",
        ),
        (
            "secret not hex",
            "[auth]\nnonce_secret = \"zz00000000000000000000000000000000000000000000000000000000000000\"\n",
            2,
            1,
            "auth.nonce_secret",
            "64 hex digits",
        ),
        (
            "zero nonce lifetime",
            "[auth]\nnonce_lifetime = 0\n",
            2,
            1,
            "auth.nonce_lifetime",
            "at least 1",
        ),
        (
            "min above max",
            "[policy]\nmin_expires = 600\nmax_expires = 300\n",
            2,
            1,
            "policy.min_expires",
            "must be at most policy.max_expires (300)",
        ),
        (
            "min above default",
            "[policy]\nmin_expires = 3600\ndefault_expires = 1800\n",
            2,
            1,
            "policy.min_expires",
            "must be at most policy.default_expires (1800)",
        ),
        (
            "default below the default min",
            "[policy]\ndefault_expires = 30\n",
            2,
            1,
            "policy.default_expires",
            "must be at least policy.min_expires (60)",
        ),
        (
            "default above max",
            "[policy]\nmax_expires = 600\ndefault_expires = 1200\n",
            3,
            1,
            "policy.default_expires",
            "must be at most policy.max_expires (600)",
        ),
        (
            "max below the default default",
            "[policy]\nmax_expires = 600\n",
            2,
            1,
            "policy.max_expires",
            "must be at least policy.default_expires (3600)",
        ),
        (
            "min above one hour",
            "[policy]\nmin_expires = 7200\ndefault_expires = 7200\n",
            2,
            1,
            "policy.min_expires",
            "at most 3600",
        ),
        (
            "no contacts",
            "[policy]\nmax_contacts = 0\n",
            2,
            1,
            "policy.max_contacts",
            "at least 1",
        ),
        (
            "contact policy value",
            "[policy]\ncontact_policy = \"replace_oldest\"\n",
            2,
            18,
            "policy.contact_policy",
            "unknown variant `replace_oldest`, expected `reject` or `replace-oldest`",
        ),
        (
            "domain that is no host",
            "[[domain]]\nname = \"exa mple.com\"\n",
            2,
            1,
            "domain[0].name",
            "not a host name",
        ),
        (
            "domain twice",
            "[[domain]]\nname = \"example.com\"\n[[domain]]\nname = \"EXAMPLE.com\"\n",
            4,
            1,
            "domain[1].name",
            "served twice",
        ),
        (
            "realm with a quote",
            "[[domain]]\nname = \"example.com\"\nrealm = \"a\\\"b\"\n",
            3,
            1,
            "domain[0].realm",
            "quotes",
        ),
        (
            "stream message above the parser's",
            "[tcp]\nmax_message = 70000\n",
            2,
            1,
            "tcp.max_message",
            "at most limits.max_message (65535)",
        ),
        (
            "line above message",
            "[limits]\nmax_message = 2048\nmax_line = 4096\n",
            3,
            1,
            "limits.max_line",
            "at most limits.max_message (2048)",
        ),
        (
            "tiny message limit",
            "[limits]\nmax_message = 100\n",
            2,
            1,
            "limits.max_message",
            "at least 1024",
        ),
        (
            "keep-alive mode",
            "[nat]\nkeepalive = \"behind-nat\"\n",
            2,
            13,
            "nat.keepalive",
            "unknown variant `behind-nat`, expected one of `off`, `nat`, `all`",
        ),
        (
            "keep-alive interval of hours",
            "[nat]\nkeepalive_interval = 7200\n",
            2,
            1,
            "nat.keepalive_interval",
            "at most 3600 seconds",
        ),
        (
            "keep-alive timeout of days",
            "[nat]\nkeepalive_timeout = 172800\n",
            2,
            1,
            "nat.keepalive_timeout",
            "at most 86400 seconds",
        ),
        (
            "keep-alive timeout within one interval",
            "[nat]\nkeepalive_interval = 30\nkeepalive_timeout = 45\n",
            3,
            1,
            "nat.keepalive_timeout",
            "at least twice nat.keepalive_interval (30)",
        ),
        (
            "keep-alive interval above half the default timeout",
            "[nat]\nkeepalive_interval = 90\n",
            2,
            1,
            "nat.keepalive_interval",
            "at most half of nat.keepalive_timeout (120)",
        ),
        (
            "unknown key in nat",
            "[nat]\nnatping_interval = 30\n",
            2,
            1,
            "nat.natping_interval",
            "unknown field `natping_interval`",
        ),
        (
            "syntax error",
            "[policy]\nmin_expires = = 60\n",
            2,
            15,
            "",
            "",
        ),
        (
            "key defined twice",
            "[policy]\nmin_expires = 60\nmin_expires = 90\n",
            3,
            1,
            "",
            "duplicate key `min_expires`",
        ),
    ];

    #[test]
    fn errors_name_the_key_and_line() {
        let mut wrong = Vec::new();
        for &(what, text, line, column, key, fragment) in BAD {
            match File::parse(text) {
                Ok(_) => wrong.push(format!("{what}: parsed")),
                Err(e)
                    if (e.line, e.column, e.key.as_str()) != (line, column, key)
                        || !e.message.contains(fragment)
                        || e.message.contains('\n') =>
                {
                    wrong.push(format!("{what}: {e:?}"));
                }
                Err(_) => {}
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn display_is_line_column_key_message() {
        let e =
            File::parse("[policy]\n  min_expires = 4000\n  default_expires = 3600\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "2:3: policy.min_expires: must be at most 3600 (RFC 3261 10.3: a registrar rejects \
             only intervals below one hour)"
        );
        let e =
            File::parse("[policy]\n  min_expires = 3000\n  default_expires = 2000\n").unwrap_err();
        assert_eq!(
            format!("sipreg.toml:{e}"),
            "sipreg.toml:2:3: policy.min_expires: must be at most policy.default_expires (2000)"
        );
    }

    #[test]
    fn keep_alive_off_takes_any_timeout() {
        for text in [
            "[nat]\nkeepalive = \"off\"\nkeepalive_timeout = 10\n",
            "[nat]\nkeepalive_interval = 0\nkeepalive_timeout = 10\n",
            "[nat]\nkeepalive_interval = 60\nkeepalive_timeout = 0\n",
        ] {
            assert!(File::parse(text).is_ok(), "{text}");
        }
        let file = File::parse("[nat]\nkeepalive_interval = 5\nkeepalive_timeout = 10\n").unwrap();
        let k = file.registrar_config(&[]).keepalive;
        assert_eq!((k.mode, k.interval, k.timeout), (KeepaliveMode::Nat, 5, 10));
    }

    #[test]
    fn tcp_message_follows_a_lowered_limit() {
        let file = File::parse("[limits]\nmax_message = 4096\nmax_line = 1024\n").unwrap();
        assert_eq!(file.tcp().max_message, 4096);
    }

    #[test]
    fn listener_syntax() {
        for (spec, want) in [
            ("0.0.0.0:5060", "udp:0.0.0.0:5060"),
            ("udp:[::1]:5070", "udp:[::1]:5070"),
            ("tcp:127.0.0.1:5060", "tcp:127.0.0.1:5060"),
        ] {
            assert_eq!(spec.parse::<Listener>().unwrap().to_string(), want);
        }
        for spec in [
            "",
            "udp:",
            "sctp:0.0.0.0:5060",
            "tcp:localhost:5060",
            "[::1]",
        ] {
            assert!(spec.parse::<Listener>().is_err(), "{spec}");
        }
    }

    #[test]
    fn line_and_column_count_characters() {
        let text = "a\nbé c\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 2), (2, 1));
        // "é" is two bytes, one column.
        assert_eq!(line_column(text, 5), (2, 3));
        assert_eq!(line_column(text, 6), (2, 4));
        assert_eq!(line_column(text, 100), (3, 1));
        // Inside a multi-byte character: its start.
        assert_eq!(line_column(text, 4), (2, 2));
    }
}
