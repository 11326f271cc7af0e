//! The standard `process_*` figures of the Prometheus client libraries
//! (start time, CPU seconds, resident and virtual memory, open and maximum
//! descriptors), read from `/proc` on each scrape.
//!
//! Read by hand rather than with a crate: the ones that do it (`procfs`,
//! `prometheus`'s process collector) bring their own dependency trees for
//! a handful of numbers. Every read is bounded (`/proc/self/stat` and
//! `status` are a few KiB; `/proc/stat` is read line by line up to 1 MiB,
//! however many CPUs and interrupts it lists). Off Linux, or when `/proc`
//! is not mounted, [`read`] returns `None` and no `process_*` series is
//! served.
//!
//! A leaf: imports nothing of the crate.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};

/// The kernel's `USER_HZ`, the unit of `/proc/self/stat`'s times. It is
/// 100 on every architecture Linux and Rust share; asking `sysconf` would
/// take `unsafe`, which this crate forbids.
const USER_HZ: f64 = 100.0;

/// What a scrape reports about this process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    pub start_time_seconds: f64,
    pub cpu_seconds: f64,
    pub resident_memory_bytes: u64,
    pub virtual_memory_bytes: u64,
    pub open_fds: u64,
    pub max_fds: Option<u64>,
}

/// This process's figures now; `None` without a readable `/proc`.
pub fn read() -> Option<Figures> {
    let stat = small("/proc/self/stat")?;
    let status = small("/proc/self/status")?;
    let (ticks_cpu, ticks_since_boot) = stat_times(&stat)?;
    let boot = boot_time("/proc/stat")?;
    Some(Figures {
        start_time_seconds: boot as f64 + ticks_since_boot as f64 / USER_HZ,
        cpu_seconds: ticks_cpu as f64 / USER_HZ,
        resident_memory_bytes: status_kib(&status, "VmRSS:")? * 1024,
        virtual_memory_bytes: status_kib(&status, "VmSize:")? * 1024,
        open_fds: open_fds()?,
        max_fds: small("/proc/self/limits").and_then(|l| max_open_files(&l)),
    })
}

/// A `/proc` file of a few KiB, read up to 64 KiB.
fn small(path: &str) -> Option<String> {
    let mut text = String::new();
    File::open(path)
        .ok()?
        .take(64 * 1024)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// From `/proc/self/stat`: user plus system time, and the start time
/// since boot, both in ticks. The command name (field 2) is in
/// parentheses and may hold spaces or `)`, so fields count from the last
/// `)`: after it, `utime` and `stime` are the 12th and 13th, `starttime`
/// the 20th (fields 14, 15 and 22 of proc(5)).
fn stat_times(stat: &str) -> Option<(u64, u64)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let num = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some((num(11)? + num(12)?, num(19)?))
}

/// The boot time, in Unix seconds: `/proc/stat`'s `btime` line.
fn boot_time(path: &str) -> Option<u64> {
    let reader = BufReader::new(File::open(path).ok()?.take(1024 * 1024));
    reader.split(b'\n').map_while(Result::ok).find_map(|line| {
        std::str::from_utf8(line.strip_prefix(b"btime ")?)
            .ok()?
            .trim()
            .parse()
            .ok()
    })
}

/// A `kB` figure of `/proc/self/status`, such as `VmRSS:   7424 kB`.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Entries of `/proc/self/fd`, counted up to a million (the directory's
/// own descriptor, open while it is read, included, as client_golang does).
fn open_fds() -> Option<u64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(entries.take(1 << 20).count() as u64)
}

/// The soft limit of `Max open files` in `/proc/self/limits`; `None` when
/// it is `unlimited`.
fn max_open_files(limits: &str) -> Option<u64> {
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_name_may_hold_spaces_and_parentheses() {
        // proc(5): pid (comm) state ppid pgrp session tty tpgid flags minflt
        // cminflt majflt cmajflt utime stime cutime cstime priority nice
        // num_threads itrealvalue starttime ...
        let stat = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 12345 99 ...";
        assert_eq!(stat_times(stat), Some((300, 12345)));
        assert_eq!(stat_times("garbage"), None);
    }

    #[test]
    fn status_and_limits_figures_are_parsed() {
        let status = "Name:\tirsa-doctor\nVmSize:\t  20480 kB\nVmRSS:\t    7424 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(7424));
        assert_eq!(status_kib(status, "VmSize:"), Some(20480));
        assert_eq!(status_kib(status, "VmSwap:"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1048576              1048576              files\n";
        assert_eq!(max_open_files(limits), Some(1_048_576));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(max_open_files(unlimited), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_figures_that_make_sense() {
        let f = read().expect("/proc is readable on Linux");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        // Started within the last day, and not in the future (one tick of
        // slack for the rounding of boot time to whole seconds).
        assert!(f.start_time_seconds <= now + 1.0, "{f:?}");
        assert!(f.start_time_seconds > now - 86_400.0, "{f:?}");
        assert!(f.resident_memory_bytes > 1024 * 1024, "{f:?}");
        assert!(f.virtual_memory_bytes >= f.resident_memory_bytes, "{f:?}");
        // stdin, stdout, stderr and the directory being read.
        assert!(f.open_fds >= 4, "{f:?}");
        assert!(f.max_fds.is_none_or(|max| max >= f.open_fds), "{f:?}");
    }
}
