//! The `sipreg` command: parses the command line, opens the sockets and runs the element.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::{Parser, Subcommand};

use sipreg::io;
use sipreg::registrar::{Config, Peer, Registrar};
use sipreg::sip::Transport;

/// The registrar behind the UDP loop.
struct Udp(Registrar);

impl io::Element for Udp {
    fn on_datagram(&mut self, d: io::Datagram<'_>, out: &mut [u8]) -> Option<usize> {
        let peer = Peer {
            source: d.source,
            transport: Transport::Udp,
            connection: None,
        };
        self.0.handle(d.now_ms, peer, d.bytes, out)
    }

    fn on_tick(&mut self, now_ms: u64) {
        self.0.tick(now_ms);
        // Nothing consumes the events yet (persistence and metrics come later); keep the queue
        // from growing.
        while self.0.poll_event().is_some() {}
    }
}

#[derive(Parser)]
#[command(name = "sipreg", version, about = "A carrier-grade SIP registrar")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registrar. With no options: UDP port 5060 on every IPv4 and IPv6 address, the
    /// local host name as domain and realm.
    Serve {
        /// Address to listen on, e.g. `0.0.0.0:5060`, `udp:[::1]:5070`. Repeatable.
        #[arg(long = "listen", value_name = "ADDR")]
        listen: Vec<String>,
        /// Domain served (also its digest realm). Repeatable.
        #[arg(long = "domain", value_name = "NAME")]
        domain: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { listen, domain } => match serve(&listen, &domain) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sipreg: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Parses `udp:ADDR` or `ADDR`; other transports are not served yet.
fn parse_listen(spec: &str) -> Result<SocketAddr, String> {
    let addr = match spec.split_once(':') {
        Some(("udp", rest)) => rest,
        Some(("tcp" | "tls", _)) => {
            return Err(format!(
                "--listen {spec}: only UDP is served so far; TCP arrives with the worker layer"
            ));
        }
        _ => spec,
    };
    addr.parse().map_err(|_| {
        format!("--listen {spec}: expected an address like 0.0.0.0:5060 or [::1]:5060")
    })
}

fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

fn serve(listen: &[String], domains: &[String]) -> Result<(), String> {
    let addrs: Vec<SocketAddr> = if listen.is_empty() {
        vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5060),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 5060),
        ]
    } else {
        listen
            .iter()
            .map(|s| parse_listen(s))
            .collect::<Result<_, _>>()?
    };
    let domains: Vec<String> = if domains.is_empty() {
        vec![local_host_name()]
    } else {
        domains.iter().map(|d| d.to_ascii_lowercase()).collect()
    };
    let mut sockets = Vec::new();
    for addr in &addrs {
        match io::bind_udp(*addr) {
            Ok(s) => sockets.push(s),
            // A host without IPv6 still serves IPv4 on defaults; an explicit address must work.
            Err(e) if listen.is_empty() && addr.is_ipv6() => {
                eprintln!("sipreg: not listening on {addr}: {e}");
            }
            Err(e) => return Err(format!("cannot listen on udp:{addr}: {e}")),
        }
    }
    let config = Config::with_domains(&domains);
    let registrar = Registrar::new(config, io::random_secret());
    for s in &sockets {
        if let Ok(a) = s.local_addr() {
            eprintln!("sipreg: listening on udp:{a}");
        }
    }
    eprintln!("sipreg: serving domains {}", domains.join(", "));
    let stop = Arc::new(AtomicBool::new(false));
    io::serve(sockets, &mut Udp(registrar), stop).map_err(|e| format!("poll loop failed: {e}"))
}
