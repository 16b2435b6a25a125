//! A TCP proxy on 127.0.0.1 between an app and the real PostgreSQL, so a test can cut
//! connections (a restart), refuse them, or swallow every packet (a network black hole,
//! where no server-side timeout can fire).

use std::net::SocketAddr;

use sqlx::postgres::PgConnectOptions;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

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
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (mode, _) = watch::channel(Mode::Forward);
        let modes = mode.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, modes.subscribe()));
            }
        });
        Self { addr, mode }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

async fn relay(mut client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
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
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
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
