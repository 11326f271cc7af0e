#!/usr/bin/env python3
"""Benchmark: `irsa-doctor check` against the loopback STS stand-in, beside
the manual method, `aws sts get-caller-identity` (AWS CLI from PyPI) with the
same web-identity environment and the same endpoint.

Usage: python3 bench/check.py [runs]      (default 20 runs of each)

Needs the release binary and stand-in (built by this script with cargo),
GNU time (`apt-get install time`) and the AWS CLI (`.venv/bin/aws`, else
PATH; `.venv/bin/pip install awscli` puts it there).
Prints the median wall time and the peak RSS of each, their ratios, and the
release binary's size. With IRSA_DOCTOR_BASELINE=path, another build's
`check` runs too, interleaved, to compare two builds. Nothing leaves
127.0.0.1; IMDS is disabled.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import standin as standin_proc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 20


GNU_TIME = "/usr/bin/time"


def run_measured(argv, env):
    """Runs argv under GNU time; returns (wall seconds, peak RSS KiB, exit
    code, output). Peak RSS comes from GNU time, not from this process's
    wait4: Linux counts a child's memory from before its exec into ru_maxrss,
    and before exec a child of Python is a copy of Python."""
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        proc = subprocess.run([GNU_TIME, "-f", "%M", "-o", report.name, *argv], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        peak_kib = int(report.read().strip().splitlines()[-1])
    return wall, peak_kib, proc.returncode, proc.stdout.decode(errors="replace")


def main():
    if not os.path.exists(GNU_TIME):
        sys.exit("GNU time is missing: apt-get install time")
    subprocess.run(["cargo", "build", "--release", "--bin", "irsa-doctor", "--example", "standin"],
                   cwd=ROOT, check=True)
    doctor = os.path.join(ROOT, "target/release/irsa-doctor")
    standin = os.path.join(ROOT, "target/release/examples/standin")
    aws = os.path.join(ROOT, ".venv/bin/aws")
    if not os.path.exists(aws):
        aws = shutil.which("aws") or sys.exit("the AWS CLI is missing: run bash .ci/run, or pip install awscli")

    server, pod_env = standin_proc.start(standin)

    home = tempfile.mkdtemp()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "AWS_CONFIG_FILE": os.path.join(home, "config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "credentials"),
        "AWS_STS_REGIONAL_ENDPOINTS": "regional",
        **pod_env,
    }
    tools = {
        "irsa-doctor check": [doctor, "check", "--termination-log", "off"],
        "aws sts get-caller-identity": [aws, "sts", "get-caller-identity"],
    }
    # IRSA_DOCTOR_BASELINE=path/to/older/irsa-doctor adds a row for another
    # build, to show a change is within noise; runs are interleaved, so
    # both builds see the same machine.
    baseline = os.environ.get("IRSA_DOCTOR_BASELINE")
    if baseline:
        tools["irsa-doctor check (baseline)"] = [baseline, "check", "--termination-log", "off"]
    samples = {name: ([], []) for name in tools}
    try:
        for _ in range(RUNS):
            for name, argv in tools.items():
                wall, peak, code, out = run_measured(argv, env)
                if code != 0:
                    sys.exit(f"{name} failed (exit {code}):\n{out}")
                samples[name][0].append(wall)
                samples[name][1].append(peak)
    finally:
        server.stdin.close()
        server.wait()
    results = {name: (statistics.median(w), max(r), min(w)) for name, (w, r) in samples.items()}

    print(f"\n{RUNS} runs each, loopback STS stand-in, {os.cpu_count()} cores")
    print(f"{'':30} {'median wall':>12} {'best wall':>10} {'peak RSS':>10}")
    for name, (median, peak, best) in results.items():
        print(f"{name:30} {median * 1000:9.1f} ms {best * 1000:7.1f} ms {peak / 1024:7.1f} MiB")
    d_wall, d_rss, _ = results["irsa-doctor check"]
    c_wall, c_rss, _ = results["aws sts get-caller-identity"]
    print(f"\nwall time: irsa-doctor is {c_wall / d_wall:.1f}x faster (target >= 30x)")
    print(f"peak RSS:  irsa-doctor uses {c_rss / d_rss:.1f}x less memory (target >= 6x)")
    size = os.path.getsize(doctor)
    print(f"release binary: {size / 1e6:.2f} MB ({size} bytes; target <= 8 MB)")


if __name__ == "__main__":
    main()
