//! MISC_CHECK: run `misc_path`; exit 0 is up, anything else down, except
//! with `misc_dynamic` where 2..=255 is up with weight `code - 2` (and 0
//! restores the configured weight). A script still running at
//! `misc_timeout` (default: the virtual server's delay_loop) is killed with
//! its process group and counts as a failure.

use super::Outcome;
use crate::script::{ScriptExit, command_for, run_command};
use keepalived_conf::model::Script;
use std::time::Duration;

/// MISC_CHECK: a script's exit status decides.
#[derive(Debug)]
pub struct MiscProbe {
    /// The script.
    pub script: Script,
    /// Longest it may run (then it is killed and counts as failed).
    pub timeout: Duration,
    /// `misc_dynamic`: exit codes 2-255 set the weight.
    pub dynamic: bool,
    /// User it runs as.
    pub user: Option<String>,
    /// FMT_CHK / FMT_VS for messages.
    pub label: String,
}

impl MiscProbe {
    /// One run.
    pub async fn run(&self) -> Outcome {
        let prog = self.script.argv.first().cloned().unwrap_or_default();
        let cmd = command_for(&self.script, self.user.as_deref(), None);
        let exit = match run_command(cmd, Some(self.timeout)).await {
            Ok(e) => e,
            Err(e) => {
                return Outcome::fail(format!(
                    "Misc check for [{}] by [{prog}] failed (cannot run: {e}).",
                    self.label
                ));
            }
        };
        let msg = |what: &str| format!("Misc check for [{}] by [{prog}] {what}.", self.label);
        match exit {
            ScriptExit::Exited(0) => {
                let mut o = Outcome::ok(msg("succeeded"));
                if self.dynamic {
                    o.dynamic_weight = Some(None);
                }
                o
            }
            ScriptExit::Exited(c) if self.dynamic && (2..=255).contains(&c) => {
                let mut o = Outcome::ok(msg(&format!("succeeded (weight {})", c - 2)));
                o.dynamic_weight = Some(Some(c - 2));
                o
            }
            ScriptExit::Exited(c) => {
                Outcome::fail(msg(&format!("failed (exited with status {c})")))
            }
            ScriptExit::Signaled(s) => Outcome::fail(msg(&format!("failed (due to signal {s})"))),
            ScriptExit::TimedOut => Outcome::fail(msg("timed out")),
        }
    }
}
