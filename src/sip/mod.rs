//! SIP syntax: framing, typed header access and response writing (RFC 3261 section 25 grammar).
//!
//! Pure functions over borrowed bytes: no I/O, no clock, no heap allocation on the hot path.
//! Parsing a datagram fills caller-provided header storage with slices of the received buffer:
//!
//! ```
//! use sipreg::sip;
//! let bytes = b"OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
//! From: <sip:a@example.com>;tag=1\r\nTo: <sip:example.com>\r\nCall-ID: x\r\n\
//! CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
//! let mut storage = [sip::Header::EMPTY; 32];
//! let sip::Message::Request(req) = sip::parse_datagram(bytes, &mut storage, &sip::Limits::default())?
//! else { unreachable!() };
//! let essentials = sip::check_request(&req)?;
//! assert_eq!(essentials.cseq.number, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What to do with a message is the business of the layers above; this module only says what the
//! message is, or which defect it has and which status code RFC 3261 gives that defect.

pub mod addr;
pub mod auth;
pub mod chars;
pub mod check;
pub mod error;
pub mod header;
pub mod message;
pub mod params;
pub mod typed;
pub mod uri;
pub mod via;
pub mod write;

pub use addr::{Contact, NameAddr};
pub use auth::{Credentials, DigestResponse, Quoted};
pub use check::{Essentials, check_request, unsupported_requires};
pub use error::{Disposition, Error, ErrorKind};
pub use header::{Header, HeaderName};
pub use message::{
    Headers, Limits, Message, Method, Request, Response, Status, parse_datagram, parse_stream,
    salvage,
};
pub use params::{Param, Params};
pub use typed::{CSeq, Contacts};
pub use uri::{Escaped, Host, SipUri, Uri};
pub use via::{Rport, Transport, Via};
pub use write::{Challenge, ChallengeLines, DateCache, Overflow, ResponseBuilder, Trailer, Writer};

/// Test inputs shared by the framer's and the writer's property tests.
#[cfg(test)]
pub(crate) mod testing {
    /// Applies one random edit to a message: the byte at `at` (modulo the length) overwritten by
    /// `byte`, `byte` inserted before it, or it removed, as `how` (modulo 3) says.
    pub(crate) fn edit(msg: &mut Vec<u8>, edit: Option<(usize, u8, u8)>) {
        let Some((at, byte, how)) = edit else {
            return;
        };
        if msg.is_empty() {
            msg.push(byte);
            return;
        }
        let at = at % msg.len();
        match how % 3 {
            0 => msg[at] = byte,
            1 => msg.insert(at, byte),
            _ => {
                msg.remove(at);
            }
        }
    }
}
