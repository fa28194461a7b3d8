//! Tiny real servers for tests, run on threads inside a namespace. Each answers with its name so
//! a client can tell which real it reached.
//! * TCP: greets every connection with "NAME\n", then answers each line L with "NAME L\n".
//! * UDP: answers every datagram with "NAME".

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;

use crate::netns::Netns;

/// Stops its server threads when dropped.
pub struct Server {
    stop: Arc<AtomicBool>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub fn tcp(ns: &Netns, addr: SocketAddr, name: &str) -> Result<Server> {
    let name = name.to_string();
    accept_loop(ns, addr, move |conn, _, stop| serve_tcp(conn, &name, &stop))
}

/// Listens on `addr` inside `ns` and hands every connection (with its peer and the stop flag) to
/// `serve` on its own thread, until the returned server is dropped.
fn accept_loop(
    ns: &Netns,
    addr: SocketAddr,
    serve: impl Fn(std::net::TcpStream, SocketAddr, Arc<AtomicBool>) + Clone + Send + 'static,
) -> Result<Server> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let ready = ns.run_in(move || -> Result<()> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, peer)) => {
                        let (serve, stop3) = (serve.clone(), stop2.clone());
                        std::thread::spawn(move || serve(conn, peer, stop3));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Ok(())
    });
    ready
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))???;
    Ok(Server { stop })
}

fn serve_tcp(conn: std::net::TcpStream, name: &str, stop: &AtomicBool) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let mut w = match conn.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    if writeln!(w, "{name}").is_err() {
        return;
    }
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {
                if write!(w, "{name} {line}").is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

pub fn udp(ns: &Netns, addr: SocketAddr, name: &str) -> Result<Server> {
    let stop = Arc::new(AtomicBool::new(false));
    let (stop2, name) = (stop.clone(), name.to_string());
    let ready = ns.run_in(move || -> Result<()> {
        let sock = UdpSocket::bind(addr)?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop2.load(Ordering::Relaxed) {
                if let Ok((_, from)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(name.as_bytes(), from);
                }
            }
        });
        Ok(())
    });
    ready
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))???;
    Ok(Server { stop })
}

/// A minimal HTTP/1.1 server: every request is answered `200 OK`, body `"NAME PEER\n"` where
/// PEER is the address:port the connection came from as this host sees it (so FULLNAT tests can
/// tell the real server saw a local address, not the client). Connection closes after one answer.
pub fn http(ns: &Netns, addr: SocketAddr, name: &str) -> Result<Server> {
    let name = name.to_string();
    accept_loop(ns, addr, move |conn, peer, _| serve_http(conn, peer, &name))
}

fn serve_http(conn: std::net::TcpStream, peer: SocketAddr, name: &str) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    // Request line and headers, up to the blank line.
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line.trim_end().is_empty() => break,
            Ok(_) => {}
        }
    }
    let body = format!("{name} {peer}\n");
    let _ = write!(
        w,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Connects to `addr` (from the calling thread's namespace), reads the greeting of a [`tcp`]
/// server, sends a line and checks the echo comes from the same server. Returns the server's
/// name and the open connection.
pub fn exchange(addr: SocketAddr) -> Result<(String, std::net::TcpStream)> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut hello = String::new();
    r.read_line(&mut hello)?;
    writeln!(s, "ping")?;
    let mut echo = String::new();
    r.read_line(&mut echo)?;
    let name = hello.trim().to_string();
    anyhow::ensure!(
        echo.trim() == format!("{name} ping"),
        "echo {echo:?} from {name}"
    );
    Ok((name, s))
}
