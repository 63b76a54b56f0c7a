//! Parse and write speed of the SIP layer, with rsip (a published Rust SIP parser) parsing the
//! same bytes side by side in the same run.
//!
//! Two levels are measured for both parsers:
//! - `frame`: split the message into start line, headers and body (rsip: `SipMessage::try_from`);
//! - `typed`: frame, then parse what a registrar reads (Request-URI, Via, From, To, Call-ID,
//!   CSeq, Contact, Expires, and Authorization when present).
//!
//! Run: `cargo bench --bench parse`. Results and the ratio go to perf/RESULTS.md.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rsip::prelude::*;
use sipreg::sip::{self, Header, Limits, Message};

mod common;
use common::{REGISTER, REGISTER_AUTH};

fn ours_frame(bytes: &[u8]) -> usize {
    let mut storage = [Header::EMPTY; 32];
    match sip::parse_datagram(bytes, &mut storage, &Limits::default()) {
        Ok(m) => m.headers().lines.len(),
        Err(_) => 0,
    }
}

fn rsip_frame(bytes: &[u8]) -> usize {
    match rsip::SipMessage::try_from(bytes) {
        Ok(m) => m.headers().iter().count(),
        Err(_) => 0,
    }
}

fn rsip_typed(bytes: &[u8]) -> usize {
    let Ok(rsip::SipMessage::Request(req)) = rsip::SipMessage::try_from(bytes) else {
        return 0;
    };
    // The same fields as `ours_typed`, read without formatting anything back to text.
    let mut n = usize::from(req.uri.host_with_port.port.is_some());
    if let Ok(v) = req.via_header().and_then(|h| h.typed()) {
        n += v.params.len();
    }
    if let Ok(f) = req.from_header().and_then(|h| h.typed()) {
        n += f.params.len();
    }
    if let Ok(t) = req.to_header().and_then(|h| h.typed()) {
        n += t.params.len();
    }
    n += req.call_id_header().map_or(0, |c| c.value().len());
    if let Ok(c) = req.cseq_header().and_then(|h| h.typed()) {
        n += c.seq as usize;
    }
    for c in req.contact_headers() {
        if let Ok(c) = c.typed() {
            n += c.params.len();
        }
    }
    if let Some(e) = req.expires_header() {
        n += e.value().len();
    }
    if let Some(a) = req.authorization_header()
        && let Ok(a) = a.typed()
    {
        n += a.response.len();
    }
    n
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (name, bytes) in [("register", REGISTER), ("register_auth", REGISTER_AUTH)] {
        assert!(
            common::typed(bytes) > 0 && rsip_typed(bytes) > 0,
            "{name} must parse"
        );
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("sipreg_frame/{name}"), |b| {
            b.iter(|| ours_frame(black_box(bytes)))
        });
        g.bench_function(format!("rsip_frame/{name}"), |b| {
            b.iter(|| rsip_frame(black_box(bytes)))
        });
        g.bench_function(format!("sipreg_typed/{name}"), |b| {
            b.iter(|| common::typed(black_box(bytes)))
        });
        g.bench_function(format!("rsip_typed/{name}"), |b| {
            b.iter(|| rsip_typed(black_box(bytes)))
        });
    }
    g.finish();
}

fn write(c: &mut Criterion) {
    let source: SocketAddr = "192.0.2.14:5060".parse().unwrap();
    let mut storage = [Header::EMPTY; 32];
    let Ok(Message::Request(req)) = sip::parse_datagram(REGISTER, &mut storage, &Limits::default())
    else {
        panic!("bench input must parse")
    };
    // The registrar writes from the fields it already checked, as here.
    let checked = sip::check_request(&req).expect("bench input passes the checks");
    let mut out = [0u8; 2048];
    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Elements(1));
    g.bench_function("401", |b| {
        b.iter(|| common::write_401(&mut out, black_box(&req.headers), &checked, source))
    });
    g.bench_function("200", |b| {
        b.iter(|| common::write_200(&mut out, black_box(&req.headers), &checked, source))
    });
    g.finish();
}

criterion_group!(benches, parse, write);
criterion_main!(benches);
