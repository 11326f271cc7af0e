#!/usr/bin/env python3
"""Benchmark: `irsa-doctor check` against the loopback stand-ins, beside the
manual method, `aws sts get-caller-identity` (AWS CLI v1 from PyPI), for
each mechanism, in the same environment and against the same endpoints:

- IRSA: the web-identity pair (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE),
  STS at AWS_ENDPOINT_URL_STS;
- EKS Pod Identity: AWS_CONTAINER_CREDENTIALS_FULL_URI on loopback (the
  agent stand-in) and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, STS at
  AWS_ENDPOINT_URL_STS.

Usage: python3 bench/check.py [runs]      (default 20 runs of each)

Needs the release binary and stand-in (built by this script with cargo, in
CARGO_TARGET_DIR if set), GNU time (`apt-get install time`) and the AWS CLI
v1 at 1.30 or later, the first with EKS Pod Identity's token file: the one
AWS_CLI names, else `.venv/bin/aws`, else PATH. To install it:
    python3 -m venv .venv && .venv/bin/pip install 'awscli>=1.30'
Prints the median and best wall time and the peak RSS of each, their
ratios, the calls each run made to the stand-ins (agent, STS), and the
release binary's size. With IRSA_DOCTOR_BASELINE=path, another build's
`check` runs too, interleaved, to compare two builds. Nothing leaves
127.0.0.1; IMDS is disabled.
"""
import os
import re
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
# The first AWS CLI v1 (and v2) releases with EKS Pod Identity's token file.
CLI_MINIMUM = {1: (1, 30), 2: (2, 15)}
# GetCallerIdentity names this session for the Pod Identity pod
# (testkit::agent's session name for payments/app).
POD_IDENTITY_ARN = "arn:aws:sts::111122223333:assumed-role/app/eks-payments-prod-app-"
DOCTOR, CLI = "irsa-doctor check", "aws sts get-caller-identity"


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


def aws_cli():
    """The AWS CLI to compare with, and its version line; exits unless it
    is recent enough for Pod Identity."""
    aws = os.environ.get("AWS_CLI") or os.path.join(ROOT, ".venv/bin/aws")
    if not os.path.exists(aws):
        aws = shutil.which("aws") or sys.exit(
            "the AWS CLI is missing: python3 -m venv .venv && .venv/bin/pip install 'awscli>=1.30'")
    out = subprocess.run([aws, "--version"], capture_output=True, text=True)
    version = (out.stdout + out.stderr).strip()
    found = re.match(r"aws-cli/(\d+)\.(\d+)", version)
    if not found:
        sys.exit(f"{aws} --version said {version!r}, not aws-cli/<version>")
    major, minor = int(found.group(1)), int(found.group(2))
    minimum = CLI_MINIMUM.get(major)
    if minimum is None or (major, minor) < minimum:
        sys.exit(f"{aws} is {version.split()[0]}: EKS Pod Identity needs aws-cli 1.30 or later "
                 "(python3 -m venv .venv && .venv/bin/pip install 'awscli>=1.30'), "
                 "or set AWS_CLI to one")
    return aws, version


def per_run(counts):
    """A list of per-run call counts, as `1` when every run made the same
    number, else as min-max and the mean."""
    low, high = min(counts), max(counts)
    return f"{low}" if low == high else f"{low}-{high} (mean {statistics.mean(counts):.2f})"


def main():
    if not os.path.exists(GNU_TIME):
        sys.exit("GNU time is missing: apt-get install time")
    aws, cli_version = aws_cli()
    doctor, kit = standin_proc.build(ROOT)
    standin = kit["standin"]

    stand_in = standin_proc.StandIn(standin, capture_stderr=True)
    home = tempfile.mkdtemp()
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "AWS_CONFIG_FILE": os.path.join(home, "config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "credentials"),
        "AWS_STS_REGIONAL_ENDPOINTS": "regional",
    }
    envs = {"IRSA": {**base, **stand_in.env},
            "Pod Identity": {**base, **stand_in.pod_identity_env}}
    tools = {DOCTOR: [doctor, "check", "--termination-log", "off"],
             CLI: [aws, "sts", "get-caller-identity"]}
    # IRSA_DOCTOR_BASELINE=path/to/older/irsa-doctor adds a row for another
    # build, to show a change is within noise; runs are interleaved, so
    # both builds see the same machine.
    baseline = os.environ.get("IRSA_DOCTOR_BASELINE")
    if baseline:
        tools[DOCTOR + " (baseline)"] = [baseline, "check", "--termination-log", "off"]
    rows = [(mechanism, name) for mechanism in envs for name in tools]
    skipped = []
    # Samples per row: wall times, peak RSS, and the calls each run made.
    samples = {row: ([], [], []) for row in rows}
    try:
        for i in range(RUNS):
            for row in list(rows):
                mechanism, name = row
                before = stand_in.counts()
                wall, peak, code, out = run_measured(tools[name], envs[mechanism])
                calls = standin_proc.since(before, stand_in.counts())
                if code != 0 and name.endswith("(baseline)") and i == 0:
                    # An older build may not know this mechanism.
                    lines = out.strip().splitlines() or [""]
                    said = next((l for l in lines if l.startswith("irsa-doctor: ")), lines[0])
                    skipped.append(f"{mechanism}: {name} failed (exit {code}), left out: {said}")
                    rows.remove(row)
                    continue
                if code != 0:
                    sys.exit(f"{mechanism}: {name} failed (exit {code}):\n{out}")
                if mechanism == "Pod Identity" and POD_IDENTITY_ARN not in out:
                    sys.exit(f"{mechanism}: {name} did not name the Pod Identity session:\n{out}")
                samples[row][0].append(wall)
                samples[row][1].append(peak)
                samples[row][2].append(calls)
    finally:
        served = stand_in.stop()

    print(f"\n{RUNS} runs each, interleaved, loopback stand-ins (STS, Pod Identity agent), "
          f"{os.cpu_count()} cores")
    print(f"AWS CLI: {cli_version}")
    for note in skipped:
        print(note)
    results = {}
    for mechanism in envs:
        print(f"\n{mechanism}:")
        print(f"  {'':36} {'median wall':>12} {'best wall':>10} {'peak RSS':>10}")
        for row in rows:
            if row[0] != mechanism:
                continue
            walls, peaks, _ = samples[row]
            results[row] = (statistics.median(walls), max(peaks), min(walls))
            median, peak, best = results[row]
            print(f"  {row[1]:36} {median * 1000:9.1f} ms {best * 1000:7.1f} ms "
                  f"{peak / 1024:7.1f} MiB")
        d_wall, d_rss, d_best = results[(mechanism, DOCTOR)]
        c_wall, c_rss, c_best = results[(mechanism, CLI)]
        print(f"  wall time: irsa-doctor is {c_wall / d_wall:.1f}x faster by the median, "
              f"{c_best / d_best:.1f}x by the best (target >= 30x)")
        print(f"  peak RSS:  irsa-doctor uses {c_rss / d_rss:.1f}x less memory (target >= 6x)")
        print("  calls per run (agent requests; STS AssumeRoleWithWebIdentity, GetCallerIdentity):")
        for row in rows:
            if row[0] != mechanism:
                continue
            calls = samples[row][2]
            print(f"    {row[1]:34} agent {per_run([c['agent'] for c in calls])}; "
                  f"STS {per_run([c['assume_role_with_web_identity'] for c in calls])}, "
                  f"{per_run([c['get_caller_identity'] for c in calls])}")
    calls = samples[("Pod Identity", DOCTOR)][2]
    agent = [c["agent"] for c in calls]
    sts = [c["assume_role_with_web_identity"] + c["get_caller_identity"] for c in calls]
    met = set(agent) == {1} and set(sts) == {1}
    print(f"\nPod Identity, irsa-doctor check: {per_run(agent)} agent and {per_run(sts)} STS calls "
          f"per check (target: 1 and 1: {'met' if met else 'NOT met'})")
    print(served)
    size = os.path.getsize(doctor)
    print(f"release binary: {size / 1e6:.2f} MB ({size} bytes; target <= 8 MB)")


if __name__ == "__main__":
    main()
