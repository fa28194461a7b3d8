//! nginx as the real servers of the HTTP benchmark and the soak: one worker, keep-alive, each
//! answering every request with its name; stopped by the PID in its pid file.

use std::net::IpAddr;

use anyhow::Result;
use xlvs_tests::netns::Netns;

pub struct Nginx {
    pid_file: String,
    dir: String,
}

impl Nginx {
    pub fn start(ns: &Netns, addr: IpAddr, name: &str) -> Result<Nginx> {
        let dir = format!("/tmp/xlvs-bench-nginx-{}-{name}", std::process::id());
        std::fs::create_dir_all(format!("{dir}/tmp"))?;
        let conf = format!(
            "worker_processes 1; daemon on; pid {dir}/nginx.pid;\n\
             error_log {dir}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{ access_log off; keepalive_requests 1000000; keepalive_timeout 60s;\n\
               client_body_temp_path {dir}/tmp; proxy_temp_path {dir}/tmp; fastcgi_temp_path {dir}/tmp;\n\
               uwsgi_temp_path {dir}/tmp; scgi_temp_path {dir}/tmp;\n\
               server {{ listen {addr}:80 backlog=4096; location / {{ default_type text/plain; return 200 \"{name}\\n\"; }} }} }}\n"
        );
        std::fs::write(format!("{dir}/nginx.conf"), conf)?;
        ns.exec("nginx", &["-p", &dir, "-c", &format!("{dir}/nginx.conf")])?;
        Ok(Nginx {
            pid_file: format!("{dir}/nginx.pid"),
            dir,
        })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file)
            && let Ok(pid) = pid.trim().parse::<i32>()
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
