//! sipreg: a SIP registrar built as a sans-I/O protocol core inside a thin I/O shell.
//!
//! - [`sip`]: message syntax. Parsing, typed header access and response writing over borrowed
//!   bytes; no I/O, no clock, no allocation on the hot path.
//! - [`auth`]: digest authentication: credentials, stateless nonces, nonce-count replay checks.
//! - [`config`]: the configuration file: TOML text in, checked settings out; no file access.
//! - [`location`]: the location shard: AOR to bindings, expiry timers, events.
//! - [`registrar`]: the element: screening, RFC 3261 10.3 REGISTER processing, OPTIONS.
//! - [`io`]: the shell: sockets, the poll loop, the clock; the only place that touches them.
//!
//! The I/O shell (sockets, threads, clock) drives these with received bytes and the time; see the
//! README for the architecture.
#![deny(unsafe_code)]

pub mod auth;
pub mod config;
pub mod io;
pub mod location;
pub mod persist;
pub mod registrar;
pub mod sip;
