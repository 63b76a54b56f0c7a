//! `sipreg-udp-echo`: sends every UDP datagram back to its sender, in batches of `recvmmsg` and
//! `sendmmsg`. The kernel floor for `sipreg-loadgen --echo`: no parsing, no state.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use sipreg_loadgen::net::{RecvBatch, SendBatch, bind_udp};

#[derive(Parser)]
#[command(name = "sipreg-udp-echo", version, about)]
struct Cli {
    /// Address to listen on (loopback for measurements).
    #[arg(long)]
    listen: SocketAddr,
    /// Datagrams per recvmmsg/sendmmsg call.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Exit after this many seconds (default: run until killed).
    #[arg(long)]
    duration: Option<f64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match serve(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sipreg-udp-echo: {e}");
            ExitCode::from(2)
        }
    }
}

fn serve(cli: &Cli) -> std::io::Result<()> {
    let sock = bind_udp(cli.listen, true)?;
    sock.set_nonblocking(false)?;
    // Wake up now and then so that --duration is honoured on an idle socket.
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    let fd = sock.as_raw_fd();
    let batch = cli.batch.clamp(1, 1024);
    let mut rx = RecvBatch::new(batch);
    let mut tx = SendBatch::default();
    let end = cli
        .duration
        .map(|d| Instant::now() + Duration::from_secs_f64(d));
    eprintln!("sipreg-udp-echo: listening on {}", sock.local_addr()?);
    while end.is_none_or(|e| Instant::now() < e) {
        let n = rx.recv(fd, true)?;
        for i in 0..n {
            if let Some((addr, len)) = rx.source(i) {
                tx.push_raw(rx.datagram(i), addr, len);
            }
        }
        tx.flush(fd, batch, |_| {});
    }
    Ok(())
}
