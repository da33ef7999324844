//! A loopback TCP proxy for tests that must see what crosses the wire: it counts the bytes
//! both ways and keeps what the client sent.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A running proxy to `127.0.0.1:upstream`; it lives as long as the test process.
#[derive(Debug, Clone)]
pub struct Proxy {
    /// The port clients connect to.
    pub port: u16,
    /// Bytes relayed, both ways, over all connections.
    pub bytes: Arc<AtomicU64>,
    /// Everything clients sent, connections one after another in the order they ended reads.
    pub sent: Arc<Mutex<Vec<u8>>>,
    /// Connections open now.
    pub open: Arc<AtomicU64>,
    /// The most connections that were open at once.
    pub most_open: Arc<AtomicU64>,
}

impl Proxy {
    /// Starts relaying to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> Proxy {
        Proxy::limited(upstream, None)
    }

    /// Starts relaying to `127.0.0.1:upstream`, passing what clients send at most at
    /// `upload` bytes per second when given (a slow uplink).
    pub fn limited(upstream: u16, upload: Option<u64>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let proxy = Proxy {
            port: listener.local_addr().expect("address").port(),
            bytes: Arc::new(AtomicU64::new(0)),
            sent: Arc::new(Mutex::new(Vec::new())),
            open: Arc::new(AtomicU64::new(0)),
            most_open: Arc::new(AtomicU64::new(0)),
        };
        let shared = proxy.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let now = shared.open.fetch_add(1, Ordering::SeqCst) + 1;
                shared.most_open.fetch_max(now, Ordering::SeqCst);
                for (from, to, upstream) in [(&client, &server, true), (&server, &client, false)] {
                    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
                        continue;
                    };
                    let shared = shared.clone();
                    std::thread::spawn(move || {
                        let mut buffer = [0u8; 64 << 10];
                        let mut kept = Vec::new();
                        while let Ok(n) = from.read(&mut buffer) {
                            if let Some(rate) = upload.filter(|_| upstream) {
                                let micros = n as u64 * 1_000_000 / rate.max(1);
                                std::thread::sleep(std::time::Duration::from_micros(micros));
                            }
                            if n == 0 || to.write_all(&buffer[..n]).is_err() {
                                break;
                            }
                            shared.bytes.fetch_add(n as u64, Ordering::Relaxed);
                            if upstream {
                                kept.extend_from_slice(&buffer[..n]);
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                        if !upstream {
                            // The server's side ended: the connection is closed.
                            shared.open.fetch_sub(1, Ordering::SeqCst);
                        }
                        if upstream {
                            let mut sent = shared.sent.lock().unwrap_or_else(|e| e.into_inner());
                            sent.extend_from_slice(&kept);
                        }
                    });
                }
            }
        });
        proxy
    }

    /// Whether the clients sent `needle` (on connections that have ended).
    pub fn client_sent(&self, needle: &[u8]) -> bool {
        let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        sent.windows(needle.len().max(1)).any(|w| w == needle)
    }
}
