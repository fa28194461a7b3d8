//! One probe of each checker type: a single attempt, success or failure
//! with keepalived's wording of the reason. Timing and retries are not
//! here (see `timing`).

pub mod dns;
pub mod file;
pub mod http;
pub mod misc;
pub mod ping;
pub mod smtp;
pub mod tcp;
pub mod udp;

/// The result of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The probe passed.
    pub ok: bool,
    /// Why, as keepalived would log it.
    pub reason: String,
    /// MISC_CHECK with `misc_dynamic`: the weight to set (`Some(None)`:
    /// back to the configured weight).
    pub dynamic_weight: Option<Option<i32>>,
    /// FILE_CHECK: the weight contribution while up.
    pub weight_delta: Option<i32>,
}

impl Outcome {
    /// A pass, with its reason.
    pub fn ok(reason: impl Into<String>) -> Outcome {
        Outcome {
            ok: true,
            reason: reason.into(),
            dynamic_weight: None,
            weight_delta: None,
        }
    }

    /// A failure, with its reason.
    pub fn fail(reason: impl Into<String>) -> Outcome {
        Outcome {
            ok: false,
            reason: reason.into(),
            dynamic_weight: None,
            weight_delta: None,
        }
    }
}

/// A ready-to-run probe.
#[derive(Debug)]
pub enum Probe {
    /// TCP_CHECK.
    Tcp(tcp::TcpProbe),
    /// HTTP_GET / SSL_GET.
    Http(http::HttpProbe),
    /// MISC_CHECK.
    Misc(misc::MiscProbe),
    /// UDP_CHECK.
    Udp(udp::UdpProbe),
    /// PING_CHECK.
    Ping(ping::PingProbe),
    /// DNS_CHECK.
    Dns(dns::DnsProbe),
    /// SMTP_CHECK.
    Smtp(smtp::SmtpProbe),
    /// FILE_CHECK.
    File(file::FileProbe),
    /// BFD_CHECK: follows the named BFD session (driven by its state, never probed).
    Bfd(String),
}

impl Probe {
    /// The checker's keyword in keepalived.conf (logs, metrics).
    pub fn keyword(&self) -> &'static str {
        match self {
            Probe::Tcp(_) => "TCP_CHECK",
            Probe::Http(p) if p.tls.is_some() => "SSL_GET",
            Probe::Http(_) => "HTTP_GET",
            Probe::Misc(_) => "MISC_CHECK",
            Probe::Udp(_) => "UDP_CHECK",
            Probe::Ping(_) => "PING_CHECK",
            Probe::Dns(_) => "DNS_CHECK",
            Probe::Smtp(_) => "SMTP_CHECK",
            Probe::File(_) => "FILE_CHECK",
            Probe::Bfd(_) => "BFD_CHECK",
        }
    }

    /// Runs one attempt (`url`: which HTTP URL).
    pub async fn run(&self, url: usize) -> Outcome {
        match self {
            Probe::Tcp(p) => p.run().await,
            Probe::Http(p) => p.run(url).await,
            Probe::Misc(p) => p.run().await,
            Probe::Udp(p) => p.run().await,
            Probe::Ping(p) => p.run().await,
            Probe::Dns(p) => p.run().await,
            Probe::Smtp(p) => p.run().await,
            Probe::File(p) => p.run(),
            Probe::Bfd(name) => Outcome::fail(format!("BFD {name} is not probed")),
        }
    }
}
