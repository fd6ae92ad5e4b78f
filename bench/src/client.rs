//! A minimal HTTP/1.1 keep-alive client: writes a prepared request, reads one response.
//!
//! The load generator runs on one core and must outrun a server on another; a general client
//! (hyper's) costs about as much per request as the server it measures, so the generator would
//! measure itself. This one sends bytes built in advance and reads only the status line, the
//! `Content-Length` and `Connection` headers and the body's length. It supports exactly what the
//! two servers answer (responses with `Content-Length`, no chunked bodies, one request in flight).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("unparsable response: {0}")]
    Protocol(&'static str),
}

/// One keep-alive connection.
pub struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// What came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The server said `Connection: close`: open a new connection for the next request.
    pub close: bool,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends `request` (a whole HTTP/1.1 request) and reads the response.
    pub async fn send(&mut self, request: &[u8]) -> Result<Response, ClientError> {
        self.stream.write_all(request).await?;
        self.buf.clear();
        let head_end = loop {
            if let Some(i) = find_head_end(&self.buf) {
                break i;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(ClientError::Protocol("response head too large"));
            }
            self.read_more().await?;
        };
        let (status, length, close) = parse_head(&self.buf[..head_end])?;
        let total = head_end + length;
        while self.buf.len() < total {
            self.read_more().await?;
        }
        if self.buf.len() > total {
            return Err(ClientError::Protocol("more bytes than one response"));
        }
        Ok(Response { status, close })
    }

    async fn read_more(&mut self) -> Result<(), ClientError> {
        let start = self.buf.len();
        self.buf.resize(start + 4096, 0);
        let n = self.stream.read(&mut self.buf[start..]).await?;
        self.buf.truncate(start + n);
        if n == 0 {
            return Err(ClientError::Closed);
        }
        Ok(())
    }
}

/// Index just past the blank line ending the head.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Status, body length and `Connection: close` of a response head.
fn parse_head(head: &[u8]) -> Result<(u16, usize, bool), ClientError> {
    let text = std::str::from_utf8(head).map_err(|_| ClientError::Protocol("head not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or(ClientError::Protocol("status line"))?;
    let mut length = None;
    let mut close = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse()
                    .map_err(|_| ClientError::Protocol("content-length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ClientError::Protocol("chunked bodies are not supported"));
        } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    // 204 and 304 have no body; anything else without a length would be read to the close.
    let length = match (status, length) {
        (204 | 304, _) => 0,
        (_, Some(n)) => n,
        (_, None) => return Err(ClientError::Protocol("no content-length")),
    };
    Ok((status, length, close))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let h = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(find_head_end(h), Some(h.len()));
        assert_eq!(parse_head(h).unwrap(), (202, 0, false));
        let h = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 5\r\nContent-Length: 23\r\nconnection: close\r\n\r\n";
        assert_eq!(parse_head(h).unwrap(), (503, 23, true));
        assert_eq!(
            parse_head(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap(),
            (204, 0, false)
        );
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
        assert_eq!(find_head_end(b"HTTP/1.1 200 OK\r\n"), None);
    }

    #[tokio::test]
    async fn keep_alive_against_a_real_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            for body in ["", "{\"error\":\"x\"}"] {
                let mut got = Vec::new();
                while find_head_end(&got).is_none() {
                    let n = s.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                }
                let status = if body.is_empty() {
                    "202 Accepted"
                } else {
                    "400 Bad Request"
                };
                let r = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(r.as_bytes()).await.unwrap();
            }
        });
        let mut c = Connection::open(addr).await.unwrap();
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(c.send(req).await.unwrap().status, 202);
        assert_eq!(c.send(req).await.unwrap().status, 400);
        server.await.unwrap();
        assert!(matches!(
            c.send(req).await,
            Err(ClientError::Closed | ClientError::Io(_))
        ));
    }
}
