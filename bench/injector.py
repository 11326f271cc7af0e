#!/usr/bin/env python3
"""Benchmark: `irsa-doctor-injector serve`, the admission webhook.

Usage: python3 bench/injector.py [seconds per phase] [reviews per second]   (default 20, 200)

Measures, with the image's binary (the static musl release build, built by
this script with cargo):
  1. the latency of POST /mutate over HTTPS, from the request's first byte
     written to the answer's last byte read, at a steady rate of
     AdmissionReviews (open loop: request i is sent at i/rate seconds,
     whether or not earlier ones are answered, over 16 kept-alive
     connections as the API server keeps them), in two phases:
       warm: every pod runs as the same ServiceAccount, so after the
             first review its lookup is a cache hit;
       cold: every pod runs as a ServiceAccount not seen before, so every
             review waits for its lookups, side by side: a GET of the
             ServiceAccount from a loopback Kubernetes API stand-in (over
             HTTPS, as in a cluster), and with --cluster-name the EKS Pod
             Identity association (ListPodIdentityAssociations, then
             DescribePodIdentityAssociation, SigV4-signed, from a loopback
             EKS API stand-in at AWS_ENDPOINT_URL_EKS; every ServiceAccount
             has one);
     printing p50, p90, p99 and the worst, and how many answers were
     `allowed: true` with a patch (all of them must be);
  2. the webhook's RSS after each phase and its peak (VmHWM), from /proc;
  3. then a hostile phase: 16 connections each posting, for HOSTILE_SECONDS,
     pathological reviews just under the 3 MiB body bound (a flat array of
     zeros in a field no pod has, and a million empty `args`), as fast as
     they are answered, while /healthz is asked every 100 ms on a
     connection of its own; printing the answers by status, whether
     /healthz answered throughout (and its slowest answer), and the peak
     RSS (VmHWM) of the run so far;
  4. then a worst-case phase, the design's memory bound: 16 connections
     posting, for HOSTILE_SECONDS, reviews of HOSTILE_BODY bytes whose pods
     are estimated just under the 16 MiB a pod may cost (WORST_VOLUMES
     volumes, each an object the webhook charges 4 KiB; the rest of the
     body is blanks after the review), each for a ServiceAccount not seen
     before whose lookups both stand-ins answer only after
     WORST_LOOKUP_DELAY, so that every typed pod is held across its
     lookups and both the 12 MiB of bodies and the 48 MiB of pods under
     review are full at once; printing the answers (503 when no room for
     the body came within 0.5 s; 200 patched, with a warning when the
     lookups or the wait for room ran past the budget, or without the
     doctor when no room for the pod came within it) and the peak RSS of
     the whole run, the figure the Deployment's memory limit is checked
     against (examples/injector/deployment.yaml);
  5. the image's size: the files of the final stage of injector/Dockerfile
     (the binary and the CA bundle), as bytes and as one gzip'd tar layer.
The webhook runs on CPU 0 and this client and the stand-ins on CPU 1
(taskset), where the machine has two. Nothing leaves loopback.
"""
import base64
import gzip
import http.client
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
RATE = float(sys.argv[2]) if len(sys.argv) > 2 else 200.0
WORKERS = 16
TARGET = "x86_64-unknown-linux-musl"
HOSTILE_SECONDS = 5.0
HOSTILE_BODY = 3 * 1024 * 1024 - 1024
# Volumes of the worst-case phase's pods: 3,800 objects of 4 KiB plus their
# strings and bytes, some 16.1 MB estimated, under MAX_POD_COST (16 MiB,
# 16.8 MB) with the rest of the pod.
WORST_VOLUMES = 3800
# How long the stand-ins take to answer the worst-case phase's lookups:
# under the 1 s a lookup may take, so that most are answered.
WORST_LOOKUP_DELAY = 0.8
CLUSTER = "bench"
# Where cargo puts the build: CARGO_TARGET_DIR when set, as cargo reads it.
TARGET_DIR = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
BINARY = os.path.join(TARGET_DIR, TARGET, "release", "irsa-doctor-injector")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
ROLE = "arn:aws:iam::111122223333:role/bench"


def build():
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "--target", TARGET, "-p", "irsa-doctor-injector"],
        cwd=ROOT, check=True)


def certificates(tmp):
    """A throwaway CA and a certificate for 127.0.0.1 signed by it."""
    def run(*args):
        subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=bench CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(tmp, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "tls.crt", "-days", "1", "-extfile", "san.ext")
    return {name: os.path.join(tmp, name) for name in ("ca.crt", "tls.crt", "tls.key")}


class Quiet(ThreadingHTTPServer):
    """A stand-in's server that does not print a traceback when the webhook
    has hung up first (a lookup past its budget closes its connection)."""
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError)):
            super().handle_error(request, client_address)


def send_json(handler, status, body):
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class StandIn(BaseHTTPRequestHandler):
    """What both API stand-ins share: HTTP/1.1 kept alive, no Nagle, no
    log, and a count of the requests each received."""
    protocol_version = "HTTP/1.1"
    # The head and the body go out in two writes; with Nagle's algorithm
    # the second waits for the client's delayed ACK (40 ms on Linux), a
    # delay of this stand-in, not of the webhook or of a real API server.
    disable_nagle_algorithm = True
    lock = threading.Lock()

    def count(self):
        with StandIn.lock:
            type(self).requests += 1

    def log_message(self, *args):
        pass


class Kubernetes(StandIn):
    """GET /api/v1/namespaces/NS/serviceaccounts/NAME: an annotated ServiceAccount."""
    requests = 0

    def do_GET(self):
        self.count()
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "serviceaccounts":
            if parts[5].startswith("worst-"):
                time.sleep(WORST_LOOKUP_DELAY)
            body = {"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": parts[5], "namespace": parts[3],
                                 "annotations": {"eks.amazonaws.com/role-arn": ROLE}}}
            status = 200
        else:
            body = {"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}
            status = 404
        send_json(self, status, body)


class Eks(StandIn):
    """The EKS API's two Pod Identity reads, as aws-sdk-eks sends them
    (REST-JSON): every ServiceAccount has one association, whose ID names
    it. Only that a request is signed for `eks` is checked (the tests'
    stand-in checks the signature)."""
    requests = 0

    def do_GET(self):
        self.count()
        path, _, query = self.path.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        parts = path.strip("/").split("/")
        prefix = ["clusters", CLUSTER, "pod-identity-associations"]
        signed = "/eks/aws4_request" in self.headers.get("Authorization", "")
        status, body = 404, {"message": "not found"}
        if signed and parts == prefix:
            ns, sa = params.get("namespace", ""), params.get("serviceAccount", "")
            if sa.startswith("worst-"):
                time.sleep(WORST_LOOKUP_DELAY)
            status, body = 200, {"associations": [{
                "clusterName": CLUSTER, "namespace": ns, "serviceAccount": sa,
                "associationId": f"a-{ns}.{sa}",
                "associationArn": f"arn:aws:eks:us-west-2:111122223333:podidentityassociation/{CLUSTER}/a-{ns}.{sa}"}]}
        elif signed and parts[:3] == prefix and len(parts) == 4:
            ns, _, sa = parts[3][2:].partition(".")
            status, body = 200, {"association": {
                "clusterName": CLUSTER, "namespace": ns, "serviceAccount": sa, "roleArn": ROLE,
                "associationId": parts[3], "createdAt": 1.7e9, "modifiedAt": 1.7e9,
                "disableSessionTags": False,
                "associationArn": f"arn:aws:eks:us-west-2:111122223333:podidentityassociation/{CLUSTER}/{parts[3]}"}}
        send_json(self, status, body)


def eks_stand_in():
    server = Quiet(("127.0.0.1", 0), Eks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def kubernetes_stand_in(certs, tmp):
    server = Quiet(("127.0.0.1", 0), Kubernetes)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs["tls.crt"], certs["tls.key"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with open(certs["ca.crt"], "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    config = os.path.join(tmp, "kubeconfig")
    with open(config, "w") as f:
        json.dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "bench",
            "clusters": [{"name": "bench", "cluster": {
                "server": f"https://127.0.0.1:{server.server_address[1]}",
                "certificate-authority-data": ca}}],
            "users": [{"name": "bench", "user": {"token": "bench-token-not-a-secret"}}],
            "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}],
        }, f)
    return server, config


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def review(uid, service_account, volumes=0):
    """An AdmissionReview for a pod as the EKS webhook hands it on (IRSA),
    with `volumes` more (empty) volumes."""
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "app-", "namespace": "payments", "labels": {"app": "app"}},
        "spec": {
            "serviceAccountName": service_account,
            "containers": [{
                "name": "app", "image": "registry.example.com/app:1.0",
                "env": [
                    {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"},
                    {"name": "AWS_DEFAULT_REGION", "value": "us-west-2"},
                    {"name": "AWS_REGION", "value": "us-west-2"},
                    {"name": "AWS_ROLE_ARN", "value": ROLE},
                    {"name": "AWS_WEB_IDENTITY_TOKEN_FILE",
                     "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
                ],
                "volumeMounts": [{"name": "aws-iam-token", "readOnly": True,
                                  "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount"}],
            }],
            "volumes": [{"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken": {
                "audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}}]
            + [{"name": f"v{i}"} for i in range(volumes)],
        },
    }
    return json.dumps({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "payments", "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod, "dryRun": False,
        },
    }).encode()


def phase(port, context, name, service_account_of):
    """Sends RATE reviews a second for SECONDS; returns the latencies (s)."""
    count = int(SECONDS * RATE)
    bodies = [review(f"{name}-{i}", service_account_of(i)) for i in range(count)]
    latencies = [None] * count
    failures = []
    start = time.monotonic() + 0.5

    def worker(w):
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
        for i in range(w, count, WORKERS):
            due = start + i / RATE
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            sent = time.monotonic()
            try:
                conn.request("POST", "/mutate", body=bodies[i],
                             headers={"Content-Type": "application/json"})
                answer = conn.getresponse()
                data = answer.read()
                latencies[i] = time.monotonic() - sent
                response = json.loads(data)["response"]
                if answer.status != 200 or not response.get("allowed") or "patch" not in response:
                    failures.append(f"{i}: {answer.status} {data[:200]!r}")
            except Exception as error:  # noqa: BLE001 - counted and printed below
                failures.append(f"{i}: {error}")
                conn.close()
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
        conn.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = sorted(x for x in latencies if x is not None)
    return done, failures, count


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(round(p / 100 * (len(sorted_values) - 1))))]


def pathological(uid, kind):
    """A review of HOSTILE_BODY bytes: `kind` "zeros" puts [0,0,...] in a
    field no pod has, "args" puts ["","",...] in the app's arguments."""
    doc = json.loads(review(uid, "app"))
    if kind == "zeros":
        doc["request"]["object"]["x"] = "FILL"
        item = b"0"
    else:
        doc["request"]["object"]["spec"]["containers"][0]["args"] = "FILL"
        item = b'""'
    text = json.dumps(doc).encode()
    room = HOSTILE_BODY - (len(text) - len(b'"FILL"')) - 2
    items = b",".join([item] * (room // (len(item) + 1)))
    body = text.replace(b'"FILL"', b"[" + items + b"]", 1)
    return body + b" " * (HOSTILE_BODY - len(body))


WORST_TEMPLATE = None


def worst(service_account):
    """A review of HOSTILE_BODY bytes whose pod is estimated just under the
    16 MiB a pod may cost: WORST_VOLUMES volumes, then blanks."""
    global WORST_TEMPLATE
    if WORST_TEMPLATE is None:
        WORST_TEMPLATE = review("worst", "SERVICE-ACCOUNT", WORST_VOLUMES)
    body = WORST_TEMPLATE.replace(b'"SERVICE-ACCOUNT"', json.dumps(service_account).encode(), 1)
    return body + b" " * (HOSTILE_BODY - len(body))


def hostile(port, context, body_of):
    """16 connections posting `body_of(worker, n)` for HOSTILE_SECONDS, and
    /healthz asked every 100 ms meanwhile; returns the answers by status
    (200 split into patched, patched with a warning, and not patched), the
    /healthz failures and its slowest answer (s)."""
    statuses = {}
    lock = threading.Lock()
    end = time.monotonic() + HOSTILE_SECONDS
    health = {"failures": [], "slowest": 0.0, "asked": 0}

    def worker(w):
        n = 0
        while time.monotonic() < end:
            n += 1
            try:
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
                conn.request("POST", "/mutate", body=body_of(w, n),
                             headers={"Content-Type": "application/json"})
                answer = conn.getresponse()
                data = answer.read()
                key = answer.status
                if key == 200:
                    response = json.loads(data).get("response", {})
                    if "patch" not in response:
                        key = "200 without the doctor"
                    elif response.get("warnings"):
                        key = "200 patched, with a warning"
                    else:
                        key = "200 patched"
                conn.close()
            except Exception as error:  # noqa: BLE001 - counted and printed below
                key = type(error).__name__
            with lock:
                statuses[key] = statuses.get(key, 0) + 1

    def prober():
        while time.monotonic() < end:
            sent = time.monotonic()
            try:
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=2)
                conn.request("GET", "/healthz")
                status = conn.getresponse().status
                conn.close()
                if status != 200:
                    health["failures"].append(status)
            except Exception as error:  # noqa: BLE001 - counted and printed below
                health["failures"].append(type(error).__name__)
            health["slowest"] = max(health["slowest"], time.monotonic() - sent)
            health["asked"] += 1
            time.sleep(0.1)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]
    threads.append(threading.Thread(target=prober))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses, health


def memory(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return fields


def image_size():
    files = [(BINARY, "usr/local/bin/irsa-doctor-injector"), (CA_BUNDLE, "etc/ssl/certs/ca-certificates.crt")]
    raw = sum(os.path.getsize(src) for src, _ in files)
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        for src, name in files:
            tar.add(src, arcname=name)
    compressed = len(gzip.compress(layer.getvalue(), 6))
    return os.path.getsize(BINARY), raw, compressed


def main():
    build()
    cpus = os.cpu_count() or 1
    pin = shutil.which("taskset") is not None and cpus >= 2
    if pin:
        os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory() as tmp:
        certs = certificates(tmp)
        kube, kubeconfig = kubernetes_stand_in(certs, tmp)
        eks, eks_url = eks_stand_in()
        port = free_port()
        command = [BINARY, "serve", "--listen", f"127.0.0.1:{port}", "--tls-cert", certs["tls.crt"],
                   "--tls-key", certs["tls.key"], "--image", "registry.example.com/irsa-doctor:bench",
                   "--namespace", "irsa-doctor", "--cluster-name", CLUSTER]
        if pin:
            command = ["taskset", "-c", "0", *command]
        env = {"PATH": os.environ.get("PATH", ""), "KUBECONFIG": kubeconfig, "RUST_LOG": "warn",
               "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL_EKS": eks_url,
               "AWS_REGION": "us-west-2", "AWS_ACCESS_KEY_ID": "AKIDBENCHNOTASECRET",
               "AWS_SECRET_ACCESS_KEY": "bench-not-a-secret"}
        server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        context = ssl.create_default_context(cafile=certs["ca.crt"])
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=2)
                    conn.request("GET", "/readyz")
                    if conn.getresponse().status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit(f"the webhook did not become ready: {server.stderr.read() if server.poll() is not None else ''}")
                time.sleep(0.1)
            idle = memory(server.pid)
            print(f"irsa-doctor-injector serve, {RATE:.0f} reviews/s for {SECONDS:.0f} s per phase, "
                  f"{WORKERS} connections{', webhook on CPU 0, client on CPU 1' if pin else ''}")
            print(f"RSS idle, ready: {idle['VmRSS']:.1f} MiB")
            results = {}
            for name, sa in (("warm", lambda i: "app"), ("cold", lambda i: f"app-{i}")):
                before, before_eks = Kubernetes.requests, Eks.requests
                if name == "warm":
                    # The one miss, so that the phase sees hits only.
                    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
                    conn.request("POST", "/mutate", body=review("prime", "app"),
                                 headers={"Content-Type": "application/json"})
                    conn.getresponse().read()
                    conn.close()
                    before, before_eks = Kubernetes.requests, Eks.requests
                latencies, failures, count = phase(port, context, name, sa)
                lookups = Kubernetes.requests - before
                eks_calls = Eks.requests - before_eks
                mem = memory(server.pid)
                results[name] = (latencies, mem)
                print(f"{name}: {len(latencies)}/{count} answered, {len(failures)} not allowed-with-patch, "
                      f"{lookups} ServiceAccount GETs, {eks_calls} EKS calls; latency p50 {percentile(latencies, 50) * 1e3:.2f} ms, "
                      f"p90 {percentile(latencies, 90) * 1e3:.2f} ms, p99 {percentile(latencies, 99) * 1e3:.2f} ms, "
                      f"max {latencies[-1] * 1e3 if latencies else float('nan'):.2f} ms; RSS {mem['VmRSS']:.1f} MiB")
                for failure in failures[:5]:
                    print(f"  {failure}")
            peak = memory(server.pid)["VmHWM"]
            print(f"RSS peak (VmHWM) over warm and cold: {peak:.1f} MiB")
            pathological_bodies = [pathological("hostile-zeros", "zeros"), pathological("hostile-args", "args")]
            for name, body_of in (("hostile", lambda w, n: pathological_bodies[w % 2]),
                                  ("worst", lambda w, n: worst(f"worst-{w}-{n}"))):
                statuses, health = hostile(port, context, body_of)
                after = memory(server.pid)["VmHWM"]
                answered = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=str))
                print(f"{name}: {WORKERS} connections posting {HOSTILE_BODY} byte reviews for {HOSTILE_SECONDS:.0f} s: "
                      f"answers {answered}; /healthz answered {health['asked'] - len(health['failures'])}/{health['asked']} "
                      f"({'throughout' if not health['failures'] else 'NOT throughout: ' + repr(health['failures'][:5])}), "
                      f"slowest {health['slowest'] * 1e3:.0f} ms; RSS peak (VmHWM) of the run so far: {after:.1f} MiB")
            warm_p99 = percentile(results["warm"][0], 99) * 1e3
            print(f"goal: p99 <= 5 ms warm ({'met' if warm_p99 <= 5 else 'NOT met'}: {warm_p99:.2f} ms), "
                  f"RSS <= 32 MiB ({'met' if peak <= 32 else 'NOT met'}: {peak:.1f} MiB)")
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
            kube.shutdown()
            eks.shutdown()
    binary, raw, compressed = image_size()
    print(f"image (injector/Dockerfile's final stage): binary {binary} bytes, "
          f"files {raw} bytes ({raw / 1e6:.2f} MB), one gzip'd layer {compressed} bytes ({compressed / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
