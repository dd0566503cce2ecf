//! Figures about this process, from `/proc/self/status` (0 elsewhere).

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
