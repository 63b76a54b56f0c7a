//! The registrar element: what sipreg does with a request once its bytes have arrived.
//!
//! Sans-I/O: functions here take the received bytes, the source address and `now`, and produce
//! the bytes of the answer. [`screen`] applies the checks every request passes before any element
//! logic (RFC 3261 8.2) and writes rejections.

pub mod screen;
