//! What both benchmarks read of a process from Linux's `/proc` (proc(5)).

fn proc_field(pid: u32, file: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default()
}

/// utime + stime of the whole process (every thread), in microseconds.
pub fn cpu_micros(pid: u32) -> u64 {
    let stat = proc_field(pid, "stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // After the command: state is field 3, utime 14 and stime 15 (proc(5)), in clock ticks.
    let ticks: u64 = fields.get(11).and_then(|t| t.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|t| t.parse().ok()).unwrap_or(0);
    ticks * 1_000_000 / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// A memory figure of `/proc/<pid>/status` in KB: `VmHWM` (the peak) or `VmRSS` (now).
pub fn memory_kb(pid: u32, field: &str) -> u64 {
    proc_field(pid, "status")
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
