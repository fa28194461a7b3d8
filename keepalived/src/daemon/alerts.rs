//! The daemon's own SMTP alerts, as keepalived's checker process sends them besides the
//! checkers' (those go out from `healthcheck`): quorum changes of a virtual server
//! (`[rid] Virtualserver VS - UP|DOWN`, `=> Gained quorum Q+H=T <= W <=` …) and live reals a
//! reload removes (`=> Removing <=`). Nothing is sent at stop: keepalived sends those only
//! with `omega`.

use keepalived_conf::model::{KeepalivedConfig, VirtualServer};
use keepalived_scripts::smtp::{self, About, Mailer};

use super::health::{HealthTable, QuorumChange, RealKey, VsKey};

fn vs_alert(cfg: &KeepalivedConfig, vs: &VirtualServer) -> bool {
    smtp::checker_alert(cfg, vs.smtp_alert, None)
}

/// A virtual server's quorum changed.
pub fn quorum(cfg: &KeepalivedConfig, vs: &VirtualServer, c: &QuorumChange) {
    if !vs_alert(cfg, vs) {
        return;
    }
    let Some(m) = Mailer::from_config(cfg) else {
        return;
    };
    let body = smtp::bodies::quorum(c.up, c.init, vs.quorum, vs.hysteresis, c.threshold, c.sum);
    let key = VsKey::of(vs).to_string();
    m.send(
        &About::Virtual(&key),
        if c.up { "UP" } else { "DOWN" },
        &body,
    );
}

/// Live reals of `old` that `new` no longer has.
pub fn removed_reals(old: &KeepalivedConfig, new: &KeepalivedConfig, health: &HealthTable) {
    let Some(m) = Mailer::from_config(old) else {
        return;
    };
    for vs in &old.virtual_servers {
        let key = VsKey::of(vs);
        let kept = new.virtual_servers.iter().find(|n| VsKey::of(n) == key);
        for rs in &vs.real_servers {
            let rk = RealKey::of(rs);
            let still = kept.is_some_and(|n| n.real_servers.iter().any(|r| RealKey::of(r) == rk));
            if still
                || !health.real(&key, rs).alive
                || !smtp::checker_alert(old, vs.smtp_alert, rs.smtp_alert)
            {
                continue;
            }
            let rs_name = rk.trio(&key);
            let vs_name = key.to_string();
            m.send(
                &About::Real {
                    rs: &rs_name,
                    vs: &vs_name,
                },
                "DOWN",
                smtp::bodies::REMOVING,
            );
        }
    }
}
