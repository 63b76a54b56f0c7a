//! Messages shared by the benches: what a typical desk phone sends.
#![allow(dead_code)]

/// A REGISTER as a typical desk phone sends it.
pub const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.14:5060;branch=z9hG4bK-524287-1---0b41c7a6e2f1d8c3;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:u012345@192.0.2.14:5060;transport=udp>;expires=3600;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-0004f2a1b2c3>\";reg-id=1\r\n\
To: <sip:u012345@example.com>\r\n\
From: <sip:u012345@example.com>;tag=4b1c9a2e\r\n\
Call-ID: 7f1e3c2a9b8d4e6f0a1b2c3d4e5f6a7b@192.0.2.14\r\n\
CSeq: 2 REGISTER\r\n\
Expires: 3600\r\n\
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n\
Supported: replaces, path, outbound\r\n\
User-Agent: Polycom/6.4.3 VVX410\r\n\
Content-Length: 0\r\n\r\n";

/// The same REGISTER answering a challenge.
pub const REGISTER_AUTH: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.14:5060;branch=z9hG4bK-524287-1---5c7e9a1b3d2f4e6a;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:u012345@192.0.2.14:5060;transport=udp>;expires=3600;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-0004f2a1b2c3>\";reg-id=1\r\n\
To: <sip:u012345@example.com>\r\n\
From: <sip:u012345@example.com>;tag=4b1c9a2e\r\n\
Call-ID: 7f1e3c2a9b8d4e6f0a1b2c3d4e5f6a7b@192.0.2.14\r\n\
CSeq: 3 REGISTER\r\n\
Expires: 3600\r\n\
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n\
Supported: replaces, path, outbound\r\n\
User-Agent: Polycom/6.4.3 VVX410\r\n\
Authorization: Digest username=\"u012345\", realm=\"example.com\", nonce=\"AAAAAGcz4wABAAAAAAAAAQ8r2Yw7mF0aYb3xK1dQ\", uri=\"sip:example.com\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001, opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"\r\n\
Content-Length: 0\r\n\r\n";
