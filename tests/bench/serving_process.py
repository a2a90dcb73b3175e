"""Starts `radixlm serve` on a free port for a test and stops it afterwards (used by tests/bench and
tests/server/test_robustness.py). The server's output goes to a log file that a failing test prints."""
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, binary, model_dir, *extra_args, startup_timeout=180):
        self.port = free_port()
        self.host = "127.0.0.1"
        self.log = tempfile.NamedTemporaryFile(prefix="radixlm-serve-", suffix=".log", delete=False)
        args = [str(binary), "serve", "--host", self.host, "--port", str(self.port)]
        if model_dir is not None:
            args += ["--model-path", str(model_dir)]
        args += [str(a) for a in extra_args]
        self.args = args
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"radixlm serve exited {self.proc.returncode} at startup:\n{self.log_text()}")
            try:
                status, _, _ = self.request("GET", "/health", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                self.stop()
                raise AssertionError(f"radixlm serve was not healthy within {startup_timeout}s:\n{self.log_text()}")
            time.sleep(0.2)

    @property
    def base_url(self):
        return f"http://{self.host}:{self.port}"

    def log_text(self, tail=8000):
        with open(self.log.name, "rb") as f:
            return f.read().decode("utf-8", "replace")[-tail:]

    def alive(self):
        return self.proc.poll() is None

    def request(self, method, path, body=None, headers=None, timeout=60):
        """One request on a fresh connection: (status, headers dict (lower-case names), body bytes)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                headers = {"Content-Type": "application/json", **(headers or {})}
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            conn.close()

    def json(self, method, path, body=None, timeout=60):
        status, _, data = self.request(method, path, body, timeout=timeout)
        assert status == 200, f"{method} {path} -> {status}: {data[:500]!r}"
        return json.loads(data)

    def metrics(self):
        """The sglang:* gauges of /metrics as {name: value} (first sample of each)."""
        status, _, data = self.request("GET", "/metrics")
        assert status == 200, data
        values = {}
        for line in data.decode().splitlines():
            m = re.match(r"^(sglang:[a-z_]+)(?:\{[^}]*\})? ([-+0-9.eEinfINFaN]+)$", line)
            if m and m.group(1) not in values:
                values[m.group(1)] = float(m.group(2))
        return values

    def wait_idle(self, timeout=60):
        """Waits until the scheduler reports nothing running and nothing queued; returns the last gauges."""
        deadline = time.time() + timeout
        while True:
            gauges = self.metrics()
            if gauges.get("sglang:num_running_reqs", 0) == 0 and gauges.get("sglang:num_queue_reqs", 0) == 0:
                return gauges
            if time.time() > deadline:
                raise AssertionError(f"server still busy after {timeout}s: {gauges}")
            time.sleep(0.2)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@contextlib.contextmanager
def running_server(binary, model_dir, *extra_args):
    server = ServerProcess(binary, model_dir, *extra_args)
    try:
        yield server
    finally:
        server.stop()
        with contextlib.suppress(OSError):
            os.unlink(server.log.name)
