#!/usr/bin/env python3
"""Benchmark: `irsa-doctor serve` under endpoint abuse, on loopback.

Usage: python3 bench/abuse.py [seconds per abuse]   (default 5)

With the release binary (built by this script with cargo), against the
loopback STS stand-in, the server pinned to CPU 0 and every client thread
on CPU 1. For each abuse, run for [seconds] (every loop is bounded in
count and time), a fresh connection probes /readyz every 10 ms, as the
kubelet does (a new connection each time, 1 s timeout). Printed per abuse:
the probes answered 200 within 1 s and within 100 ms, latency p50, p99 and
max (connect to whole answer), the server's open descriptors before, at
the peak, and once the abuse's connections are closed, and the server's
peak RSS (VmHWM) so far. The abuses:
  slowloris      600 connections sending a request head a byte every 250 ms,
                 never finishing it, reopened when the server closes them;
  idle 2000      2,000 connections opened and left without a byte;
  1 MB line      20 clients in a loop, each sending a 1 MB request line;
  1 MB headers   the same with 1 MB of headers;
  pipelined      20 clients in a loop, each 100 requests in one write;
  not HTTP/1     20 clients in a loop: garbage, a TLS ClientHello, an
                 HTTP/2 preface;
  bodies         20 clients in a loop: a 10 MB body (1 MB sent), a 1 MB
                 chunked body;
  HTTP/1.0       20 clients in a loop: HTTP/1.0, and Connection: close.
The answers each odd request got are printed too. The soft limit on open
files is raised to the hard limit (2,000 idle connections need about 4,300
descriptors, on the client and the server side together).
"""
import os
import resource
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve as common  # noqa: E402
import standin as standin_proc  # noqa: E402

ROOT = common.ROOT
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
MB = 1024 * 1024
CLIENT_CPU = {1}


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def exchange(port, raw, limit=6.0):
    """Sends raw, reads until the server closes (or limit): the status
    line's code, or 'closed' when nothing came back."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=limit) as s:
            try:
                s.sendall(raw)
            except OSError:
                pass
            answer = b""
            try:
                while chunk := s.recv(65536):
                    answer += chunk
            except OSError:
                pass
    except OSError as e:
        return f"error {e.__class__.__name__}"
    if not answer:
        return "closed"
    return answer.split(b"\r\n", 1)[0].decode(errors="replace")


def slowloris(port, stop):
    head = b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Slow: "
    conns = []
    for _ in range(600):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        conns.append([s, 0])
    while not stop.is_set():
        for c in conns:
            s, sent = c
            byte = head[sent:sent + 1] or b"a"
            try:
                s.send(byte)
                c[1] += 1
            except OSError:
                s.close()
                c[0], c[1] = socket.create_connection(("127.0.0.1", port)), 0
                c[0].setblocking(False)
        stop.wait(0.25)
    for s, _ in conns:
        s.close()


def idle(port, stop):
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(2000)]
    stop.wait()
    for s in conns:
        s.close()


def looping(requests):
    """20 clients, each sending `requests` in turn until told to stop."""
    def run(port, stop):
        def client():
            while not stop.is_set():
                for raw in requests:
                    ANSWERS.setdefault(raw[:40], set()).add(exchange(port, raw))
        threads = [threading.Thread(target=client) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return run


ANSWERS = {}
CLIENT_HELLO = bytes([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]) + \
    b"\x42" * (0xa1 - 2)
PIPELINED = b"".join(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n" for _ in range(99)) + \
    b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
ABUSES = [
    ("none", None),
    ("slowloris", slowloris),
    ("idle 2000", idle),
    ("1 MB line", looping([b"GET /" + b"a" * MB + b" HTTP/1.1\r\nHost: x\r\n\r\n"])),
    ("1 MB headers", looping([b"GET /readyz HTTP/1.1\r\nHost: x\r\n" +
                              (b"X-Filler: " + b"a" * 64 + b"\r\n") * (MB // 76) + b"\r\n"])),
    ("pipelined", looping([PIPELINED])),
    ("not HTTP/1", looping([bytes(range(256)) * 16, CLIENT_HELLO,
                            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"])),
    ("bodies", looping([b"GET /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                        % (10 * MB) + b"c" * MB,
                        b"GET /readyz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                        (b"10000\r\n" + b"b" * 0x10000 + b"\r\n") * 16 + b"0\r\n\r\n"])),
    ("HTTP/1.0", looping([b"GET /readyz HTTP/1.0\r\n\r\n",
                          b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"])),
]


def under(abuse, server, port):
    before = fds(server.pid)
    stop = threading.Event()
    attacker = None
    if abuse:
        def pinned():
            os.sched_setaffinity(0, CLIENT_CPU)
            abuse(port, stop)
        attacker = threading.Thread(target=pinned)
        attacker.start()
        time.sleep(0.5)  # let the abuse get going; probes count from here
    latencies, ok, fast, peak = [], 0, 0, before
    end = time.monotonic() + SECONDS
    while time.monotonic() < end:
        status, took = common.probe(port, "/readyz")
        latencies.append(took)
        ok += status == 200 and took <= 1
        fast += status == 200 and took <= 0.1
        peak = max(peak, fds(server.pid))
        time.sleep(0.01)
    stop.set()
    if attacker:
        attacker.join()
    limit = time.monotonic() + 15
    while fds(server.pid) > before and time.monotonic() < limit:
        time.sleep(0.05)
    _, hwm, _ = common.proc_figures(server.pid)
    latencies.sort()
    n = len(latencies)
    return dict(n=n, ok=ok, fast=fast, p50=latencies[n // 2] * 1000,
                p99=latencies[min(n - 1, int(n * 0.99))] * 1000, max=latencies[-1] * 1000,
                before=before, peak=peak, after=fds(server.pid), hwm=hwm)


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 4400:
        sys.exit(f"2,000 idle connections need an open-files limit of 4,400; the hard limit is {hard}")
    doctor, kit = standin_proc.build(ROOT)
    stand_in = standin_proc.StandIn(kit["standin"])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent",
           "IRSA_DOCTOR_POD_NAME": "bench-pod", **stand_in.env}
    port = common.free_port()
    server, _ = common.start_server(doctor, env, port)
    results = [(name, under(abuse, server, port)) for name, abuse in ABUSES]
    server.stop()
    stand_in.stop()
    print(f"irsa-doctor serve, release build, pinned to CPU 0; clients on CPU 1; "
          f"fresh /readyz probes every 10 ms for {SECONDS:.0f} s per abuse (soft limit "
          f"on open files raised from {soft} to {hard})")
    print("| abuse | 200 within 1 s | within 100 ms | p50 | p99 | max | server fds before / peak / after | peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results:
        print(f"| {name} | {r['ok']}/{r['n']} | {r['fast']}/{r['n']} | {r['p50']:.2f} ms | "
              f"{r['p99']:.2f} ms | {r['max']:.1f} ms | {r['before']} / {r['peak']} / {r['after']} | "
              f"{r['hwm'] / 1024:.1f} MiB |")
    print()
    print("Answers to the odd requests (first 40 bytes: status lines seen):")
    for raw, seen in ANSWERS.items():
        print(f"  {raw!r}: {sorted(seen)}")


if __name__ == "__main__":
    main()
