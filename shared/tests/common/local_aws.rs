//! A local AWS API (`moto_server`: Secrets Manager, SQS) on 127.0.0.1 for tests that use
//! the real SDK.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_sqs::config::{Credentials, Region};

/// A `moto_server` child process on a free loopback port, killed by its PID on drop.
pub struct LocalAws {
    child: Child,
    pub endpoint: String,
}

impl LocalAws {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server runs (pip install 'moto[server]')");
        let mut local = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            if let Ok(Some(status)) = local.child.try_wait() {
                panic!("moto_server exited: {status}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        local
    }

    pub async fn sdk_config(&self) -> SdkConfig {
        let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new("ap-south-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "tests"));
        shared::infra::aws::sdk_config(loader).await
    }
}

impl Drop for LocalAws {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
