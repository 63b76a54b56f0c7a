//! Runs one operation N times, for `valgrind --tool=callgrind` instruction counts that do not
//! drift with machine load. Run it twice (N and 0) and divide the difference by N:
//!
//! ```sh
//! cargo bench --bench instructions --no-run
//! valgrind --tool=callgrind target/release/deps/instructions-* parse_frame 10000
//! ```
//!
//! Operations: `parse_frame`, `parse_typed`, `parse_typed_auth`, `rsip_frame` (rsip parsing the
//! same REGISTER, for the ratio), `write_401`, `write_200`,
//! `core_401`, `core_register_auth` (at most 10,000 for the latter: its requests are prepared
//! before the loop, 10,000 whatever N is, so that the N=0 run subtracts their cost).

use std::hint::black_box;
use std::net::SocketAddr;

use sipreg::sip::{self, Header, Limits, Message};

mod common;
use common::{NOW_MS, REGISTER, REGISTER_AUTH, nonce, peer, register, registrar, settle};

const PREPARED: u32 = 10_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(op), Some(n)) = (args.next(), args.next().and_then(|n| n.parse::<u64>().ok())) else {
        // `cargo bench` runs every bench target with its own flags; nothing to do then.
        return;
    };
    let source: SocketAddr = "192.0.2.14:5060".parse().expect("literal address");
    let mut out = [0u8; 2048];
    let mut storage = [Header::EMPTY; 32];
    let Ok(Message::Request(req)) = sip::parse_datagram(REGISTER, &mut storage, &Limits::default())
    else {
        panic!("bench input must parse")
    };
    // The registrar writes from the fields it already checked, as here.
    let checked = sip::check_request(&req).expect("bench input passes the checks");
    let mut reg = registrar();
    let challenge = register(1, None);
    let mut prepared = Vec::new();
    if op == "core_register_auth" {
        let nonce = nonce(&mut reg);
        prepared = (2..PREPARED + 2)
            .map(|i| register(i, Some((&nonce, i - 1))))
            .collect();
        assert!(n <= u64::from(PREPARED), "at most {PREPARED} for {op}");
    }
    let mut sink = 0usize;
    for i in 0..n {
        sink += match op.as_str() {
            "parse_frame" => {
                let mut storage = [Header::EMPTY; 32];
                sip::parse_datagram(black_box(REGISTER), &mut storage, &Limits::default())
                    .map_or(0, |m| m.headers().lines.len())
            }
            "parse_typed" => common::typed(black_box(REGISTER)),
            "rsip_frame" => rsip::SipMessage::try_from(black_box(REGISTER))
                .map_or(0, |m| rsip::message::HasHeaders::headers(&m).iter().count()),
            "parse_typed_auth" => common::typed(black_box(REGISTER_AUTH)),
            "write_401" => common::write_401(&mut out, black_box(&req.headers), &checked, source),
            "write_200" => common::write_200(&mut out, black_box(&req.headers), &checked, source),
            "core_401" => reg
                .handle(NOW_MS, peer(), black_box(&challenge), &mut out)
                .unwrap_or(0),
            "core_register_auth" => {
                let msg = prepared
                    .get(i as usize)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let len = reg.handle(NOW_MS, peer(), black_box(msg), &mut out);
                settle(&mut reg);
                assert!(
                    out.starts_with(b"SIP/2.0 200"),
                    "measured path must be the 200"
                );
                len.unwrap_or(0)
            }
            other => panic!("unknown operation {other}"),
        };
    }
    println!("{sink}");
}
