//! The ctl socket's wire protocol: frames of a 4-byte big-endian length followed by that
//! many bytes of JSON, in both directions, on a Unix stream socket.
//!
//! - On connecting, the server sends one [`ServerMessage::Hello`] (the hostname, for the
//!   prompt), or [`ServerMessage::Refused`] and closes when the peer's credentials are not
//!   allowed.
//! - The client sends [`Request`]s (`{"command": "sh cr isa sa", "json": false}`); each
//!   gets exactly one [`ServerMessage::Reply`] (`{"type": "reply", "exit_code": 0,
//!   "output": "..."}`), in order.
//! - After `debug crypto ...` the server may push [`ServerMessage::Monitor`] lines to that
//!   session at any time, between replies (never inside one), like IOS's `terminal
//!   monitor`. A client that only runs one command may ignore them.
//!
//! JSON keeps the protocol readable with `socat` and lets any language drive it; lengths
//! keep it unambiguous without escaping newlines.

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Where `ipsec-ctl` looks for the socket by default: the configuration's default for
/// `[ctl] socket` (a test keeps the two equal).
pub const DEFAULT_SOCKET: &str = "/run/ipsec-gateway/ctl.sock";

/// The protocol version in [`ServerMessage::Hello`].
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest request the server reads: a command line is short.
pub const MAX_REQUEST: usize = 64 * 1024;

/// The largest frame the client reads: the output of `show crypto ipsec sa` for tens of
/// thousands of tunnels.
pub const MAX_REPLY: usize = 256 << 20;

/// Exit codes, the same in [`ServerMessage::Reply`] and for `ipsec-ctl` itself.
pub mod exit {
    /// The command ran.
    pub const OK: i32 = 0;
    /// `% Invalid input`, `% Ambiguous command`, `% Incomplete command`.
    pub const SYNTAX: i32 = 1;
    /// The command was understood but failed (the backend's `% reason`).
    pub const FAILED: i32 = 2;
    /// The peer's credentials are not allowed on the socket.
    pub const REFUSED: i32 = 3;
    /// A malformed request (bad length, bad JSON).
    pub const PROTOCOL: i32 = 4;
    /// `ipsec-ctl` could not reach the server.
    pub const UNREACHABLE: i32 = 5;
}

/// One command for the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The command line, abbreviated or not (`sh cr isa sa`).
    pub command: String,
    /// Ask for the JSON of the views instead of IOS's text (show commands); other commands
    /// answer `{"message": ...}`, and errors `{"error": ...}`.
    #[serde(default)]
    pub json: bool,
}

/// What the server sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The first frame of an accepted connection.
    Hello { hostname: String, version: u32 },
    /// The connection is not allowed; the server closes it after this frame.
    Refused { reason: String },
    /// The answer to one request.
    Reply { exit_code: i32, output: String },
    /// A line of a debug trace this session turned on (no trailing newline).
    Monitor { line: String },
}

/// A frame: the length, then the JSON of `msg`.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let body = serde_json::to_vec(msg).expect("protocol messages always serialise");
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// A frame announced a length over the reader's limit: the stream cannot be resynchronised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameTooLarge(pub usize);

/// Bytes read from a non-blocking stream, cut into frames as they complete.
#[derive(Debug)]
pub struct FrameBuffer {
    buf: Vec<u8>,
    max: usize,
}

impl FrameBuffer {
    pub fn new(max: usize) -> FrameBuffer {
        FrameBuffer {
            buf: Vec::new(),
            max,
        }
    }

    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame's body, None until one is complete.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameTooLarge> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len > self.max {
            return Err(FrameTooLarge(len));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let body = self.buf[4..4 + len].to_vec();
        self.buf.drain(..4 + len);
        Ok(Some(body))
    }
}

/// Writes one frame (blocking), for the client.
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    w.write_all(&encode(msg))?;
    w.flush()
}

/// Reads one frame (blocking), for the client. A frame over `max` or that is not the
/// expected JSON is an `InvalidData` error.
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read, max: usize) -> io::Result<T> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the limit of {max}"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    serde_json::from_slice(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_split_anywhere() {
        let req = Request {
            command: "sh cr isa sa".into(),
            json: true,
        };
        let mut bytes = encode(&req);
        bytes.extend(encode(&Request {
            command: "reload".into(),
            json: false,
        }));
        for cut in 0..bytes.len() {
            let mut fb = FrameBuffer::new(MAX_REQUEST);
            fb.extend(&bytes[..cut]);
            let mut got = Vec::new();
            while let Some(f) = fb.next_frame().unwrap() {
                got.push(f);
            }
            fb.extend(&bytes[cut..]);
            while let Some(f) = fb.next_frame().unwrap() {
                got.push(f);
            }
            assert_eq!(got.len(), 2, "cut at {cut}");
            let first: Request = serde_json::from_slice(&got[0]).unwrap();
            assert_eq!(first, req);
        }
    }

    /// The client's default is the configuration's default.
    #[test]
    fn default_socket_is_the_config_default() {
        let text = include_str!("../../../examples/secgw-peer.toml");
        assert!(
            !text.contains("[ctl]"),
            "the example must leave the default"
        );
        let cfg = crate::config::IkeConfig::parse("secgw-peer.toml", text).unwrap();
        assert_eq!(cfg.ctl_socket, std::path::Path::new(DEFAULT_SOCKET));
    }

    #[test]
    fn oversized_frame_refused() {
        let mut fb = FrameBuffer::new(16);
        fb.extend(&1000u32.to_be_bytes());
        assert_eq!(fb.next_frame(), Err(FrameTooLarge(1000)));
        let mut r = &1000u32.to_be_bytes()[..];
        assert!(read_frame::<Request>(&mut r, 16).is_err());
    }

    #[test]
    fn wire_shapes() {
        let reply = ServerMessage::Reply {
            exit_code: 0,
            output: "x\n".into(),
        };
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"type":"reply","exit_code":0,"output":"x\n"}"#
        );
        // `json` may be left out.
        let r: Request = serde_json::from_str(r#"{"command":"reload"}"#).unwrap();
        assert!(!r.json);
        let mut buf = Vec::new();
        write_frame(&mut buf, &reply).unwrap();
        let back: ServerMessage = read_frame(&mut &buf[..], MAX_REPLY).unwrap();
        assert_eq!(back, reply);
    }
}
