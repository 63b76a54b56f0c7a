//! sipreg-loadgen: a SIP REGISTER load generator over UDP, and the pieces its binaries share.
//!
//! - [`pattern`]: user names and passwords from printf-style patterns (`u%06d`), the registrar's
//!   own ([`sipreg::auth::pattern`]), so that `sipreg user add --pattern` creates these users.
//! - [`digest`]: the client side of digest authentication: reading a 401's challenges, choosing
//!   the strongest algorithm, nonce-count bookkeeping and the Authorization header, computed with
//!   `sipreg::auth` so the client computes exactly what the registrar verifies.
//! - [`message`]: the REGISTER requests a user agent sends.
//! - [`net`]: batched datagram I/O (`recvmmsg`/`sendmmsg`, epoll); the only unsafe code.
//! - [`engine`]: many user agents per socket, open and closed loop, RFC 3261 17.1.2 timers.
//! - [`summary`]: counts and latency percentiles as JSON.
//! - [`plot`]: latency against offered load from several summaries, as a PNG.
//!
//! What it does not do: TCP, INVITE, or anything beyond registering, refreshing and removing a
//! binding.

pub mod digest;
pub mod engine;
pub mod message;
pub mod net;
pub use sipreg::auth::pattern;
pub mod plot;
pub mod summary;
