//! The HTTP/1.1 server under the tests' stand-ins of AWS APIs that the local AWS API
//! cannot play (a partial `PutEvents` failure, what a text to a phone carries): on
//! 127.0.0.1, one request after another per connection, each body handed to a handler
//! and its reply written back. Stopped when dropped.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the handler answers a request with.
pub struct Reply {
    /// `200 OK`, `400 Bad Request`, …
    pub status: &'static str,
    pub content_type: &'static str,
    pub body: String,
}

pub struct Server {
    address: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Serves each request's body to `handler`.
    pub async fn start(handler: impl Fn(&[u8]) -> Reply + Send + Sync + 'static) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let handler = handler.clone();
                tokio::spawn(async move { connection(socket, &*handler).await });
            }
        });
        Self { address, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn connection(
    mut socket: tokio::net::TcpStream,
    handler: &(impl Fn(&[u8]) -> Reply + ?Sized),
) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        // One request: its headers, then Content-Length bytes of body.
        let head_end = loop {
            if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                break end + 4;
            }
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            }
        }
        let reply = handler(&buffer[head_end..head_end + length]);
        buffer.drain(..head_end + length);
        let response = format!(
            "HTTP/1.1 {}\r\ncontent-type: {}\r\ncontent-length: {}\r\n\r\n{}",
            reply.status,
            reply.content_type,
            reply.body.len(),
            reply.body
        );
        if socket.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}
