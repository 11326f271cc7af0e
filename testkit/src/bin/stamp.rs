//! `cargo run -p testkit --bin stamp`: the app of `bench/exec.py`. It
//! writes one line the moment it starts, so the benchmark can time "exec
//! start to the app's first instruction" from when that line arrives, then
//! its own memory as the kernel reports it (`VmRSS`, and `VmHWM`, the peak
//! since this program's execve).

use std::io::Write;

fn main() {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(b"started\n").and_then(|()| out.flush());
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status
        .lines()
        .filter(|l| l.starts_with("VmRSS:") || l.starts_with("VmHWM:"))
    {
        let _ = writeln!(
            out,
            "{}",
            line.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
}
