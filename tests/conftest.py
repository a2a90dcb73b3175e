"""Shared pytest fixtures for the end-to-end tests, which drive the real radixlm binary."""
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def radixlm_bin() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("RADIXLM_BIN", REPO / "build" / "release" / "src" / "apps" / "radixlm"))
    if not path.exists():
        pytest.fail(f"radixlm binary not found at {path}: build first (scripts/test.sh does)")
    return path


@pytest.fixture(scope="session")
def fixtures_dir() -> pathlib.Path:
    return FIXTURES


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RadixlmServer:
    """A running `radixlm serve` on a free local port; `url` is its base URL, `log()` its output so far."""

    def __init__(self, binary, args, startup_timeout):
        import subprocess
        import tempfile
        import time
        import urllib.request

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = tempfile.NamedTemporaryFile(prefix="radixlm-serve-", suffix=".log", delete=False)
        self.args = [str(binary), "serve", "--host", "127.0.0.1", "--port", str(self.port), *map(str, args)]
        self.proc = subprocess.Popen(self.args, stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.time() + startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"radixlm serve exited {self.proc.returncode} at startup:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.time() > deadline:
                self.kill()
                raise AssertionError(f"radixlm serve not healthy within {startup_timeout}s:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        with open(self.log_file.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def radixlm_server(radixlm_bin):
    """Factory: radixlm_server(*extra_args, startup_timeout=120) starts `radixlm serve` (the bundled demo model
    unless the args give --model-path) on a free port, waits for /health, and returns the server; its `url` is
    the base URL. Every server it started is killed at teardown."""
    started = []

    def start(*extra_args, startup_timeout=120):
        server = RadixlmServer(radixlm_bin, extra_args, startup_timeout)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()
