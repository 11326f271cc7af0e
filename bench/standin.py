"""The loopback STS stand-in (`cargo run --example standin`) for the
benchmarks: starts it and reads the pod environment it prints."""
import subprocess


def start(path, capture_stderr=False):
    """Starts the stand-in at `path`; returns the process (it serves until
    its stdin is closed) and the environment a pod would have."""
    proc = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE if capture_stderr else None, text=True)
    env = {}
    for line in proc.stdout:
        line = line.strip()
        if line == "READY":
            break
        key, _, value = line.partition("=")
        env[key] = value
    assert env.get("AWS_EC2_METADATA_DISABLED") == "true", "IMDS must be off"
    return proc, env
