//! This process and the servers it starts: its memory figures, from
//! `/proc/self/status` (0 elsewhere), and an `orderdock serve` run as a child
//! process (for the benchmarks and the crash tests).

/// Peak resident set size of this process, from `/proc/self/status` (0 elsewhere).
pub fn rss_peak_bytes() -> u64 {
    proc_status_kib("VmHWM:").map_or(0, |kib| kib * 1024)
}

/// Resident set size of this process now, from `/proc/self/status` (0 elsewhere).
pub fn rss_now_bytes() -> u64 {
    proc_status_kib("VmRSS:").map_or(0, |kib| kib * 1024)
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// A child `orderdock serve`, killed on drop.
#[derive(Debug)]
pub struct ServerChild(pub std::process::Child);

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `exe serve` on `data_dir` (a free loopback port, `extra` flags
/// after) and returns it with its address, read from its log line.
///
/// # Errors
/// When it cannot start or exits before listening.
pub fn spawn_server(
    exe: &std::path::Path,
    data_dir: &std::path::Path,
    extra: &[&str],
) -> std::io::Result<(ServerChild, String)> {
    spawn_server_on(exe, "127.0.0.1:0", data_dir, extra)
}

/// As [`spawn_server`], listening on `listen` (to restart a server on the address it had).
///
/// # Errors
/// When it cannot start or exits before listening.
pub fn spawn_server_on(
    exe: &std::path::Path,
    listen: &str,
    data_dir: &std::path::Path,
    extra: &[&str],
) -> std::io::Result<(ServerChild, String)> {
    use std::io::{BufRead, BufReader};
    let failed = |e: &dyn std::fmt::Display| std::io::Error::other(format!("starting the server: {e}"));
    let mut child = std::process::Command::new(exe)
        .args(["serve", "--listen", listen, "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("ORDERDOCK_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| failed(&e))?;
    let stderr = child.stderr.take().ok_or_else(|| failed(&"no stderr"))?;
    let child = ServerChild(child);
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line.map_err(|e| failed(&e))?;
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let address = rest.split_whitespace().next().unwrap_or_default().to_owned();
            // Keep draining its log so it never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return Ok((child, address));
        }
    }
    Err(failed(&"it exited before listening"))
}
