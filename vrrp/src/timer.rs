//! A microsecond-precise sleep on a timerfd: tokio's timer wheel rounds deadlines up to the
//! next millisecond, which adds up to 1 ms to every takeover (keepalived uses a timerfd too).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

use tokio::io::unix::AsyncFd;

/// A sleep on a timerfd, to the microsecond.
pub struct PreciseTimer {
    fd: AsyncFd<OwnedFd>,
}

impl PreciseTimer {
    /// A disarmed timer.
    pub fn new() -> io::Result<PreciseTimer> {
        // SAFETY: plain timerfd_create; the fd is owned from here on.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw was just returned by timerfd_create.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: we own fd and hand it to AsyncFd, which keeps it open while registered.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(PreciseTimer { fd })
    }

    fn arm(&self, deadline: Instant) -> io::Result<()> {
        let d = deadline
            .saturating_duration_since(Instant::now())
            .max(std::time::Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: d.as_secs() as libc::time_t,
                tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
            },
        };
        // SAFETY: spec is a valid itimerspec; the old value is not requested.
        let r = unsafe {
            libc::timerfd_settime(
                self.fd.get_ref().as_raw_fd(),
                0,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Resolves at `deadline` (re-arms the timer: only one sleep at a time).
    pub async fn sleep_until(&self, deadline: Instant) -> io::Result<()> {
        self.arm(deadline)?;
        loop {
            let mut guard = self.fd.readable().await?;
            let mut buf = [0u8; 8];
            // SAFETY: buf is valid for 8 bytes.
            let n = unsafe {
                libc::read(
                    self.fd.get_ref().as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n == 8 {
                return Ok(());
            }
            // Readiness left over from an earlier, re-armed expiry.
            guard.clear_ready();
        }
    }
}
