//! The firewall's HTTP API on the metrics server (`xlvs metrics --listen ...`):
//!
//! * `GET /fw`: the listing of `xlvs fw list --json`;
//! * `POST /fw/rules` (a rule entry of the save file: `{"action": "deny", "src": ...}`): adds
//!   it, 201 with the rule as listed; `DELETE /fw/rules` (the same body): removes it, 204;
//! * `PUT /fw` (a whole file as `xlvs fw save` writes it): replaces the set, as `restore`.
//!
//! Requests are parsed by the save file's parser and applied by `dataplane::fw::Firewall` as
//! the CLI's are, under the same writer lock: CLI and API writers may run at once. A refused
//! request is 400 with the one-line error the CLI prints; the running set is unchanged.

use anyhow::anyhow;
use dataplane::Options;
use dataplane::fw::{Firewall, file};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Bytes};
use hyper::{Method, Request, Response, StatusCode};

use crate::fw::{listing, refused, rule_json};

/// Paths this module answers.
pub fn serves(path: &str) -> bool {
    matches!(path, "/fw" | "/fw/rules")
}

/// A rule set of a million prefixes is some 60 MB of JSON.
const MAX_BODY: usize = 256 << 20;

/// What a request gets: a status and a body (JSON on success, one line of text on error).
struct Reply {
    status: StatusCode,
    body: String,
    allow: Option<&'static str>,
}

impl Reply {
    fn json(status: StatusCode, v: &serde_json::Value) -> Reply {
        let mut body = serde_json::to_string_pretty(v).unwrap_or_default();
        body.push('\n');
        Reply {
            status,
            body,
            allow: None,
        }
    }

    fn error(status: StatusCode, e: &anyhow::Error) -> Reply {
        // One line: the CLI's error chain, joined.
        Reply {
            status,
            body: format!("{}\n", format!("{e:#}").replace('\n', " ")),
            allow: None,
        }
    }
}

pub async fn answer<B>(opts: Options, req: Request<B>) -> Response<Full<Bytes>>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let reply = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Err(e) => Reply::error(
            StatusCode::BAD_REQUEST,
            &anyhow!("cannot read the request body: {e}"),
        ),
        Ok(body) => {
            let body = body.to_bytes();
            // Firewall changes block (the writer lock, map writes): off the server's thread.
            tokio::task::spawn_blocking(move || handle(&opts, &method, &path, &body))
                .await
                .unwrap_or_else(|e| {
                    Reply::error(StatusCode::INTERNAL_SERVER_ERROR, &anyhow!("{e}"))
                })
        }
    };
    let content_type = if reply.status.is_success() {
        "application/json"
    } else {
        "text/plain"
    };
    let mut resp = Response::builder()
        .status(reply.status)
        .header("content-type", content_type);
    if let Some(allow) = reply.allow {
        resp = resp.header("allow", allow);
    }
    resp.body(Full::new(Bytes::from(reply.body)))
        .unwrap_or_default()
}

fn handle(opts: &Options, method: &Method, path: &str, body: &[u8]) -> Reply {
    let bad = |e: anyhow::Error| Reply::error(StatusCode::BAD_REQUEST, &e);
    let failed = |e: anyhow::Error| Reply::error(StatusCode::INTERNAL_SERVER_ERROR, &e);
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(e) => {
            return bad(anyhow!(
                "the request body is not UTF-8: {e}; the rules are unchanged"
            ));
        }
    };
    match (path, method) {
        ("/fw", &Method::GET) => match listing(opts) {
            Ok(v) => Reply::json(StatusCode::OK, &v),
            Err(e) => failed(e),
        },
        ("/fw", &Method::PUT) => {
            let set = match file::parse(text, "request body", false) {
                Ok(s) => s,
                Err(e) => return bad(anyhow!("{e}; the rules are unchanged")),
            };
            let mut fw = match Firewall::open(opts) {
                Ok(fw) => fw,
                Err(e) => return failed(e.into()),
            };
            match fw.replace(&set) {
                Ok(a) => Reply::json(
                    StatusCode::OK,
                    &serde_json::json!({
                        "policy": set.policy.name(),
                        "rules": a.rules,
                        "prefixes": a.prefixes,
                    }),
                ),
                Err(e) => change_refused(e),
            }
        }
        ("/fw/rules", &Method::POST) | ("/fw/rules", &Method::DELETE) => {
            let rule = match file::parse_rule(text, "request body") {
                Ok(r) => r,
                Err(e) => return bad(anyhow!("{e}; the rules are unchanged")),
            };
            let mut fw = match Firewall::open(opts) {
                Ok(fw) => fw,
                Err(e) => return failed(e.into()),
            };
            if method == Method::DELETE {
                return match fw.del(rule) {
                    Ok(_) => Reply {
                        status: StatusCode::NO_CONTENT,
                        body: String::new(),
                        allow: None,
                    },
                    Err(e) => change_refused(e),
                };
            }
            if let Err(e) = fw.add(rule) {
                return change_refused(e);
            }
            // Answer with the rule as it now runs (its id: its counter).
            match fw.current() {
                Ok(set) => match set.rules.iter().find(|n| n.rule == rule) {
                    Some(n) => Reply::json(StatusCode::CREATED, &rule_json(&fw, n)),
                    None => failed(anyhow!("`{rule}` was added but is no longer listed")),
                },
                Err(e) => failed(e.into()),
            }
        }
        ("/fw", _) => not_allowed("GET, PUT"),
        (_, _) => not_allowed("POST, DELETE"),
    }
}

/// A change the firewall refused (400: the request was wrong) or could not make (500).
fn change_refused(e: dataplane::fw::FwError) -> Reply {
    let status = match e {
        dataplane::fw::FwError::Refused(_) => StatusCode::BAD_REQUEST,
        dataplane::fw::FwError::Dataplane(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    Reply::error(status, &refused(e))
}

fn not_allowed(allow: &'static str) -> Reply {
    Reply {
        status: StatusCode::METHOD_NOT_ALLOWED,
        body: format!("method not allowed (allowed: {allow})\n"),
        allow: Some(allow),
    }
}
