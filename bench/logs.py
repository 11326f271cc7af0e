#!/usr/bin/env python3
"""Benchmark: the log a persistently failing `irsa-doctor serve` writes, per
pod and per day at the defaults.

Usage: python3 bench/logs.py [checks] [outage seconds]   (default 30, 60)

Runs the release binary (built by this script with cargo) as `serve
--interval 1s`, at the default log level (RUST_LOG unset, text format),
against the loopback STS stand-in told to answer every
AssumeRoleWithWebIdentity with AccessDenied (a trust policy that does not
admit the pod: a definitive failure that persists). It counts the bytes
written to stdout and stderr together, in three parts:

  1. once: the start line and the first check's lines (its findings, its
     verdict, `first check done`);
  2. per check: the bytes of [checks] further checks, divided by [checks]
     (the SDK's own WARN lines came here, about 3.6 KB a check);
  3. a reminder: the lines of the first `still fail` reminder, which the
     log limiter writes 10 minutes after the first check's lines. The run
     waits for it, so it takes a little over 10 minutes.

  4. an outage: STS answers every AssumeRoleWithWebIdentity with a 500
     for [outage seconds] (each check retrying until its deadline), then
     with AccessDenied again; the bytes from the outage's start to the
     line that ends it ("STS answered again after N retries"), so the
     day's figure includes one outage of that length at --interval 1s,
     the worst case (60 checks a minute, each retrying).

and extrapolates to a day at the default --interval 5m: once + 288 x per
check + 9 x reminder + one outage. 288 is 86400 s / 300 s; 9 is the reminders of an
unchanged failure in a day at that interval (after 10 minutes, then at
doubling intervals up to 4 hours), which the unit test
`a_day_of_the_same_failure_at_the_default_interval_is_nine_reminders` in
src/monitor/limiter.rs pins. Checks are counted by the server's own
irsa_doctor_checks_total, not by sleeping. Nothing leaves loopback; IMDS is
disabled. BENCH_PROFILE=debug measures the debug build instead of building
the release one (the log's bytes do not depend on it).
"""
import os
import subprocess
import sys
import threading
import time

import serve as bench_serve
import standin as standin_proc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKS = int(sys.argv[1]) if len(sys.argv) > 1 else 30
OUTAGE = int(sys.argv[2]) if len(sys.argv) > 2 else 60
PROFILE = os.environ.get("BENCH_PROFILE", "release")
# At the default --interval 5m.
CHECKS_PER_DAY = 86400 // 300
REMINDERS_PER_DAY = 9
# The limiter's first reminder of an unchanged failure, plus slack.
REMINDER_WAIT = 600 + 90
TARGET = 10 * 1024


class Output:
    """serve's stdout and stderr, in one pipe, read by a thread that keeps
    every line and the running byte count."""

    def __init__(self, proc):
        self.lines = []
        self.bytes = 0
        self.changed = threading.Condition()
        self.proc = proc
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append(line)
                self.bytes += len(line)
                self.changed.notify_all()

    def wait_for(self, needle, limit):
        """The byte count once a line holding `needle` has been read."""
        with self.changed:
            if not self.changed.wait_for(lambda: any(needle in l for l in self.lines), limit):
                sys.exit(f"no {needle!r} line in {limit} s:\n{''.join(self.lines)}")
            return self.bytes


def wait_checks(base, n, limit):
    deadline = time.monotonic() + limit
    while bench_serve.checks_total(base) < n:
        if time.monotonic() > deadline:
            sys.exit(f"fewer than {n} checks in {limit} s")
        time.sleep(0.1)


def main():
    doctor, kit = standin_proc.build(ROOT, PROFILE)
    stand_in = standin_proc.StandIn(kit["standin"])
    stand_in.command("fail access-denied")
    port = bench_serve.free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent",
           "IRSA_DOCTOR_POD_NAME": "bench-pod", **stand_in.env}
    proc = subprocess.Popen(
        [doctor, "serve", "--listen", f"127.0.0.1:{port}", "--interval", "1s"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    out = Output(proc)
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()

    once = out.wait_for("first check done", 30)
    first = bench_serve.checks_total(base)
    wait_checks(base, first + CHECKS, 30 + 2 * CHECKS)
    with out.changed:
        after_checks = out.bytes
    # The checks between the first and the reminder add nothing more, so
    # the reminder's bytes are what came after the last count.
    before_reminder = out.wait_for("still fail", REMINDER_WAIT) - after_checks
    with out.changed:
        reminder_lines = [l for l in out.lines if "still fail" in l]
        before_outage, lines_before = out.bytes, len(out.lines)
    stand_in.command("fail server-error")
    outage_start = time.monotonic()
    out.wait_for("retrying", 60)
    time.sleep(max(0.0, OUTAGE - (time.monotonic() - outage_start)))  # the outage's length
    stand_in.command("fail access-denied")
    outage = out.wait_for("answered again after", 120) - before_outage
    with out.changed:
        outage_lines = out.lines[lines_before:]
    proc.terminate()
    proc.wait(timeout=10)
    stand_in.stop()
    elapsed = time.monotonic() - started

    per_check = (after_checks - once) / CHECKS
    reminder = before_reminder
    per_day = once + CHECKS_PER_DAY * per_check + REMINDERS_PER_DAY * reminder + outage
    retry_lines = sum("retrying" in l for l in outage_lines)
    print(f"irsa-doctor serve --interval 1s ({PROFILE} build), RUST_LOG unset, text logs, every "
          f"AssumeRoleWithWebIdentity answered AccessDenied; {elapsed:.0f} s:")
    print(f"  once (start line and first check)   {once:,} bytes")
    print(f"  per check, over {CHECKS} checks          {per_check:,.1f} bytes")
    print(f"  a reminder ({len(reminder_lines)} line, after 10 min) {reminder:,} bytes")
    print(f"  a {OUTAGE} s outage (500s), to its end line: {outage:,} bytes in "
          f"{len(outage_lines)} lines, {retry_lines} of them retry lines")
    print(f"Per pod per day at --interval 5m: {once:,} + {CHECKS_PER_DAY} x {per_check:,.1f} + "
          f"{REMINDERS_PER_DAY} x {reminder:,} + {outage:,} = {per_day:,.0f} bytes "
          f"({per_day / 1024:.1f} KiB; target {TARGET // 1024} KiB: "
          f"{'met' if per_day <= TARGET else 'NOT met'})")


if __name__ == "__main__":
    main()
