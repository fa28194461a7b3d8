//! Tracked objects and VRRP side blocks: vrrp_script, vrrp_track_process,
//! track_file, vrrp_sync_group, garp_group, track_group,
//! interface_up_down_delays, bfd_instance.

use super::Parser;
use super::values::parse_ip;
use crate::diag::{DiagKind, Severity};
use crate::lexer::Line;
use crate::model::{
    BfdInstance, GarpGroup, NotifyScripts, ParamMatch, SyncGroup, TrackFile, TrackGroup,
    TrackProcess, UpDownDelay, VrrpScript,
};

impl<'a> Parser<'a> {
    pub(crate) fn vrrp_script(&mut self, l: &'a Line) {
        let Some(name) = self.read_string(l, 1) else {
            self.skip_block();
            return;
        };
        let mut s = VrrpScript {
            name: name.clone(),
            span: l.span.clone(),
            script: None,
            interval: 1.0,
            timeout: None,
            weight: 0,
            weight_reverse: false,
            rise: 1,
            fall: 1,
            user: None,
            group: None,
            init_fail: false,
            end_span: None,
        };
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| {
            match l.first() {
                "script" => s.script = p.script_without_user(l, 1),
                // Whole seconds in 2.2.7.
                "interval" => match p.read_unsigned(l, 1, 1, 4294) {
                    Some(v) => s.interval = v as f64,
                    None if l.len() > 1 => {
                        let msg = format!(
                            "({}): vrrp script interval '{}' must be between 1 and 4294 - ignoring",
                            s.name,
                            l.word(1).unwrap_or("")
                        );
                        p.warn(DiagKind::InvalidValue, l, msg);
                    }
                    None => {}
                },
                "timeout" => s.timeout = p.read_timer(l, 1, 0.000001, 4294.967295),
                "weight" => {
                    if let Some(w) = p.read_i32(l, 1, -253, 253) {
                        s.weight = w;
                    }
                    s.weight_reverse = l.word(2) == Some("reverse");
                }
                "rise" => {
                    if let Some(v) = p.read_u32(l, 1, 1, u32::MAX) {
                        s.rise = v;
                    }
                }
                "fall" => {
                    if let Some(v) = p.read_u32(l, 1, 1, u32::MAX) {
                        s.fall = v;
                    }
                }
                "user" => {
                    s.user = p.read_string(l, 1);
                    s.group = l.word(2).map(str::to_string);
                }
                "init_fail" => s.init_fail = true,
                _ => return false,
            }
            true
        });
        s.end_span = self.last_line.map(|l| l.span.clone());
        if let Some(sc) = &mut s.script {
            sc.user = s.user.clone();
            sc.group = s.group.clone();
        }
        if s.script.is_none() {
            let span = self.last_line.map(|l| l.span.clone());
            self.diags.push(
                Severity::Warning,
                DiagKind::Semantic,
                span.as_ref(),
                format!("No script set for vrrp_script {name} - removing"),
                None,
            );
            return;
        }
        self.config.vrrp_scripts.push(s);
    }

    pub(crate) fn track_process(&mut self, l: &'a Line) {
        let Some(name) = self.read_string(l, 1) else {
            self.skip_block();
            return;
        };
        let mut t = TrackProcess {
            name,
            span: l.span.clone(),
            process: None,
            params: Vec::new(),
            param_match: None,
            full_command: false,
            weight: 0,
            weight_reverse: false,
            quorum: 1,
            quorum_max: None,
            fork_delay: None,
            terminate_delay: None,
            extra: Vec::new(),
        };
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| {
            match l.first() {
                "process" => {
                    if let Some(first) = p.arg(l, 1) {
                        t.process = Some(first.to_string());
                        t.params = l.args().skip(1).map(str::to_string).collect();
                        if !t.params.is_empty() {
                            t.param_match.get_or_insert(ParamMatch::Exact);
                            t.full_command = true;
                        }
                    }
                }
                "param_match" => {
                    t.param_match = match l.word(1) {
                        None => Some(ParamMatch::Exact),
                        Some("initial") => Some(ParamMatch::Initial),
                        Some("partial") => Some(ParamMatch::Partial),
                        Some(other) => {
                            let msg = format!("Invalid param_match type {other} - ignoring");
                            p.warn(DiagKind::InvalidValue, l, msg);
                            return true;
                        }
                    };
                    t.full_command = true;
                }
                "weight" => {
                    if let Some(w) = p.read_i32(l, 1, -254, 254) {
                        t.weight = w;
                    }
                    t.weight_reverse = l.word(2) == Some("reverse");
                }
                "quorum" => {
                    if let Some(q) = p.read_u32(l, 1, 1, 65535) {
                        t.quorum = q;
                    }
                }
                "quorum_max" => {
                    t.quorum_max = p.read_u32(l, 1, 0, 65535);
                    if t.quorum_max == Some(0) {
                        t.quorum = 0;
                    }
                }
                "delay" | "fork_delay" | "terminate_delay" => {
                    let d = p.read_timer(l, 1, 0.000001, 3600.0);
                    if l.first() != "fork_delay" {
                        t.terminate_delay = d.or(t.terminate_delay);
                    }
                    if l.first() != "terminate_delay" {
                        t.fork_delay = d.or(t.fork_delay);
                    }
                }
                "full_command" => t.full_command = true,
                _ => return false,
            }
            true
        });
        self.config.track_processes.push(t);
    }

    pub(crate) fn track_file(&mut self, l: &'a Line) {
        let Some(name) = self.read_string(l, 1) else {
            self.skip_block();
            return;
        };
        let mut t = TrackFile {
            name,
            span: l.span.clone(),
            file: None,
            weight: 1,
            weight_reverse: false,
            init_file: None,
        };
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| {
            match l.first() {
                "file" => t.file = p.read_string(l, 1),
                "weight" => {
                    if let Some(w) = p.read_i32(l, 1, -254, 254) {
                        t.weight = w;
                    }
                    t.weight_reverse = l.word(2) == Some("reverse");
                }
                "init_file" => t.init_file = Some(l.args().map(str::to_string).collect()),
                _ => return false,
            }
            true
        });
        self.config.track_files.push(t);
    }

    pub(crate) fn sync_group(&mut self, l: &'a Line) {
        let Some(name) = self
            .word_or(l, 1, "vrrp_sync_group must have a name - skipping")
            .map(str::to_string)
        else {
            self.skip_block();
            return;
        };
        let mut g = SyncGroup {
            name,
            span: l.span.clone(),
            group: Vec::new(),
            track_interfaces: Vec::new(),
            track_scripts: Vec::new(),
            track_files: Vec::new(),
            track_processes: Vec::new(),
            track_bfds: Vec::new(),
            notify: NotifyScripts::default(),
            smtp_alert: None,
            global_tracking: false,
            sync_group_tracking_weight: false,
            extra: Vec::new(),
        };
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| {
            match l.first() {
                "group" => {
                    let words = p.value_words(l);
                    g.group.extend(words);
                }
                "track_interface" => g.track_interfaces = p.track_refs(l),
                "track_script" => g.track_scripts = p.track_refs(l),
                "track_file" => g.track_files = p.track_refs(l),
                "track_process" => g.track_processes = p.track_refs(l),
                "track_bfd" => g.track_bfds = p.track_refs(l),
                "notify" => g.notify.notify = p.script(l, 1),
                "notify_master" => g.notify.notify_master = p.script(l, 1),
                "notify_backup" => g.notify.notify_backup = p.script(l, 1),
                "notify_fault" => g.notify.notify_fault = p.script(l, 1),
                "notify_stop" => g.notify.notify_stop = p.script(l, 1),
                "smtp_alert" => g.smtp_alert = p.read_flag(l, 1),
                "global_tracking" => {
                    g.global_tracking = true;
                    let msg = format!(
                        "({}) global_tracking is deprecated. Use track_interface/script/file on the sync group",
                        g.name
                    );
                    p.warn(DiagKind::Deprecated, l, msg);
                }
                "sync_group_tracking_weight" => g.sync_group_tracking_weight = true,
                "notify_priority_changes" => {
                    let o = p.raw_option(l, false);
                    g.extra.push(o);
                }
                _ => return false,
            }
            true
        });
        self.config.sync_groups.push(g);
    }

    pub(crate) fn garp_group(&mut self, l: &'a Line) {
        let mut g = GarpGroup {
            span: l.span.clone(),
            garp_interval: None,
            gna_interval: None,
            interfaces: Vec::new(),
        };
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| {
            match l.first() {
                "garp_interval" => g.garp_interval = p.read_timer(l, 1, 0.0, 4294.967295),
                "gna_interval" => g.gna_interval = p.read_timer(l, 1, 0.0, 4294.967295),
                "interface" => {
                    if let Some(i) = p.read_string(l, 1) {
                        g.interfaces.push(i);
                    }
                }
                "interfaces" => {
                    let words = p.value_words(l);
                    g.interfaces.extend(words);
                }
                _ => return false,
            }
            true
        });
        self.config.garp_groups.push(g);
    }

    pub(crate) fn track_group(&mut self, l: &'a Line) {
        let Some(name) = self.read_string(l, 1) else {
            self.skip_block();
            return;
        };
        let mut g = TrackGroup {
            name,
            span: l.span.clone(),
            group: Vec::new(),
        };
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| {
            if l.first() != "group" {
                return false;
            }
            let words = p.value_words(l);
            g.group.extend(words);
            true
        });
        self.config.track_groups.push(g);
    }

    pub(crate) fn up_down_delays(&mut self, l: &'a Line) {
        for it in self.value_block(l) {
            let down = self.read_timer(it, 1, 0.0, 4294.967295).unwrap_or(0.0);
            let up = if it.len() > 2 {
                self.read_timer(it, 2, 0.0, 4294.967295).unwrap_or(0.0)
            } else {
                down
            };
            self.config.interface_up_down_delays.push(UpDownDelay {
                interface: it.first().to_string(),
                down,
                up,
                span: it.span.clone(),
            });
        }
    }

    pub(crate) fn bfd_instance(&mut self, l: &'a Line) {
        let Some(name) = self.read_string(l, 1) else {
            self.skip_block();
            return;
        };
        let mut b = BfdInstance {
            name,
            span: l.span.clone(),
            source_ip: None,
            neighbor_ip: None,
            min_rx: 10,
            min_tx: 10,
            idle_tx: 1000,
            multiplier: 5,
            passive: false,
            ttl: None,
            max_hops: None,
            multihop: false,
            weight: None,
            vrrp: false,
            checker: false,
            extra: Vec::new(),
        };
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| {
            match l.first() {
                "source_ip" => b.source_ip = p.read_ip(l, 1),
                "neighbor_ip" | "neighbour_ip" => b.neighbor_ip = p.read_ip(l, 1),
                "min_rx" => b.min_rx = p.read_u32(l, 1, 1, 1000).unwrap_or(b.min_rx),
                "min_tx" => b.min_tx = p.read_u32(l, 1, 1, 1000).unwrap_or(b.min_tx),
                "idle_tx" => b.idle_tx = p.read_u32(l, 1, 1, 1000).unwrap_or(b.idle_tx),
                "multiplier" => b.multiplier = p.read_u32(l, 1, 1, 255).unwrap_or(b.multiplier),
                "passive" => b.passive = true,
                "ttl" | "hoplimit" => b.ttl = p.read_u32(l, 1, 1, 255).map(|t| t as u8),
                "max_hops" => b.max_hops = p.read_u32(l, 1, 0, 255).map(|t| t as u8),
                "multihop" => b.multihop = true,
                "weight" => b.weight = p.read_i32(l, 1, -253, 253),
                "vrrp" => b.vrrp = true,
                "checker" => b.checker = true,
                _ => return false,
            }
            true
        });
        let _ = parse_ip;
        self.config.bfd_instances.push(b);
    }
}
