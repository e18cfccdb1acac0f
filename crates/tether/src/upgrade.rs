//! Sans-IO drivers for the opening handshake, shared by every adapter.
//!
//! Owns the buffering between "bytes arrived" and "the HTTP head is
//! complete", and the hand-over of the bytes after the head (the peer's first
//! frames) to the [`Connection`](crate::Connection). Adapters only move bytes:
//! write [`ClientUpgrade::request`], feed what they read to `receive` until it
//! returns the result, then build the connection and `receive` the leftover.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use tether_handshake::{
    Accepted, BuildError, ClientHandshake, Limits, Request, RequestError, ResponseError, Status,
};

/// Why an opening handshake did not complete.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The client's request could not be built (bad URL, header, ...).
    Build(BuildError),
    /// The server's answer was not an acceptable 101 (status, accept key,
    /// subprotocol...); the message names the likely cause.
    Response(ResponseError),
    /// The client's request was not an acceptable upgrade; the refusal to
    /// send is [`RequestError::response`].
    Request(RequestError),
    /// The transport ended before the head was complete.
    Eof {
        /// Which side we are.
        client: bool,
        /// Bytes received before the end.
        received: usize,
    },
    /// The handshake took longer than allowed.
    Timeout(core::time::Duration),
    /// The server accepted an extension this connection cannot run (none
    /// is built in yet): its frames would carry RSV bits we must reject.
    UnsupportedExtension(String),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Build(e) => write!(f, "cannot build the handshake request: {e}"),
            Self::Response(e) => write!(f, "WebSocket handshake refused: {e}"),
            Self::Request(e) => write!(f, "bad WebSocket upgrade request: {e}"),
            Self::Eof {
                client: true,
                received: 0,
            } => f.write_str(
                "the server closed the connection without answering the WebSocket handshake \
                 (is this a WebSocket endpoint? a TLS server expects wss://)",
            ),
            Self::Eof {
                client: true,
                received,
            } => write!(
                f,
                "the server closed the connection after {received} bytes, before the end of its handshake answer"
            ),
            Self::Eof {
                client: false,
                received,
            } => write!(
                f,
                "the client closed the connection after {received} bytes, before the end of its upgrade request"
            ),
            Self::Timeout(d) => write!(f, "the WebSocket handshake did not complete within {d:?}"),
            Self::UnsupportedExtension(name) => write!(
                f,
                "the server accepted the extension {name:?}, which tether cannot run yet: do not offer it"
            ),
        }
    }
}

impl std::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Build(e) => Some(e),
            Self::Response(e) => Some(e),
            Self::Request(e) => Some(e),
            _ => None,
        }
    }
}

/// The client side: the request to write, then the answer to check.
#[derive(Debug)]
pub struct ClientUpgrade {
    handshake: ClientHandshake,
    buf: Vec<u8>,
}

impl ClientUpgrade {
    /// Starts from a built request.
    pub fn new(handshake: ClientHandshake) -> Self {
        Self {
            handshake,
            buf: Vec::new(),
        }
    }

    /// The request bytes to write.
    pub fn request(&self) -> &[u8] {
        self.handshake.request_bytes()
    }

    /// The handshake (URL, key).
    pub fn handshake(&self) -> &ClientHandshake {
        &self.handshake
    }

    /// Feeds bytes read from the transport. Returns the accepted answer and
    /// the bytes that followed the head (frames for the connection) once the
    /// head is complete; `Ok(None)` while more is needed.
    ///
    /// # Errors
    /// [`HandshakeError::Response`] as soon as the answer cannot be a valid 101.
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<(Accepted, Vec<u8>)>, HandshakeError> {
        self.buf.extend_from_slice(data);
        match self
            .handshake
            .check_response(&self.buf)
            .map_err(HandshakeError::Response)?
        {
            Status::Complete(accepted, used) => {
                if let Some(ext) = accepted.extensions().first() {
                    return Err(HandshakeError::UnsupportedExtension(ext.name().into()));
                }
                Ok(Some((accepted, self.buf.split_off(used))))
            }
            Status::Partial => Ok(None),
        }
    }

    /// The transport ended before the answer was complete.
    pub fn eof(&self) -> HandshakeError {
        HandshakeError::Eof {
            client: true,
            received: self.buf.len(),
        }
    }
}

/// The server side: parse the request, then answer.
#[derive(Debug)]
pub struct ServerUpgrade {
    limits: Limits,
    buf: Vec<u8>,
}

impl ServerUpgrade {
    /// Starts with the head limits (size, header count).
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            buf: Vec::new(),
        }
    }

    /// Feeds bytes read from the transport. Returns the request and the
    /// bytes after its head once the head is complete.
    ///
    /// # Errors
    /// [`HandshakeError::Request`] as soon as the request cannot be a valid
    /// upgrade; write its `response()` before closing.
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<(Request, Vec<u8>)>, HandshakeError> {
        self.buf.extend_from_slice(data);
        match tether_handshake::parse_request(&self.buf, &self.limits)
            .map_err(HandshakeError::Request)?
        {
            Status::Complete(request, used) => Ok(Some((request, self.buf.split_off(used)))),
            Status::Partial => Ok(None),
        }
    }

    /// The transport ended before the request was complete.
    pub fn eof(&self) -> HandshakeError {
        HandshakeError::Eof {
            client: false,
            received: self.buf.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_handshake::{AcceptOptions, ClientConfig};

    #[test]
    fn rfc6455_4_frames_after_the_head_are_handed_on() {
        let hs = ClientHandshake::with_key("ws://h/x", ClientConfig::new(), [7; 16]).unwrap();
        let mut client = ClientUpgrade::new(hs);
        let mut server = ServerUpgrade::new(Limits::default());
        let mut req = client.request().to_vec();
        req.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
        assert!(server.receive(&req[..10]).unwrap().is_none());
        let (request, rest) = server.receive(&req[10..]).unwrap().unwrap();
        assert_eq!(rest, [0x81, 0x80, 1, 2, 3, 4]);
        let head = request.accept(&AcceptOptions::new()).unwrap();
        for b in &head[..head.len() - 1] {
            assert!(client.receive(&[*b]).unwrap().is_none());
        }
        let (_, rest) = client.receive(&[b'\n', 0x81, 0x00]).unwrap().unwrap();
        assert_eq!(rest, [0x81, 0x00]);
    }

    #[test]
    fn rfc6455_9_1_an_accepted_extension_we_cannot_run_is_refused() {
        use tether_handshake::Extension;
        let config = ClientConfig::new().extension(Extension::new("permessage-deflate"));
        let hs = ClientHandshake::with_key("ws://h/x", config, [7; 16]).unwrap();
        let mut client = ClientUpgrade::new(hs);
        let mut server = ServerUpgrade::new(Limits::default());
        let (request, _) = server.receive(client.request()).unwrap().unwrap();
        let answer = request
            .accept(&AcceptOptions::new().extension(Extension::new("permessage-deflate")))
            .unwrap();
        let err = client.receive(&answer).unwrap_err();
        assert!(
            matches!(err, HandshakeError::UnsupportedExtension(ref n) if n == "permessage-deflate")
        );
        assert!(err.to_string().contains("permessage-deflate"));
    }

    #[test]
    fn eof_before_answer_names_the_likely_cause() {
        let hs = ClientHandshake::with_key("ws://h/x", ClientConfig::new(), [7; 16]).unwrap();
        let client = ClientUpgrade::new(hs);
        assert!(client.eof().to_string().contains("wss://"));
    }
}
