#!/usr/bin/env python3
"""Benchmark: irsa-doctor against peers that answer with 100 MB.

Usage: python3 bench/hostile.py [probe-seconds]     (default 10)

1. `check` whose STS endpoint answers every request (ours and the default
   chain's) with a 100 MB body: peak RSS (GNU time) and wall time.
2. `check` for a pod without IRSA whose IMDS answers every request with a
   100 MB body: the same.
3. `serve --interval 1s` against the 100 MB STS: while checks keep being
   refused, /readyz and /livez are probed from fresh connections for
   `probe-seconds`; prints their success rate and latency.

Needs the release binary (built by this script with cargo, or the one
`IRSA_DOCTOR_BIN` names, to measure another build) and GNU time
(`apt-get install time`). Nothing leaves 127.0.0.1; the only peers are the
loopback servers this script starts.
"""
import base64
import json
import os
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE_SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
GNU_TIME = "/usr/bin/time"
HUGE = 100 * 1024 * 1024
CHUNK = b"x" * (1024 * 1024)


class Huge(socketserver.ThreadingTCPServer):
    """Answers every HTTP request with a 100 MB body, as fast as loopback
    takes it, and counts the answers it starts."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), HugeHandler)
        self.answers = 0

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class HugeHandler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.settimeout(30)
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                data = sock.recv(65536)
                if not data:
                    return
                head += data
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n" % HUGE)
            self.server.answers += 1
            sent = 0
            while sent < HUGE:
                sock.sendall(CHUNK)
                sent += len(CHUNK)
        except OSError:
            pass  # the client stopped reading, as it should


def token_file(directory):
    now = int(time.time())
    b64 = lambda o: base64.urlsafe_b64encode(json.dumps(o).encode()).decode().rstrip("=")
    claims = {"aud": ["sts.amazonaws.com"], "exp": now + 86400, "iat": now,
              "iss": "https://oidc.eks.us-east-1.amazonaws.com/id/BENCH",
              "sub": "system:serviceaccount:payments:app"}
    path = os.path.join(directory, "token")
    with open(path, "w") as f:
        f.write(b64({"alg": "RS256"}) + "." + b64(claims) + ".c2lnbmF0dXJlLWJlbmNo")
    return path


def base_env(home):
    return {"PATH": "/usr/bin:/bin", "HOME": home, "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "IRSA_DOCTOR_TERMINATION_LOG": "off", "IRSA_DOCTOR_TIMEOUT": "10s"}


def measured(argv, env):
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        proc = subprocess.run([GNU_TIME, "-f", "%M", "-o", report.name, *argv], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        peak_kib = int(report.read().strip().splitlines()[-1])
    return wall, peak_kib, proc


def get(port, path):
    """One probe on a fresh connection: (ok, seconds)."""
    start = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        ok = data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.1 503")
    except OSError:
        ok = False
    return ok, time.perf_counter() - start


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main():
    if not os.path.exists(GNU_TIME):
        sys.exit("GNU time is missing: apt-get install time")
    doctor = os.environ.get("IRSA_DOCTOR_BIN")
    if not doctor:
        subprocess.run(["cargo", "build", "--release", "--bin", "irsa-doctor"], cwd=ROOT,
                       check=True)
        doctor = os.path.join(ROOT, "target/release/irsa-doctor")
    huge = Huge()
    threading.Thread(target=huge.serve_forever, daemon=True).start()
    home = tempfile.mkdtemp()
    token = token_file(home)

    env = base_env(home) | {"AWS_ENDPOINT_URL_STS": huge.url,
                            "AWS_ROLE_ARN": "arn:aws:iam::111122223333:role/app",
                            "AWS_WEB_IDENTITY_TOKEN_FILE": token}
    wall, peak, proc = measured([doctor, "check", "--output", "json"], env)
    report = json.loads(proc.stdout)
    print(f"check, 100 MB STS answers:  exit {proc.returncode}, {wall:.2f} s, "
          f"peak RSS {peak / 1024:.1f} MiB, {huge.answers} answers started; "
          f"findings {[f['code'] for f in report['findings']]}")

    env = base_env(home) | {"AWS_EC2_METADATA_DISABLED": "false",
                            "AWS_EC2_METADATA_SERVICE_ENDPOINT": huge.url}
    before = huge.answers
    wall, peak, proc = measured([doctor, "check", "--output", "json"], env)
    report = json.loads(proc.stdout)
    print(f"check, 100 MB IMDS answers: exit {proc.returncode}, {wall:.2f} s, "
          f"peak RSS {peak / 1024:.1f} MiB, {huge.answers - before} answers started; "
          f"default chain: {report['default_chain']['error']}")

    port_probe = socket.socket()
    port_probe.bind(("127.0.0.1", 0))
    port = port_probe.getsockname()[1]
    port_probe.close()
    env = base_env(home) | {"AWS_ENDPOINT_URL_STS": huge.url,
                            "AWS_ROLE_ARN": "arn:aws:iam::111122223333:role/app",
                            "AWS_WEB_IDENTITY_TOKEN_FILE": token}
    server = subprocess.Popen([doctor, "serve", "--listen", f"127.0.0.1:{port}",
                               "--interval", "1s"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while not get(port, "/livez")[0]:
        if time.time() > deadline:
            sys.exit("serve did not start")
        time.sleep(0.05)
    before = huge.answers
    results = {"/readyz": [], "/livez": []}
    end = time.time() + PROBE_SECONDS
    while time.time() < end:
        for path in results:
            results[path].append(get(port, path))
    refused = huge.answers - before
    # The high-water mark of the server's resident memory over its life.
    with open(f"/proc/{server.pid}/status") as f:
        peak = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    server.terminate()
    server.wait()
    print(f"serve --interval 1s, 100 MB STS answers, {PROBE_SECONDS:.0f} s: "
          f"{refused} huge answers refused meanwhile, peak RSS {peak / 1024:.1f} MiB")
    for path, probes in results.items():
        ok = [t for good, t in probes if good]
        ms = [t * 1000 for t in ok]
        print(f"  {path}: {len(ok)}/{len(probes)} answered ({100 * len(ok) / len(probes):.2f}%), "
              f"latency p50 {statistics.median(ms):.2f} ms, p99 {pct(ms, 0.99):.2f} ms, "
              f"max {max(ms):.2f} ms")


if __name__ == "__main__":
    main()
