#!/usr/bin/env python3
"""Benchmark: `irsa-doctor serve` against the loopback STS stand-in.

Usage: python3 bench/serve.py [idle seconds] [wrk seconds] [probes]   (default 60, 15, 300)

Measures, with the release binary (built by this script with cargo):
  1. /readyz requests per second and latency percentiles under `wrk`
     (Debian: apt-get install wrk), the server pinned to CPU 0 and wrk to
     CPU 1 with taskset, so the server has exactly one core;
  2. idle RSS and CPU over the idle period, from /proc, at the default
     settings (--interval 5m), right after the first check;
  3. STS requests: per check (from the server's own
     irsa_doctor_sts_requests_total, which counts below the SDK, and from the
     stand-in), across the wrk run and the idle period (both must add none),
     over [wrk seconds] checks at --interval 1s, and so per hour at the
     defaults; and the same for an EKS Pod Identity pod (the agent
     stand-in on loopback), with the agent requests per check beside the
     STS ones (the target: one of each). For IRSA, the default chain's
     AssumeRoleWithWebIdentity calls (the stand-in tells them from
     irsa-doctor's own by the session length) are counted apart: serve
     resolves the chain once, then again only after a token rotation or a
     profile change, so STS calls per pod-hour at the defaults are 12 x
     irsa-doctor's own calls per check, plus the chain's one resolution
     (13 in the first hour; the target: at most 12 an hour after it);
  4. probes under the connection attack of the cap's issue: a client holds
     every connection with half a request head and reopens each one the
     server drops, while fresh connections probe /readyz and /livez
     (alternately, 10 a second); the share answered 200 within 1 s (the
     kubelet's default timeout) and within 100 ms, and the percentiles of
     the time from connect to the whole answer (or to the failure). The
     server runs on CPU 0, the attacker on CPU 1, the probes on either.
     Three attacks: 256 connections reopened at 50/s (the issue's), and
     twice the cap reopened as fast as this client can, so that every
     connect evicts another; both from 127.0.0.2, as an attacking pod has
     another address than the kubelet; and the fast one again from
     127.0.0.1, the probes' own address, where only the wait for a request
     head tells them apart.
Checks are counted by the server's own log line after each (CHECK_DONE),
not by sleeping. Nothing leaves loopback; IMDS is disabled.
"""
import multiprocessing
import os
import re
import selectors
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import standin as standin_proc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDLE = int(sys.argv[1]) if len(sys.argv) > 1 else 60
LOAD = int(sys.argv[2]) if len(sys.argv) > 2 else 15
PROBES = int(sys.argv[3]) if len(sys.argv) > 3 else 300
# The server's cap (server::MAX_CONNECTIONS).
CAP = 256
HALF_HEAD = b"GET /readyz HTTP/1.1\r\nHost: x\r\n"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def sts_requests(base):
    _, text = get(base + "/metrics")
    return sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("irsa_doctor_sts_requests_total{"))


def proc_figures(pid):
    """(RSS KiB, peak RSS KiB, CPU seconds used so far) of pid."""
    status = open(f"/proc/{pid}/status").read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return rss, hwm, cpu


def checks_total(base):
    _, text = get(base + "/metrics")
    return sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("irsa_doctor_checks_total{"))


# The log line the server writes after recording each check while its checks
# pass (the first, then each unchanged pass at debug level): the signal that
# a check has finished and the next is an interval away.
CHECK_DONE = "next check in"
# Enough for CHECK_DONE, and nothing louder than info elsewhere.
SERVE_LOG = "info,irsa_doctor::monitor::limiter=debug"


class Server:
    """`irsa-doctor serve` on 127.0.0.1:port, pinned to CPU 0. A thread
    drains its stderr and counts the checks it has recorded (CHECK_DONE
    lines), so that callers wait on the server's own signal."""

    def __init__(self, doctor, env, port, *extra):
        self.proc = subprocess.Popen(
            ["taskset", "-c", "0", doctor, "serve", "--listen", f"127.0.0.1:{port}", *extra],
            env={**env, "RUST_LOG": SERVE_LOG}, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        self.base = f"http://127.0.0.1:{port}"
        self.checked = 0
        self.exited = False
        self.changed = threading.Condition()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            if CHECK_DONE in line:
                with self.changed:
                    self.checked += 1
                    self.changed.notify_all()
        with self.changed:
            self.exited = True
            self.changed.notify_all()

    def wait_checks(self, n, limit=30):
        """Waits until the server has recorded n checks since it started."""
        with self.changed:
            if not self.changed.wait_for(lambda: self.checked >= n or self.exited, limit):
                self.stop()
                sys.exit(f"irsa-doctor serve recorded {self.checked} checks in {limit} s, "
                         f"not {n}")
            if self.checked < n:
                sys.exit(f"irsa-doctor serve exited (code {self.proc.wait()}) after "
                         f"{self.checked} checks")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def start_server(doctor, env, port, *extra):
    """A server whose first check has been recorded and passed."""
    server = Server(doctor, env, port, *extra)
    server.wait_checks(1)
    status, body = get(server.base + "/readyz")
    if status != 200:
        server.stop()
        sys.exit(f"irsa-doctor serve is not ready after its first check: {status} {body}")
    return server, server.base


def checks_in_a_row(doctor, env, stand_in, checks):
    """`serve --interval 1s` for `checks` checks; the STS requests its own
    irsa_doctor_sts_requests_total counted, and the calls the stand-ins
    served, over those checks. Read right after the last check is recorded,
    with the next an interval away, so that no check is half counted."""
    before = stand_in.counts()
    server, base = start_server(doctor, env, free_port(), "--interval", "1s")
    server.wait_checks(checks, limit=30 + 2 * checks)
    calls = standin_proc.since(before, stand_in.counts())
    recorded, requests = checks_total(base), sts_requests(base)
    server.stop()
    if recorded != checks:
        sys.exit(f"irsa-doctor serve had recorded {recorded} checks, not {checks}: "
                 "its log lines and its metrics disagree")
    return requests, calls


def attacker(port, source, held, rate, filled, stop, result):
    """Holds `held` connections from `source`, each with half a request
    head, and reopens each one the server closes, at most `rate` a second
    (None: as fast as it can). Sets `filled` once every connection has
    been opened; sends (reopens, seconds since then) to `result`."""
    os.sched_setaffinity(0, {1})
    sel = selectors.DefaultSelector()

    def connect():
        s = socket.socket()
        s.setblocking(False)
        s.bind((source, 0))
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        sel.register(s, selectors.EVENT_WRITE, "connecting")

    def drop(s):
        sel.unregister(s)
        s.close()

    pending, tokens, last, connects, completed = held, float(held), time.monotonic(), 0, 0
    started = None
    while not stop.is_set():
        now = time.monotonic()
        if rate is not None:
            tokens, last = min(float(held), tokens + (now - last) * rate), now
        while pending and (rate is None or tokens >= 1):
            connect()
            pending, tokens, connects = pending - 1, tokens - 1, connects + 1
        for key, _ in sel.select(timeout=0.002 if pending else 0.05):
            s = key.fileobj
            if key.data == "connecting":
                try:
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                        s.send(HALF_HEAD)
                        sel.modify(s, selectors.EVENT_READ, "held")
                        completed += 1
                        if completed == held:
                            started = time.monotonic()
                            filled.set()
                        continue
                except OSError:
                    pass
                drop(s)
            else:
                # Readable: closed by the server (no half head is answered).
                drop(s)
            pending += 1
    result.send((connects - held, time.monotonic() - (started or time.monotonic())))
    for key in list(sel.get_map().values()):
        key.fileobj.close()


def probe(port, path):
    """A fresh connection's GET, as the kubelet probes (timeoutSeconds 1):
    (status or None, seconds from connect to the whole answer)."""
    t0 = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    except OSError:
        status = None
    return status, time.perf_counter() - t0


def evictions(base):
    _, text = get(base + "/metrics")
    return int(re.search(r"^irsa_doctor_http_connections_evicted_total (\d+)$", text, re.M).group(1))


def under_attack(base, port, source, held, rate):
    """PROBES probes, 10 a second, while `attacker` runs; the figures."""
    ctx = multiprocessing.get_context("fork")
    filled, stop = ctx.Event(), ctx.Event()
    receive, send = ctx.Pipe(duplex=False)
    attack = ctx.Process(target=attacker, args=(port, source, held, rate, filled, stop, send))
    evicted_before = evictions(base)
    attack.start()
    if not filled.wait(30):
        stop.set()
        attack.join()
        sys.exit(f"the attacker never held {held} connections")
    latencies, ok, fast = [], 0, 0
    next_at = time.monotonic()
    for i in range(PROBES):
        next_at += 0.1
        status, took = probe(port, ["/readyz", "/livez"][i % 2])
        latencies.append(took)
        # Within the kubelet's default timeoutSeconds.
        ok += status == 200 and took <= 1
        fast += status == 200 and took <= 0.1
        time.sleep(max(0.0, next_at - time.monotonic()))
    stop.set()
    reopened, seconds = receive.recv()
    attack.join()
    latencies.sort()
    pct = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    return {"ok": ok, "fast": fast, "p50": pct(0.5), "p99": pct(0.99), "max": latencies[-1] * 1000,
            "reopened_per_s": reopened / seconds, "evicted": evictions(base) - evicted_before}


def main():
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install {'wrk' if tool == 'wrk' else 'util-linux'}")
    doctor, kit = standin_proc.build(ROOT)
    standin = kit["standin"]

    stand_in = standin_proc.StandIn(standin, capture_stderr=True)
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent",
                "IRSA_DOCTOR_POD_NAME": "bench-pod"}
    env = {**base_env, **stand_in.env}
    pi_env = {**base_env, **stand_in.pod_identity_env}

    # 1. Throughput and latency on one core.
    port = free_port()
    server, base = start_server(doctor, env, port)
    before_load = sts_requests(base)
    wrk = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c16", f"-d{LOAD}s", "--latency", base + "/readyz"],
        check=True, capture_output=True, text=True).stdout
    after_load = sts_requests(base)
    _, load_hwm, _ = proc_figures(server.pid)
    server.stop()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1))
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", wrk, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
    errors = re.search(r"Socket errors: (.*)", wrk)

    # 2. Idle, at the defaults.
    port = free_port()
    server, base = start_server(doctor, env, port)
    per_check = sts_requests(base)
    rss0, _, cpu0 = proc_figures(server.pid)
    t0 = time.monotonic()
    time.sleep(IDLE)
    rss1, hwm1, cpu1 = proc_figures(server.pid)
    elapsed = time.monotonic() - t0
    after_idle = sts_requests(base)
    server.stop()

    # 3. STS (and agent) requests per check, over many checks at a short
    # interval, for each mechanism.
    checks = max(LOAD, 2)
    irsa_requests, irsa_calls = checks_in_a_row(doctor, env, stand_in, checks)
    pi_requests, pi_calls = checks_in_a_row(doctor, pi_env, stand_in, checks)

    # 4. Probes under the connection attack.
    attacks = [("127.0.0.2", CAP, 50, "256 connections from 127.0.0.2, reopened at 50/s"),
               ("127.0.0.2", 2 * CAP, None, "512 connections from 127.0.0.2, reopened at once"),
               ("127.0.0.1", 2 * CAP, None, "512 connections from 127.0.0.1, reopened at once")]
    attacked = []
    for source, held, rate, what in attacks:
        port = free_port()
        server, base = start_server(doctor, env, port)
        attacked.append((what, under_attack(base, port, source, held, rate)))
        server.stop()
    served = stand_in.stop()

    print(f"irsa-doctor {os.path.getsize(doctor)} bytes, release build, server pinned to 1 core")
    print()
    print(f"/readyz under wrk -t1 -c16 -d{LOAD}s (wrk on another core):")
    print(f"  requests/s      {rps:,.0f}")
    print(f"  latency p50     {pct.get('50')}")
    print(f"  latency p90     {pct.get('90')}")
    print(f"  latency p99     {pct.get('99')}")
    print(f"  non-2xx         {non2xx.group(1) if non2xx else 0}")
    print(f"  socket errors   {errors.group(1) if errors else 'none'}")
    print(f"  peak RSS        {load_hwm / 1024:.1f} MiB")
    print(f"  STS requests caused by {rps * LOAD:,.0f} probes: {after_load - before_load}")
    print()
    print(f"idle for {elapsed:.0f} s at the defaults (--interval 5m), after the first check:")
    print(f"  RSS             {rss0 / 1024:.1f} MiB at start, {rss1 / 1024:.1f} MiB at end "
          f"(peak {hwm1 / 1024:.1f} MiB)")
    print(f"  CPU             {cpu1 - cpu0:.2f} s ({(cpu1 - cpu0) / elapsed * 100:.3f}% of a core)")
    print(f"  STS requests    {after_idle - per_check} during the idle period")
    print()
    print(f"Requests per check over {checks} checks at --interval 1s (server: its "
          "irsa_doctor_sts_requests_total; stand-in: the calls it served):")
    per_hour = []
    for mechanism, requests, calls in (("IRSA", irsa_requests, irsa_calls),
                                       ("EKS Pod Identity", pi_requests, pi_calls)):
        served_sts = calls["assume_role_with_web_identity"] + calls["get_caller_identity"]
        ratio = requests / checks
        print(f"  {mechanism}:")
        print(f"    STS, server     {requests} ({ratio:.2f} per check)")
        print(f"    STS, stand-in   {served_sts} ({served_sts / checks:.2f} per check: "
              f"{calls['assume_role_with_web_identity']} AssumeRoleWithWebIdentity, "
              f"{calls['get_caller_identity']} GetCallerIdentity)")
        print(f"    agent, stand-in {calls['agent']} ({calls['agent'] / checks:.2f} per check)")
        chain = calls.get("chain_assume_role_with_web_identity", 0)
        if mechanism == "IRSA":
            print(f"    of which the default chain's AssumeRoleWithWebIdentity: {chain} "
                  f"(resolved at the first check, then reused)")
        per_hour.append((mechanism, (served_sts - chain) / checks, chain,
                         calls["agent"] / checks))
    print(f"  (IRSA: irsa-doctor's AssumeRoleWithWebIdentity and the default chain's; "
          f"first check at the defaults: {per_check} STS requests.")
    met = pi_calls["agent"] == checks and pi_requests == checks and (
        pi_calls["assume_role_with_web_identity"] + pi_calls["get_caller_identity"] == checks)
    print("   EKS Pod Identity, the target: 1 agent call and 1 STS call per check: "
          f"{'met' if met else 'NOT met'}.)")
    print("Requests per pod-hour at the defaults (3600 s / 300 s interval x per check, "
          "without the chain's resolutions; jitter is symmetric), plus the chain's resolutions "
          "in the first hour, and one check's worth per kubelet token rotation:")
    for mechanism, sts_ratio, chain, agent_ratio in per_hour:
        agent = f", agent {agent_ratio * 3600 / 300:.0f}" if agent_ratio else ""
        first = f" ({sts_ratio * 3600 / 300 + chain:.0f} in the first hour)" if chain else ""
        print(f"  {mechanism + ':':17} STS {sts_ratio * 3600 / 300:.2f}{first}{agent}")
    irsa_hour = per_hour[0][1] * 3600 / 300
    print(f"  IRSA, the target: at most 12 STS calls per pod-hour: "
          f"{'met' if irsa_hour <= 12 else 'NOT met'}")
    print("  Fleet of 10,000 pods at the defaults: "
          f"{10000 * irsa_hour / 3600:.1f} STS calls/s (IRSA), "
          f"{10000 * per_hour[1][1] * 3600 / 300 / 3600:.1f} (EKS Pod Identity)")
    print(served)
    print()
    print(f"{PROBES} fresh probes (/readyz, /livez), 10/s, during a half-request-head attack; "
          "server on CPU 0, attacker on CPU 1:")
    for what, f in attacked:
        print(f"  {what} ({f['reopened_per_s']:,.0f} reconnects/s, {f['evicted']:,} evicted):")
        print(f"    200 within 1 s  {f['ok']}/{PROBES} ({f['ok'] / PROBES:.1%}), within 100 ms "
              f"{f['fast']}/{PROBES} ({f['fast'] / PROBES:.1%})")
        print(f"    latency         p50 {f['p50']:.2f} ms, p99 {f['p99']:.2f} ms, max {f['max']:.2f} ms")


if __name__ == "__main__":
    main()
