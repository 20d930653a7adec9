//! A provider written by hand on a raw TCP socket, for what no well-behaved HTTP server
//! does: bytes trickled one a second, endless bodies, keep-alives and nothing else, bytes
//! that are not UTF-8, headers chosen byte for byte.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::{future::Future, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
    task::JoinHandle,
};

/// A raw provider on loopback: every connection has its request read, then is handed to
/// the handler. Requests (head and body, as text) are sent to [`requests`](Self::requests).
pub struct RawProvider {
    base_url: String,
    requests: mpsc::UnboundedReceiver<String>,
    accept: JoinHandle<()>,
}

impl RawProvider {
    /// Starts a provider that answers every connection with `handler`.
    pub async fn start<F, Fut>(handler: F) -> Self
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, requests) = mpsc::unbounded_channel();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    continue;
                };
                let request = read_request(&mut socket).await;
                let _ = tx.send(request);
                tokio::spawn(handler(socket));
            }
        });
        Self {
            base_url,
            requests,
            accept,
        }
    }

    /// A provider that writes `head` (status line and headers, without the blank line),
    /// then the body `pieces`, `every` apart, then keeps the connection open.
    pub async fn trickle(head: &'static str, pieces: Vec<Vec<u8>>, every: Duration) -> Self {
        Self::start(move |mut socket| {
            let pieces = pieces.clone();
            async move {
                if socket
                    .write_all(format!("{head}\r\n\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
                for piece in pieces {
                    if socket.write_all(&piece).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(every).await;
                }
                let _ = socket.read(&mut [0; 1]).await;
            }
        })
        .await
    }

    /// A provider that writes `head`, then `piece` again and again, `every` apart, for as
    /// long as the client reads.
    pub async fn repeat(head: &'static str, piece: Vec<u8>, every: Duration) -> Self {
        Self::start(move |mut socket| {
            let piece = piece.clone();
            async move {
                if socket
                    .write_all(format!("{head}\r\n\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
                while socket.write_all(&piece).await.is_ok() {
                    tokio::time::sleep(every).await;
                }
            }
        })
        .await
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The next request received (head and body).
    pub async fn next_request(&mut self) -> String {
        self.requests.recv().await.unwrap()
    }
}

impl Drop for RawProvider {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Reads one request: its head, then as many body bytes as its `content-length` says.
async fn read_request(socket: &mut TcpStream) -> String {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&request).into_owned(),
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    while request.len() < head_end + length {
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&request).into_owned()
}

/// One SSE event carrying `content`, from `model` (no `model` field when empty).
pub fn delta(model: &str, content: &str, finish: bool) -> Vec<u8> {
    let mut chunk = serde_json::json!({
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish.then_some("stop")}]
    });
    if !model.is_empty() {
        chunk["model"] = model.into();
    }
    format!("data: {chunk}\n\n").into_bytes()
}

/// An HTTP/1.1 chunk of a chunked body.
pub fn chunk(bytes: &[u8]) -> Vec<u8> {
    let mut framed = format!("{:x}\r\n", bytes.len()).into_bytes();
    framed.extend_from_slice(bytes);
    framed.extend_from_slice(b"\r\n");
    framed
}

/// The head of a streamed answer (chunked).
pub const SSE_HEAD: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked";

pub mod gateway;
