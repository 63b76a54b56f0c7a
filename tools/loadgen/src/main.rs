//! `sipreg-loadgen`: registers many simulated phones with a SIP registrar over UDP and reports
//! counts and latencies; `users` prints a matching credentials file; `plot` draws summaries.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use sipreg::auth::{Algorithm, Ha1, file};
use sipreg_loadgen::engine::{self, Config, Load};
use sipreg_loadgen::pattern::Pattern;
use sipreg_loadgen::summary::Summary;
use sipreg_loadgen::{net, plot};

#[derive(Parser)]
#[command(
    name = "sipreg-loadgen",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Print a sipreg credentials file (user realm ALGORITHM HA1) for patterned users.
    Users(UsersArgs),
    /// Draw p50 and p99 registration latency against offered load from JSON summaries (PNG).
    Plot(PlotArgs),
}

#[derive(Args)]
struct UsersArgs {
    #[arg(long, default_value = "u%06d")]
    user_pattern: String,
    #[arg(long, default_value = "p%06d")]
    password_pattern: String,
    /// How many users: indices FIRST..FIRST+COUNT.
    #[arg(long)]
    count: u64,
    #[arg(long, default_value_t = 0)]
    first: u64,
    #[arg(long)]
    realm: String,
    /// Algorithms to write a line for, comma-separated (MD5, SHA-256, SHA-512-256).
    #[arg(long, default_value = "MD5,SHA-256,SHA-512-256")]
    algorithms: String,
}

#[derive(Args)]
struct PlotArgs {
    #[arg(long)]
    out: PathBuf,
    /// Summaries written by runs with --json (and --label).
    #[arg(required = true)]
    json: Vec<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    /// The registrar (or sipreg-udp-echo) to load.
    #[arg(long, default_value = "127.0.0.1:5060")]
    target: SocketAddr,
    /// Source addresses: a range `127.0.0.2-127.0.0.41` or a comma-separated list.
    #[arg(long, default_value = "127.0.0.1")]
    sources: String,
    /// Sockets (ephemeral ports) per source address.
    #[arg(long, default_value_t = 1)]
    ports_per_source: usize,
    /// Sender/receiver threads; each owns a share of the sockets and user agents.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Simulated user agents (user FIRST-USER .. FIRST-USER+USERS).
    #[arg(long, default_value_t = 1000)]
    users: u64,
    #[arg(long, default_value_t = 0)]
    first_user: u64,
    #[arg(long, default_value = "u%06d")]
    user_pattern: String,
    #[arg(long, default_value = "p%06d")]
    password_pattern: String,
    #[arg(long, default_value = "example.com")]
    domain: String,
    /// Digest algorithms the phones support; the strongest offered is used.
    #[arg(long, default_value = "MD5,SHA-256,SHA-512-256")]
    algorithms: String,
    /// The server does not challenge: a 200 is expected at once.
    #[arg(long)]
    no_auth: bool,
    /// Open loop: registrations started per second.
    #[arg(long, conflicts_with = "concurrency")]
    rate: Option<f64>,
    /// Open loop: reach --rate linearly over this many seconds.
    #[arg(long, default_value_t = 0.0, requires = "rate")]
    ramp: f64,
    /// Closed loop: transactions outstanding.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Stop starting registrations after this many seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Stop after offering this many registrations (refreshes once every user registered).
    #[arg(long)]
    count: Option<u64>,
    /// Expires of each registration, seconds.
    #[arg(long, default_value_t = 3600)]
    expires: u32,
    /// At the end, remove every binding made (Expires: 0).
    #[arg(long)]
    unregister: bool,
    /// RFC 3261 T1 (first retransmission interval); timer F is 64*T1.
    #[arg(long, default_value_t = 500)]
    t1_ms: u64,
    /// RFC 3261 T2 (largest retransmission interval).
    #[arg(long, default_value_t = 4000)]
    t2_ms: u64,
    /// Datagrams per recvmmsg/sendmmsg call.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Poll the sockets without sleeping: a core per thread, for latencies without scheduler
    /// wake-ups in them.
    #[arg(long)]
    busy_poll: bool,
    /// Kernel floor: against sipreg-udp-echo, the request coming back is its answer.
    #[arg(long)]
    echo: bool,
    /// Write the JSON summary here instead of standard output.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Names the server or setup in the summary and in plots.
    #[arg(long, default_value = "")]
    label: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Users(a)) => users(&a),
        Some(Command::Plot(a)) => plot_cmd(&a),
        None => run(&cli.run),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sipreg-loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

type Res = Result<ExitCode, Box<dyn std::error::Error>>;

fn algorithms(list: &str) -> Result<Vec<Algorithm>, String> {
    list.split(',')
        .map(|t| {
            Algorithm::from_token(t.trim().as_bytes()).ok_or(format!("unknown algorithm {t:?}"))
        })
        .collect()
}

fn users(a: &UsersArgs) -> Res {
    let users = Pattern::parse(&a.user_pattern)?;
    let passwords = Pattern::parse(&a.password_pattern)?;
    let algs = algorithms(&a.algorithms)?;
    if !file::is_storable(&a.realm) {
        return Err(format!("realm {:?} cannot be stored in a credentials file", a.realm).into());
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut entries = Vec::with_capacity(algs.len());
    use std::io::Write;
    // The header line once, then the lines in chunks, so millions of users stream out.
    let header = file::format(&[]);
    out.write_all(header.as_bytes())?;
    for i in a.first..a.first + a.count {
        let user = users.format(i);
        if !file::is_storable(&user) {
            return Err(
                format!("user name {user:?} cannot be stored in a credentials file").into(),
            );
        }
        let password = passwords.format(i);
        entries.clear();
        for &alg in &algs {
            entries.push(file::Entry {
                ha1: Ha1::from_password(
                    alg,
                    user.as_bytes(),
                    a.realm.as_bytes(),
                    password.as_bytes(),
                ),
                user: user.clone(),
                realm: a.realm.clone(),
            });
        }
        let text = file::format(&entries);
        out.write_all(text.get(header.len()..).unwrap_or_default().as_bytes())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn plot_cmd(a: &PlotArgs) -> Res {
    let mut summaries = Vec::new();
    for p in &a.json {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let s: Summary =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        summaries.push(s);
    }
    plot::draw(&summaries, &a.out)?;
    Ok(ExitCode::SUCCESS)
}

fn sources(text: &str) -> Result<Vec<IpAddr>, String> {
    if let Some((a, b)) = text.split_once('-') {
        let (a, b): (IpAddr, IpAddr) = (
            a.trim().parse().map_err(|e| format!("{a}: {e}"))?,
            b.trim().parse().map_err(|e| format!("{b}: {e}"))?,
        );
        let (IpAddr::V4(a), IpAddr::V4(b)) = (a, b) else {
            return Err("address ranges are IPv4 only; list IPv6 sources with commas".into());
        };
        let (a, b) = (u32::from(a), u32::from(b));
        if b < a || b - a > 1 << 20 {
            return Err(format!("bad range {text}"));
        }
        return Ok((a..=b).map(|x| IpAddr::V4(x.into())).collect());
    }
    text.split(',')
        .map(|s| s.trim().parse().map_err(|e| format!("{s}: {e}")))
        .collect()
}

fn run(a: &RunArgs) -> Res {
    if a.duration.is_none() && a.count.is_none() {
        return Err("bound the run with --duration SECS and/or --count N".into());
    }
    let load = match (a.rate, a.concurrency) {
        (Some(r), _) if r > 0.0 => Load::Rate {
            per_s: r,
            ramp: Duration::from_secs_f64(a.ramp.max(0.0)),
        },
        (None, Some(n)) if n > 0 => Load::Concurrency(n),
        _ => return Err("give --rate R (open loop) or --concurrency N (closed loop)".into()),
    };
    let cfg = Config {
        target: a.target,
        sources: sources(&a.sources)?,
        ports_per_source: a.ports_per_source.max(1),
        threads: a.threads.max(1),
        users: a.users,
        first_user: a.first_user,
        user_pattern: Pattern::parse(&a.user_pattern)?,
        password_pattern: Pattern::parse(&a.password_pattern)?,
        domain: a.domain.clone(),
        algorithms: algorithms(&a.algorithms)?,
        auth: !a.no_auth,
        load,
        duration: a.duration.map(Duration::from_secs_f64),
        count: a.count,
        expires: a.expires,
        unregister: a.unregister,
        t1: Duration::from_millis(a.t1_ms.max(1)),
        t2: Duration::from_millis(a.t2_ms.max(a.t1_ms).max(1)),
        batch: a.batch.clamp(1, 1024),
        echo: a.echo,
        progress: net::stderr_is_tty(),
        busy_poll: a.busy_poll,
    };
    let config = serde_json::json!({
        "target": a.target.to_string(),
        "sources": a.sources,
        "ports_per_source": cfg.ports_per_source,
        "threads": cfg.threads,
        "users": a.users,
        "first_user": a.first_user,
        "user_pattern": a.user_pattern,
        "domain": a.domain,
        "algorithms": a.algorithms,
        "auth": cfg.auth,
        "rate": a.rate,
        "ramp": a.ramp,
        "concurrency": a.concurrency,
        "duration": a.duration,
        "count": a.count,
        "expires": a.expires,
        "unregister": a.unregister,
        "t1_ms": a.t1_ms,
        "t2_ms": a.t2_ms,
        "batch": cfg.batch,
        "echo": a.echo,
        "busy_poll": a.busy_poll,
    });
    let outcome = engine::run(&cfg)?;
    let summary = Summary::new(
        a.label.clone(),
        config,
        outcome.measured.as_secs_f64(),
        net::process_cpu().as_secs_f64(),
        a.rate,
        &outcome.stats,
    );
    let text = serde_json::to_string_pretty(&summary)?;
    match &a.json {
        Some(p) => std::fs::write(p, text + "\n")?,
        None => println!("{text}"),
    }
    let s = &outcome.stats;
    Ok(if s.failed() == 0 && s.timeouts == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
