#!/usr/bin/env python3
"""Benchmark: `irsa-doctor exec -- APP` on a healthy pod, against the
loopback stand-ins, for each mechanism.

- Time to the app's first instruction: from the moment irsa-doctor is
  started to the moment the app's first line (written as its first act,
  testkit/src/bin/stamp.rs) arrives on the pipe, for `irsa-doctor exec -- stamp`,
  and for `irsa-doctor check` followed by `stamp`, as an init container
  and the app would run. Target: exec within 1.2x of check alone.
- The app's memory: the app's own VmRSS and VmHWM (its peak since its
  execve), run through exec and run directly. Once execve has run, none of
  irsa-doctor's memory is left in the app.

Usage: python3 bench/exec.py [runs]      (default 30 runs of each)

Builds the release binary, the stand-in and the stamp with cargo (in
CARGO_TARGET_DIR if set). Nothing leaves 127.0.0.1; IMDS is disabled.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

import standin as standin_proc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 30


def first_line_after(argv, env):
    """Starts argv; returns (seconds until its first stdout line, all of
    stdout, exit code)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    first = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    rest = proc.stdout.read()
    code = proc.wait()
    return elapsed, (first + rest).decode(), code


def check_then(doctor, stamp, env):
    """`check` to completion, then the app: an init container, then the
    app's container (without the kubelet's own delay between them)."""
    start = time.perf_counter()
    code = subprocess.run([doctor, "check", "--termination-log", "off"], env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode
    if code != 0:
        sys.exit(f"check failed (exit {code})")
    proc = subprocess.Popen([stamp], env=env, stdout=subprocess.PIPE)
    first = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    rest = proc.stdout.read()
    proc.wait()
    return elapsed, (first + rest).decode()


def memory(out):
    """{"VmRSS": KiB, "VmHWM": KiB} from the stamp's output."""
    found = {}
    for line in out.splitlines():
        key, _, value = line.partition(": ")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def main():
    doctor, kit = standin_proc.build(ROOT, kit_bins=("standin", "stamp"))
    stamp = kit["stamp"]
    stand_in = standin_proc.StandIn(kit["standin"])
    home = tempfile.mkdtemp()
    base = {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "AWS_CONFIG_FILE": os.path.join(home, "config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "credentials"),
    }
    envs = {"IRSA": {**base, **stand_in.env},
            "Pod Identity": {**base, **stand_in.pod_identity_env}}
    rows = {}
    try:
        for _ in range(RUNS):
            for mechanism, env in envs.items():
                ex, out, code = first_line_after([doctor, "exec", "--", stamp], env)
                if code != 0 or not out.startswith("started\n"):
                    sys.exit(f"{mechanism}: exec failed (exit {code}):\n{out}")
                ch, _ = check_then(doctor, stamp, env)
                _, direct, _ = first_line_after([stamp], env)
                row = rows.setdefault(mechanism, ([], [], [], []))
                row[0].append(ex)
                row[1].append(ch)
                row[2].append(memory(out))
                row[3].append(memory(direct))
    finally:
        stand_in.stop()

    print(f"\n{RUNS} runs each, interleaved, loopback stand-ins, {os.cpu_count()} cores")
    for mechanism, (ex, ch, via, direct) in rows.items():
        e, c = statistics.median(ex), statistics.median(ch)
        print(f"\n{mechanism}: start to the app's first line")
        print(f"  irsa-doctor exec -- stamp        median {e * 1000:6.1f} ms, best {min(ex) * 1000:6.1f} ms")
        print(f"  irsa-doctor check; then stamp    median {c * 1000:6.1f} ms, best {min(ch) * 1000:6.1f} ms")
        print(f"  exec / (check, then stamp): {e / c:.2f}x by the median (target <= 1.2x)")
        for key in ("VmRSS", "VmHWM"):
            v = statistics.median(m[key] for m in via)
            d = statistics.median(m[key] for m in direct)
            print(f"  the app's {key}: {v} KiB through exec, {d} KiB run directly")


if __name__ == "__main__":
    main()
