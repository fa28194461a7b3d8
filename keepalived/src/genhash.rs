//! `keepalived -T` (`--genhash`): keepalived's genhash utility. It fetches one URL with the
//! request keepalived's HTTP checker sends (`GET URL HTTP/1.0`, `User-Agent:
//! KeepAliveClient`, `Host: ADDR:PORT` or the virtual host, `Connection: close` for `-P 1.1`
//! and `-P 1.0c`), reads until the server closes, and prints the MD5 of what follows the
//! headers, byte for byte as keepalived computes it (no chunked decoding). `-v` adds
//! keepalived's hex dumps and the response time. Outputs and exit codes are 2.2.7's:
//! "Connection failed" and 0 when the server cannot be reached, the usage text on stderr and 1
//! without server, port and URL.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

#[derive(Debug, Default)]
struct Opts {
    ssl: bool,
    sni: bool,
    server: Option<String>,
    port: Option<u16>,
    url: Option<String>,
    vhost: Option<String>,
    verbose: bool,
    fwmark: Option<u32>,
    protocol: Option<String>,
    timeout: Option<f64>,
}

fn usage(prog: &str) -> String {
    format!(
        "Usage: {prog} --genhash COMMAND [OPTIONS]\n\
Commands:\n   -s server-address -p port -u url\n   -S -s server-address -p port -u url\n   -h\n\n\
Options:\nEither long or short options are allowed.\n\
   --use-ssl         -S       Use SSL connection to remote server.\n\
   --use-sni         -I       Use SNI during SSL handshake (uses virtualhost setting; see -V).\n\
   --server          -s       Use the specified remote server address.\n\
   --port            -p       Use the specified remote server port.\n\
   --url             -u       Use the specified remote server url.\n\
   --use-virtualhost -V       Use the specified virtualhost in GET query.\n\
   --verbose         -v       Use verbose mode output.\n\
   --help            -h       Display this short inlined help screen.\n\
   --fwmark          -m       Use the specified FW mark.\n\
   --protocol        -P       Use the specified HTTP protocol - '1.0', 1.0c', '1.1'.\n\
                                1.0c means 1.0 with 'Connection: close'\n\
   --timeout         -t       Timeout in seconds\n"
    )
}

fn parse(args: &[String]) -> Option<Opts> {
    let mut o = Opts::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        // --opt=value as well as --opt value / -o value / -ovalue.
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ if a.len() > 2 && a.starts_with('-') && !a.starts_with("--") => {
                (&a[..2], Some(a[2..].to_string()))
            }
            _ => (a, None),
        };
        let mut value = || -> Option<String> {
            if let Some(v) = inline.clone() {
                return Some(v);
            }
            i += 1;
            args.get(i).cloned()
        };
        match flag {
            "-S" | "--use-ssl" => o.ssl = true,
            "-I" | "--use-sni" => o.sni = true,
            "-v" | "--verbose" => o.verbose = true,
            "-h" | "--help" => return None,
            "-s" | "--server" => o.server = Some(value()?),
            "-p" | "--port" => o.port = Some(value()?.parse().ok()?),
            "-u" | "--url" => o.url = Some(value()?),
            "-V" | "--use-virtualhost" => o.vhost = Some(value()?),
            "-m" | "--fwmark" => o.fwmark = Some(value()?.parse().ok()?),
            "-P" | "--protocol" => o.protocol = Some(value()?),
            "-t" | "--timeout" => o.timeout = Some(value()?.parse().ok()?),
            _ => return None,
        }
        i += 1;
    }
    (o.server.is_some() && o.port.is_some() && o.url.is_some()).then_some(o)
}

/// keepalived's `dump_buffer`: decimal offsets, 16 bytes a line split by "- ", then the
/// printable characters.
fn dump(buf: &[u8]) -> String {
    let mut out = String::new();
    for (n, chunk) in buf.chunks(16).enumerate() {
        out.push_str(&format!("{:04}  ", n * 16));
        for i in 0..16 {
            match chunk.get(i) {
                Some(b) => out.push_str(&format!("{b:02x} ")),
                None => out.push_str("   "),
            }
            if i == 7 {
                out.push_str("- ");
            }
        }
        out.push_str("  ");
        for i in 0..16 {
            out.push(match chunk.get(i) {
                Some(b) if b.is_ascii_graphic() || *b == b' ' => *b as char,
                Some(_) => '.',
                None => ' ',
            });
        }
        out.push('\n');
    }
    out
}

fn banner(title: &str) -> String {
    format!("-----------------------[{title:^26}]-----------------------\n")
}

/// The request keepalived's HTTP checker sends.
fn request(o: &Opts, dst: SocketAddr) -> String {
    let (version, close) = match o.protocol.as_deref() {
        Some("1.1") => ("1.1", true),
        Some("1.0c") | Some("1.0C") => ("1.0", true),
        _ => ("1.0", false),
    };
    let host = o.vhost.clone().unwrap_or_else(|| match dst {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    });
    format!(
        "GET {} HTTP/{version}\r\nUser-Agent: KeepAliveClient\r\n{}Host: {host}\r\n\r\n",
        o.url.as_deref().unwrap_or("/"),
        if close { "Connection: close\r\n" } else { "" }
    )
}

fn fetch(o: &Opts, dst: SocketAddr, timeout: Duration) -> Option<Vec<u8>> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(dst),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .ok()?;
    if let Some(m) = o.fwmark {
        let _ = sock.set_mark(m);
    }
    sock.connect_timeout(&dst.into(), timeout).ok()?;
    let tcp: TcpStream = sock.into();
    tcp.set_read_timeout(Some(timeout)).ok()?;
    tcp.set_write_timeout(Some(timeout)).ok()?;
    let req = request(o, dst);
    let mut resp = Vec::new();
    if o.ssl {
        let cfg = healthcheck::probe::http::tls_client(None).ok()?;
        let name = match (&o.vhost, o.sni) {
            (Some(h), true) => rustls::pki_types::ServerName::try_from(h.clone()).ok()?,
            _ => rustls::pki_types::ServerName::IpAddress(dst.ip().into()),
        };
        let conn = rustls::ClientConnection::new(cfg, name).ok()?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        s.write_all(req.as_bytes()).ok()?;
        read_all(&mut s, &mut resp);
    } else {
        let mut s = tcp;
        s.write_all(req.as_bytes()).ok()?;
        read_all(&mut s, &mut resp);
    }
    Some(resp)
}

/// Reads until the server closes (or errors / times out, keeping what came).
fn read_all(r: &mut impl Read, out: &mut Vec<u8>) {
    let mut buf = [0u8; 8192];
    while let Ok(n) = r.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Runs genhash with the arguments after `-T`; the exit code.
pub fn main(prog: &str, args: &[String]) -> i32 {
    let Some(o) = parse(args) else {
        eprint!("{}", usage(prog));
        return 1;
    };
    let server = o.server.as_deref().unwrap_or_default();
    let Ok(ip) = server.parse::<std::net::IpAddr>() else {
        println!("Connection failed");
        return 0;
    };
    let dst = SocketAddr::new(ip, o.port.unwrap_or(80));
    let timeout = Duration::from_secs_f64(o.timeout.unwrap_or(5.0).max(0.001));
    let t0 = Instant::now();
    let url = o.url.clone().unwrap_or_default();
    let mut out = String::new();
    match fetch(&o, dst, timeout) {
        None => out.push_str("Connection failed\n"),
        Some(resp) => {
            let split = resp
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|p| p + 4)
                .unwrap_or(resp.len());
            let (head, body) = resp.split_at(split);
            let digest = Md5::digest(body);
            if o.verbose {
                out.push_str(&banner("    HTTP Header Buffer    "));
                out.push_str(&dump(head));
                out.push_str(&banner(" HTTP Header Ascii Buffer "));
                out.push_str(&String::from_utf8_lossy(head));
                out.push('\n');
                out.push_str(&banner("        HTML Buffer        "));
                out.push_str(&dump(body));
                out.push('\n');
                out.push_str(&banner("    HTML hash resulting    "));
                out.push_str(&dump(&digest));
                out.push_str(&banner(" HTML hash final resulting "));
            }
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            out.push_str(&hex);
            out.push('\n');
        }
    }
    if o.verbose {
        out.push_str(&format!(
            "\nGlobal response time for [{url}] = {} usecs\n",
            t0.elapsed().as_micros()
        ));
    }
    print!("{out}");
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_and_banners_as_keepalived() {
        assert_eq!(
            dump(b"abc"),
            "0000  61 62 63                -                           abc             \n"
        );
        assert_eq!(
            dump(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"),
            "0000  48 54 54 50 2f 31 2e 31 - 20 32 30 30 20 4f 4b 0d   HTTP/1.1 200 OK.\n\
             0016  0a 43 6f 6e 74 65 6e 74 - 2d 4c 65 6e 67 74 68 3a   .Content-Length:\n\
             0032  20 33 0d 0a 0d 0a       -                            3....          \n"
        );
        assert_eq!(
            banner("    HTTP Header Buffer    "),
            "-----------------------[    HTTP Header Buffer    ]-----------------------\n"
        );
        assert_eq!(
            banner(" HTML hash final resulting "),
            "-----------------------[ HTML hash final resulting ]-----------------------\n"
        );
    }

    #[test]
    fn requests_as_keepalived_sends_them() {
        let o = |extra: &[&str]| {
            let mut a: Vec<String> = ["-s", "198.18.80.1", "-p", "8090", "-u", "/a"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            a.extend(extra.iter().map(|s| s.to_string()));
            parse(&a).unwrap()
        };
        let dst: SocketAddr = "198.18.80.1:8090".parse().unwrap();
        assert_eq!(
            request(&o(&[]), dst),
            "GET /a HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 198.18.80.1:8090\r\n\r\n"
        );
        assert_eq!(
            request(&o(&["-V", "vh.example"]), dst),
            "GET /a HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: vh.example\r\n\r\n"
        );
        assert_eq!(
            request(&o(&["-P", "1.1"]), dst),
            "GET /a HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: 198.18.80.1:8090\r\n\r\n"
        );
        assert_eq!(
            request(&o(&["-P", "1.0c"]), dst),
            "GET /a HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: 198.18.80.1:8090\r\n\r\n"
        );
        assert!(parse(&["-s".into(), "x".into(), "-u".into(), "/".into()]).is_none());
    }
}
