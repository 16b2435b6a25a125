//! A TCP proxy on 127.0.0.1 between an app and the real PostgreSQL, so a test can cut
//! connections (a restart), refuse them, or swallow every packet (a network black hole,
//! where no server-side timeout can fire).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::postgres::PgConnectOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How much of what clients send the proxy keeps (enough for a startup message).
const RECORDED: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Forward,
    /// New connections are closed at once; open ones are cut.
    Refuse,
    /// Connections are accepted and held, but nothing passes either way.
    BlackHole,
}

pub struct Proxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (mode, _) = watch::channel(Mode::Forward);
        let modes = mode.clone();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let record = sent.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, modes.subscribe(), record.clone()));
            }
        });
        Self { addr, mode, sent }
    }

    /// The first bytes clients sent to the database through the proxy.
    pub fn sent(&self) -> Vec<u8> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    sent: Arc<Mutex<Vec<u8>>>,
) {
    let current = *mode.borrow_and_update();
    match current {
        Mode::Refuse => return,
        // Hold the socket silently until the mode changes, then cut it.
        Mode::BlackHole => {
            let _ = mode.changed().await;
            return;
        }
        Mode::Forward => {}
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut from_client, mut to_client) = client.split();
    let (mut from_server, mut to_server) = server.split();
    let up = async {
        let mut buffer = [0u8; 8192];
        loop {
            let read = from_client.read(&mut buffer).await?;
            if read == 0 {
                return to_server.shutdown().await;
            }
            {
                let mut sent = sent.lock().unwrap_or_else(PoisonError::into_inner);
                let room = RECORDED.saturating_sub(sent.len()).min(read);
                sent.extend_from_slice(&buffer[..room]);
            }
            to_server.write_all(&buffer[..read]).await?;
        }
    };
    let down = tokio::io::copy(&mut from_server, &mut to_client);
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        _ = mode.changed() => {
            if *mode.borrow_and_update() == Mode::BlackHole {
                // The established connection goes silent, like a dead network path.
                let _ = mode.changed().await;
            }
        }
    }
}

pub async fn upstream(options: &PgConnectOptions) -> SocketAddr {
    tokio::net::lookup_host((options.get_host(), options.get_port()))
        .await
        .expect("resolve test database")
        .next()
        .expect("an address")
}

/// The same database, reached through the proxy.
pub fn via(proxy: &Proxy, options: PgConnectOptions) -> PgConnectOptions {
    options.host("127.0.0.1").port(proxy.addr.port())
}
