//! TCP ports for vpcd readers: free, reserved across processes and users with lock files, and
//! outside the kernel's ephemeral port range.

use std::fs::{self, File};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};

use crate::SandboxError;

/// Whether something listens on TCP `port` (vpcd binds when pcscd creates the reader).
pub(crate) fn is_listening(port: u16) -> bool {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        fs::read_to_string(table).is_ok_and(|text| {
            text.lines().skip(1).any(|line| {
                let mut cols = line.split_whitespace();
                let local = cols.nth(1).unwrap_or_default();
                let state = cols.nth(1).unwrap_or_default();
                state == "0A"
                    && local
                        .rsplit(':')
                        .next()
                        .and_then(|p| u16::from_str_radix(p, 16).ok())
                        .is_some_and(|p| p == port)
            })
        })
    })
}

/// The kernel's ephemeral port range (`ip_local_port_range`), where it picks the local port of
/// outgoing connections; Linux's default when unreadable.
fn ephemeral_ports() -> (u16, u16) {
    let parse = |text: String| -> Option<(u16, u16)> {
        let mut it = text.split_whitespace().map(|n| n.parse::<u16>().ok());
        Some((it.next()??, it.next()??))
    };
    fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(parse)
        .unwrap_or((32_768, 60_999))
}

/// Where vpcd ports are picked: a window of at least `count` ports outside the ephemeral range
/// `(low, high)`, below it when there is room (above 1024: no privileged port), else above it;
/// the range itself only when the kernel leaves no room outside.
fn port_window(count: u16, (low, high): (u16, u16)) -> std::ops::Range<u16> {
    const WINDOW: u16 = 10_000;
    let room = count.saturating_add(100);
    if low.saturating_sub(1024) >= room {
        low.saturating_sub(WINDOW).max(1024)..low
    } else if u16::MAX - high >= room {
        high + 1..high.saturating_add(WINDOW)
    } else {
        36_000..56_000
    }
}

/// The shared directory of port lock files: every user's sandboxes use the same ports, so they
/// share the locks. World-writable and sticky like /tmp; the files themselves are made
/// world-writable too (a run as root must not lock a later user's run out). Falls back to a
/// directory of this user's own when the shared one is not writable.
fn lock_dir() -> Result<PathBuf, SandboxError> {
    use std::os::unix::fs::PermissionsExt;
    let shared = std::env::temp_dir().join("cpx-testkit-ports");
    fs::create_dir_all(&shared)?;
    let _ = fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777));
    if rustix::fs::access(&shared, rustix::fs::Access::WRITE_OK).is_ok() {
        return Ok(shared);
    }
    let own = std::env::temp_dir().join(format!(
        "cpx-testkit-ports-{}",
        rustix::process::geteuid().as_raw()
    ));
    fs::create_dir_all(&own)?;
    Ok(own)
}

/// The lock file of `port`, opened for `flock` (which needs no write access: a file another
/// user created before the files were made world-writable is opened read-only).
fn open_lock(dir: &Path, port: u16) -> std::io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = dir.join(port.to_string());
    match fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o666)
        .open(&path)
    {
        Ok(file) => {
            // The umask took bits away from 0o666; only the owner can put them back.
            let _ = file.set_permissions(fs::Permissions::from_mode(0o666));
            Ok(file)
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => File::open(&path),
        Err(e) => Err(e),
    }
}

/// Find `count` consecutive free ports and hold a lock file on each while the sandbox lives.
pub(crate) fn reserve_ports(count: usize) -> Result<(u16, Vec<File>), SandboxError> {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let lock_dir = lock_dir()?;
    let count = u16::try_from(count).map_err(|_| SandboxError::Config(format!("{count} ports")))?;
    let window = port_window(count, ephemeral_ports());
    let span = window.end - window.start - count;
    let seed = (std::process::id() as u16).wrapping_mul(97);
    for attempt in 0..400u16 {
        let offset = seed
            .wrapping_add(NEXT.fetch_add(count, Ordering::Relaxed))
            .wrapping_add(attempt.wrapping_mul(7));
        let base = window.start + offset % span;
        let mut locks = Vec::new();
        let mut ok = true;
        for port in base..base + count {
            let Ok(file) = open_lock(&lock_dir, port) else {
                ok = false;
                break;
            };
            let locked =
                rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok();
            if !locked || TcpListener::bind(("0.0.0.0", port)).is_err() || is_listening(port) {
                ok = false;
                break;
            }
            locks.push(file);
        }
        if ok {
            for f in &mut locks {
                // Who holds it, for a curious human; a read-only lock file just stays empty.
                let _ = f.set_len(0).and_then(|()| writeln!(f, "{}", std::process::id()));
            }
            return Ok((base, locks));
        }
    }
    Err(SandboxError::Startup(
        "no free range of TCP ports for vpcd".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_picked_outside_the_ephemeral_range() {
        assert_eq!(port_window(8, (32_768, 60_999)), 22_768..32_768);
        assert_eq!(port_window(8, (5_000, 60_999)), 1_024..5_000);
        // No room below: above the range.
        assert_eq!(port_window(8, (1_024, 50_000)), 50_001..60_000);
        assert_eq!(port_window(8, (1_100, 65_000)), 65_001..65_535);
        // No room anywhere: the old window, inside the range.
        assert_eq!(port_window(8, (1_024, 65_535)), 36_000..56_000);
    }

    #[test]
    fn reserved_ports_are_below_the_ephemeral_range_and_locked_for_everyone() {
        use std::os::unix::fs::PermissionsExt;
        let (low, high) = ephemeral_ports();
        let (base, locks) = reserve_ports(4).unwrap();
        assert_eq!(locks.len(), 4);
        let window = port_window(4, (low, high));
        assert!(
            window.contains(&base) && window.contains(&(base + 3)),
            "{base} not in {window:?}"
        );
        assert!(
            base + 3 < low || base > high,
            "{base}: inside the ephemeral range {low}-{high}"
        );
        let dir = lock_dir().unwrap();
        for port in base..base + 4 {
            let mode = fs::metadata(dir.join(port.to_string()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o666, 0o666, "lock file of {port}: mode {mode:o}");
            // Held: another reservation cannot take it.
            let file = open_lock(&dir, port).unwrap();
            assert!(rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err());
        }
        let mode = fs::metadata(&dir).unwrap().permissions().mode();
        if dir.ends_with("cpx-testkit-ports") {
            assert_eq!(mode & 0o1777, 0o1777, "shared lock directory: mode {mode:o}");
        }
    }
}
