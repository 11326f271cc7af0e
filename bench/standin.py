"""The loopback stand-ins (`cargo run -p testkit --bin standin`: STS and
the EKS Pod Identity agent) for the benchmarks: builds them with
irsa-doctor, starts them, reads the pod environments they print, and asks
them how many calls they have served."""
import os
import subprocess

# The prefix of the Pod Identity pod's lines (testkit/src/bin/standin.rs).
POD_IDENTITY = "pod-identity "


def build(root, profile="release", kit_bins=("standin",)):
    """Builds irsa-doctor's binary and the test kit's `kit_bins` (`standin`,
    `stamp`) with cargo, in CARGO_TARGET_DIR if set, and returns their
    paths: irsa-doctor's, then {name: path} for the kit's. Two runs of
    cargo, because one run unifies the features of both packages' crates:
    alone, irsa-doctor is built with its own features, as the image is."""
    release = ["--release"] if profile == "release" else []
    subprocess.run(["cargo", "build", *release, "--bin", "irsa-doctor"], cwd=root, check=True)
    bins = [arg for name in kit_bins for arg in ("--bin", name)]
    subprocess.run(["cargo", "build", *release, "-p", "testkit", *bins], cwd=root, check=True)
    target = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(root, "target"),
                          profile)
    return (os.path.join(target, "irsa-doctor"),
            {name: os.path.join(target, name) for name in kit_bins})


class StandIn:
    """The running stand-ins. `env` is the IRSA pod's environment,
    `pod_identity_env` the EKS Pod Identity pod's; both name the same STS
    stand-in. They serve until `stop`."""

    def __init__(self, path, capture_stderr=False):
        self.proc = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE if capture_stderr else None,
                                     text=True, bufsize=1)
        self.env, self.pod_identity_env = {}, {}
        for line in self.proc.stdout:
            line = line.strip()
            if line == "READY":
                break
            env = self.env
            if line.startswith(POD_IDENTITY):
                env, line = self.pod_identity_env, line[len(POD_IDENTITY):]
            key, _, value = line.partition("=")
            env[key] = value
        else:
            raise RuntimeError(f"the stand-in exited before READY (exit {self.proc.wait()})")
        for env in (self.env, self.pod_identity_env):
            assert env.get("AWS_EC2_METADATA_DISABLED") == "true", "IMDS must be off"
            assert env["AWS_ENDPOINT_URL_STS"].startswith("http://127.0.0.1:"), env
        assert self.pod_identity_env["AWS_CONTAINER_CREDENTIALS_FULL_URI"].startswith(
            "http://127.0.0.1:"), self.pod_identity_env
        assert "AWS_ROLE_ARN" not in self.pod_identity_env, "Pod Identity without IRSA's pair"

    def counts(self):
        """The calls served so far: {"assume_role_with_web_identity",
        "get_caller_identity", "agent"} -> count. The stand-in answers
        from its counters at once; a request is counted when it arrives."""
        self.proc.stdin.write("counts\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the stand-in exited")
        return {key: int(value) for key, value in
                (field.split("=", 1) for field in line.split())}

    def command(self, line):
        """Sends a command that changes the stand-in (`fail access-denied`,
        `heal`) and waits for its `ok`."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if answer != "ok":
            raise RuntimeError(f"the stand-in answered {answer!r} to {line!r}")

    def stop(self):
        """Closes its stdin and waits for it; returns what it wrote to
        stderr (its totals) when that was captured, else None."""
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        return self.proc.stderr.read().strip() if self.proc.stderr else None


def since(before, after):
    """The calls between two `counts`."""
    return {key: after[key] - before[key] for key in after}
