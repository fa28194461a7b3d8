//! A tiny SMTP server for alert tests: accepts every command (220, 250, 354 for DATA, 250
//! after the dot, 221 for QUIT) and keeps each connection's transcript, CRLFs included.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use anyhow::Result;

use crate::netns::Netns;

/// The sink (its threads end with the test process; the namespace going away closes it).
pub struct SmtpSink {
    mails: Arc<Mutex<Vec<String>>>,
}

impl SmtpSink {
    /// Listens on `addr` inside `ns`.
    pub fn start(ns: &Netns, addr: SocketAddr) -> Result<SmtpSink> {
        let l = ns
            .run_in(move || TcpListener::bind(addr))
            .join()
            .map_err(|_| anyhow::anyhow!("sink thread"))???;
        let mails = Arc::new(Mutex::new(Vec::new()));
        let m = mails.clone();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let m = m.clone();
                std::thread::spawn(move || {
                    let mut w = match c.try_clone() {
                        Ok(w) => w,
                        Err(_) => return,
                    };
                    let mut r = BufReader::new(c);
                    let mut text = String::new();
                    let _ = w.write_all(b"220 sink ESMTP\r\n");
                    let mut data = false;
                    loop {
                        let mut line = String::new();
                        match r.read_line(&mut line) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                        text.push_str(&line);
                        let reply: &[u8] = if data {
                            if line == ".\r\n" {
                                data = false;
                                b"250 ok\r\n"
                            } else {
                                continue;
                            }
                        } else if line.to_ascii_uppercase().starts_with("DATA") {
                            data = true;
                            b"354 go ahead\r\n"
                        } else if line.to_ascii_uppercase().starts_with("QUIT") {
                            let _ = w.write_all(b"221 bye\r\n");
                            break;
                        } else {
                            b"250 ok\r\n"
                        };
                        if w.write_all(reply).is_err() {
                            break;
                        }
                    }
                    m.lock().unwrap().push(text);
                });
            }
        });
        Ok(SmtpSink { mails })
    }

    /// Forgets the conversations so far.
    pub fn clear(&self) {
        self.mails.lock().unwrap().clear();
    }

    /// Every finished conversation so far.
    pub fn mails(&self) -> Vec<String> {
        self.mails.lock().unwrap().clone()
    }

    /// The conversations whose Subject line contains `what`.
    pub fn with_subject(&self, what: &str) -> Vec<String> {
        self.mails()
            .into_iter()
            .filter(|m| {
                m.lines()
                    .any(|l| l.starts_with("Subject: ") && l.contains(what))
            })
            .collect()
    }
}

/// A conversation without its Date header (the only part that differs run to run).
pub fn without_date(mail: &str) -> String {
    mail.split_inclusive("\r\n")
        .filter(|l| !l.starts_with("Date: "))
        .collect()
}

/// The Subject line and the body line of a conversation.
pub fn subject_and_body(mail: &str) -> (String, String) {
    let subject = mail
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or("")
        .trim_end()
        .to_string();
    let body = mail
        .split("\r\n\r\n")
        .nth(1)
        .and_then(|b| b.split("\r\n").next())
        .unwrap_or("")
        .to_string();
    (subject, body)
}
