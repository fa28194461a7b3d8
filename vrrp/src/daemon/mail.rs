//! SMTP alerts for VRRP instances and sync groups, as keepalived's `vrrp_smtp_notifier` and
//! `vrrp_sync_smtp_notifier` send them: on MASTER/BACKUP/FAULT/stop (and DELETED at a
//! reload), once per state (`last_email_state`), FAULT skipped with `no_email_faults`, when
//! the instance's or group's `smtp_alert` (else `smtp_alert_vrrp`, else `smtp_alert`) is on.
//! The conversation runs on the effects worker; nothing here waits for it.

use keepalived_scripts::smtp::{self, Mailer};

use super::*;

/// One alert for the effects worker.
#[derive(Debug)]
pub(crate) struct Mail {
    pub mailer: Arc<Mailer>,
    pub group: bool,
    pub name: String,
    pub what: &'static str,
    pub body: &'static str,
}

impl Mail {
    pub(crate) fn send(&self) -> tokio::task::JoinHandle<()> {
        let about = if self.group {
            smtp::About::Group(&self.name)
        } else {
            smtp::About::Instance(&self.name)
        };
        self.mailer.send(&about, self.what, self.body)
    }
}

impl Engine {
    fn no_email_faults(&self, word: &str) -> bool {
        word == "FAULT" && self.config.global.extra_flag("no_email_faults")
    }

    /// After an instance's notifies for `word` (MASTER, BACKUP, FAULT, STOP, DELETED).
    pub(super) fn mail_instance(&mut self, idx: usize, word: &'static str) {
        let Some(mailer) = self.mailer.clone() else {
            return;
        };
        let name = self.insts[idx].cfg.name.clone();
        let own = self
            .config
            .vrrp_instances
            .iter()
            .find(|v| v.name == name)
            .and_then(|v| v.smtp_alert);
        if !smtp::vrrp_alert(&self.config, own)
            || self.no_email_faults(word)
            || self.insts[idx].last_mail == Some(word)
        {
            return;
        }
        let Some((what, body)) = smtp::bodies::instance(word) else {
            return;
        };
        self.insts[idx].last_mail = Some(word);
        self.effects.push(Effect::Mail(Mail {
            mailer,
            group: false,
            name,
            what,
            body,
        }));
    }

    /// An instance a reload removed (it is no longer in `insts`).
    pub(super) fn mail_removed(&mut self, o: &Inst, word: &'static str) {
        let Some(mailer) = self.mailer.clone() else {
            return;
        };
        let own = self
            .config
            .vrrp_instances
            .iter()
            .find(|v| v.name == o.cfg.name)
            .and_then(|v| v.smtp_alert);
        if !smtp::vrrp_alert(&self.config, own) || self.no_email_faults(word) {
            return;
        }
        if let Some((what, body)) = smtp::bodies::instance(word) {
            self.effects.push(Effect::Mail(Mail {
                mailer,
                group: false,
                name: o.cfg.name.clone(),
                what,
                body,
            }));
        }
    }

    /// After a sync group's notifies for `word`.
    pub(super) fn mail_group(&mut self, name: &str, word: &'static str) {
        let Some(mailer) = self.mailer.clone() else {
            return;
        };
        let own = self
            .config
            .sync_groups
            .iter()
            .find(|g| g.name == name)
            .and_then(|g| g.smtp_alert);
        if !smtp::vrrp_alert(&self.config, own) || self.no_email_faults(word) {
            return;
        }
        if let Some((what, body)) = smtp::bodies::group(word) {
            self.effects.push(Effect::Mail(Mail {
                mailer,
                group: true,
                name: name.to_string(),
                what,
                body,
            }));
        }
    }
}
