//! HTTP_GET / SSL_GET: `GET path` per URL (HTTP/1.0 and
//! `User-Agent: KeepAliveClient` as keepalived sends it), checking the
//! status code (default 200-299), the MD5 digest of the body, and a regex
//! on the body. TLS certificates are not verified (as keepalived).

use super::Outcome;
use crate::conn::Conn;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, Version};
use hyper_util::rt::TokioIo;
use keepalived_conf::model::{HttpCheck, StatusRange};
use md5::{Digest, Md5};
use regex::Regex;
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// Most of a body kept for the regex (the digest covers all of it).
const REGEX_BUFFER: usize = 1 << 20;

/// One `url` of HTTP_GET / SSL_GET, ready to check.
#[derive(Debug)]
pub struct UrlCheck {
    /// Path requested.
    pub path: String,
    /// Lower-case hex MD5.
    pub digest: Option<String>,
    /// Status codes accepted.
    pub status: Vec<StatusRange>,
    /// Host header.
    pub host: Option<String>,
    /// Pattern the body must match.
    pub regex: Option<Regex>,
    /// The body must not match `regex` instead.
    pub regex_no_match: bool,
}

/// HTTP_GET / SSL_GET: each URL's answer must be as configured.
#[derive(Debug)]
pub struct HttpProbe {
    /// Where requests go.
    pub conn: Conn,
    /// The URLs, checked one per attempt.
    pub urls: Vec<UrlCheck>,
    /// TLS client settings (SSL_GET); None: plain HTTP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Send SNI (the virtual host) in the TLS handshake.
    pub sni: bool,
    /// HTTP version of the request line.
    pub version: Version,
    /// `Connection: close` (http_protocol 1.0C / 1.1).
    pub close: bool,
}

impl HttpProbe {
    /// Builds the probe; `vhost` is the real's or service's virtualhost.
    /// `tls`: the TLS client for SSL_GET (none for HTTP_GET).
    pub fn new(
        conn: Conn,
        h: &HttpCheck,
        tls: Option<Arc<rustls::ClientConfig>>,
        vhost: Option<&str>,
    ) -> Result<HttpProbe, String> {
        let mut urls = Vec::new();
        for u in &h.urls {
            let regex = match &u.regex {
                Some(r) => {
                    let mut flags = String::new();
                    for o in &u.regex_options {
                        match o.as_str() {
                            "caseless" => flags.push('i'),
                            "multiline" => flags.push('m'),
                            "dotall" => flags.push('s'),
                            "extended" => flags.push('x'),
                            "ungreedy" => flags.push('U'),
                            _ => {}
                        }
                    }
                    let pat = if flags.is_empty() {
                        r.clone()
                    } else {
                        format!("(?{flags}){r}")
                    };
                    Some(Regex::new(&pat).map_err(|e| format!("invalid regex '{r}': {e}"))?)
                }
                None => None,
            };
            urls.push(UrlCheck {
                path: u.path.clone().unwrap_or_else(|| "/".into()),
                digest: u.digest.as_ref().map(|d| d.to_ascii_lowercase()),
                status: if u.status_codes.is_empty() {
                    vec![StatusRange {
                        first: 200,
                        last: 299,
                    }]
                } else {
                    u.status_codes.clone()
                },
                host: u
                    .virtualhost
                    .clone()
                    .or_else(|| h.virtualhost.clone())
                    .or_else(|| vhost.map(str::to_string)),
                regex,
                regex_no_match: u.regex_no_match,
            });
        }
        if urls.is_empty() {
            return Err("no url configured".into());
        }
        let (version, close) = match h.http_protocol.as_deref() {
            Some("1.1") => (Version::HTTP_11, true),
            Some("1.0C") => (Version::HTTP_10, true),
            _ => (Version::HTTP_10, false),
        };
        Ok(HttpProbe {
            conn,
            urls,
            tls,
            sni: h.enable_sni,
            version,
            close,
        })
    }

    fn who(&self) -> String {
        self.conn.fmt("tcp")
    }

    /// One request, for URL number `url`.
    pub async fn run(&self, url: usize) -> Outcome {
        let Some(u) = self.urls.get(url) else {
            return Outcome::fail("no such url");
        };
        match self.get(u).await {
            Ok(what) => Outcome::ok(format!("{what} success to {} url({}).", self.who(), u.path)),
            Err(e) => Outcome::fail(format!("{e} {} url({}).", self.who(), u.path)),
        }
    }

    async fn get(&self, u: &UrlCheck) -> Result<&'static str, String> {
        let t = self.conn.timeout;
        let tcp = self.conn.tcp().await.map_err(|e| match e {
            crate::conn::ConnError::Timeout => "Timeout connecting".to_string(),
            e => format!("Error connecting ({e})"),
        })?;
        match &self.tls {
            None => self.exchange(tcp, u, t).await,
            Some(cfg) => {
                let name = match (&u.host, self.sni) {
                    (Some(h), true) => ServerName::try_from(h.clone())
                        .unwrap_or_else(|_| ServerName::IpAddress(self.conn.dst.ip().into())),
                    // rustls sends no SNI for an IP address.
                    _ => ServerName::IpAddress(self.conn.dst.ip().into()),
                };
                let tls = tokio_rustls::TlsConnector::from(cfg.clone());
                let stream = tokio::time::timeout(t, tls.connect(name, tcp))
                    .await
                    .map_err(|_| "Timeout connecting".to_string())?
                    .map_err(|e| {
                        format!("SSL handshake/communication error ({e}) connecting to")
                    })?;
                self.exchange(stream, u, t).await
            }
        }
    }

    async fn exchange<S>(&self, io: S, u: &UrlCheck, t: Duration) -> Result<&'static str, String>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("Cannot send get request ({e}) to"))?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let _abort = AbortOnDrop(driver);
        let host = match &u.host {
            Some(h) => h.clone(),
            None => match self.conn.dst {
                std::net::SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
                std::net::SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
            },
        };
        let mut req = Request::builder()
            .method("GET")
            .uri(u.path.as_str())
            .version(self.version)
            .header("User-Agent", "KeepAliveClient")
            .header("Host", host);
        if self.close {
            req = req.header("Connection", "close");
        }
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("Cannot send get request (bad url: {e}) to"))?;
        let resp = tokio::time::timeout(t, sender.send_request(req))
            .await
            .map_err(|_| "Timeout WEB read".to_string())?
            .map_err(|e| format!("Read error ({e}) with"))?;
        let code = resp.status().as_u16();
        if !u.status.iter().any(|r| (r.first..=r.last).contains(&code)) {
            return Err(format!("HTTP status code error ({code}) to"));
        }
        let mut body = resp.into_body();
        let mut md5 = Md5::new();
        let mut kept = Vec::new();
        loop {
            let frame = tokio::time::timeout(t, body.frame())
                .await
                .map_err(|_| "Timeout HTTP read".to_string())?;
            match frame {
                None => break,
                Some(Err(e)) => return Err(format!("Read error ({e}) with")),
                Some(Ok(f)) => {
                    if let Some(d) = f.data_ref() {
                        md5.update(d);
                        if u.regex.is_some() && kept.len() < REGEX_BUFFER {
                            let n = d.len().min(REGEX_BUFFER - kept.len());
                            kept.extend_from_slice(&d[..n]);
                        }
                    }
                }
            }
        }
        let mut what = "HTTP status code";
        if let Some(want) = &u.digest {
            let got: String = md5.finalize().iter().map(|b| format!("{b:02x}")).collect();
            if &got != want {
                return Err(format!("MD5 digest error (got {got}) to"));
            }
            what = "MD5 digest";
        }
        if let Some(re) = &u.regex {
            let matched = re.is_match(&String::from_utf8_lossy(&kept));
            if matched == u.regex_no_match {
                return Err("Regex match failed".into());
            }
            what = "Regex match";
        }
        Ok(what)
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The TLS client of SSL_GET and genhash: keepalived's `SSL { }` block gives the client
/// certificate chain and key it presents (`certificate`, `key`); the server's certificate is
/// not verified, as keepalived does not (its `ca` is loaded but never checked against), so a
/// `ca` file only has to be readable. Keys must be unencrypted PEM (PKCS#8, PKCS#1 or SEC1):
/// a `password` for an encrypted key is refused with keepalived's "Cant load key file".
pub fn tls_client(
    ssl: Option<&keepalived_conf::model::SslConfig>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let Some(ssl) = ssl.filter(|s| s.certificate.is_some() || s.key.is_some() || s.ca.is_some())
    else {
        return Ok(no_verify_tls());
    };
    if let Some(ca) = &ssl.ca {
        std::fs::metadata(ca).map_err(|e| format!("SSL error : Cant load CA file {ca} ({e})"))?;
    }
    let (Some(cert), Some(key)) = (&ssl.certificate, &ssl.key) else {
        return Ok(no_verify_tls());
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("SSL error : Cant load certificate file {cert} ({e})"))?;
    if chain.is_empty() {
        return Err(format!(
            "SSL error : Cant load certificate file {cert} (no certificate)"
        ));
    }
    let text = std::fs::read_to_string(key)
        .map_err(|e| format!("SSL error : Cant load key file {key} ({e})"))?;
    if text.contains("ENCRYPTED") {
        return Err(format!(
            "SSL error : Cant load key file {key} (encrypted keys are not supported; decrypt it)"
        ));
    }
    let pk = PrivateKeyDer::from_pem_slice(text.as_bytes())
        .map_err(|e| format!("SSL error : Cant load key file {key} ({e})"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        .with_client_auth_cert(chain, pk)
        .map_err(|e| format!("SSL error : Cant load key file {key} ({e})"))?;
    Ok(Arc::new(cfg))
}

/// TLS client that accepts any certificate (keepalived does not verify).
fn no_verify_tls() -> Arc<rustls::ClientConfig> {
    use std::sync::OnceLock;
    static CFG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CFG.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth();
        Arc::new(cfg)
    })
    .clone()
}

#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
