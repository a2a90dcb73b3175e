"""`radixlm serve` launched as SGLang's launch_server is: SGLang launch lines start (tuning knobs radixlm does not
have warn by name), flags SGLang lacks are usage errors (exit 2, as argparse), features that would change results
stop startup with an error naming the flag, the startup log carries the memory plan, /health answers once the
server says it is ready, and SIGTERM drains in-flight streams before exiting 0."""
import http.client
import json
import signal
import subprocess
import threading
import time

import pytest


def run_serve(radixlm_bin, *args, timeout=120):
    return subprocess.run([str(radixlm_bin), "serve", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def get(server, path, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------------------
# Flags that never get as far as loading a model


@pytest.mark.parametrize("args, named", [
    (["--not-an-sglang-flag", "1"], "--not-an-sglang-flag"),
    (["--port", "abc"], "--port"),
    (["--port"], "--port"),
    (["--enable-metrics=yes"], "--enable-metrics"),
    (["--schedule-policy", "fastest"], "--schedule-policy"),
    (["stray-positional"], "stray-positional"),
    (["--max-lo", "4"], "ambiguous option"),
    (["--enable-expert-distribution-metrics"], "--expert-balancedness-report-mode"),
])
def test_usage_errors_exit_2_naming_the_flag(radixlm_bin, args, named):
    proc = run_serve(radixlm_bin, *args)
    assert proc.returncode == 2, proc.stderr
    assert named in proc.stderr
    assert "ready to roll" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("args, named", [
    (["--enable-ep-moe"], "--enable-ep-moe"),
    (["--quantization", "fp8"], "--quantization"),
    (["--quantization=awq"], "--quantization"),
    (["--tp", "2"], "--tp-size"),
    (["--tensor-parallel-size", "8"], "--tp-size"),
    (["--dp-size", "2"], "--dp-size"),
    (["--speculative-algo", "EAGLE"], "--speculative-algorithm"),
    (["--disaggregation-mode", "prefill"], "--disaggregation-mode"),
    (["--grammar-backend", "xgrammar"], "--grammar-backend"),
    (["--kv-cache-dtype", "fp8_e5m2"], "--kv-cache-dtype"),
    (["--lora-paths", "adapter=/tmp/x"], "--lora-paths"),
    (["--ssl-certfile", "cert.pem", "--ssl-keyfile", "key.pem"], "--ssl-certfile"),
])
def test_result_changing_flags_are_refused_by_name(radixlm_bin, args, named):
    proc = run_serve(radixlm_bin, *args)
    assert proc.returncode == 1, proc.stderr
    assert named in proc.stderr
    assert "not supported" in proc.stderr or "accepts only" in proc.stderr


def test_help_lists_the_implemented_flags(radixlm_bin):
    proc = run_serve(radixlm_bin, "--help")
    assert proc.returncode == 0, proc.stderr
    for flag in ("--model-path", "--mem-fraction-static", "--chunked-prefill-size", "--api-key", "--tp-size"):
        assert flag in proc.stdout


def test_port_in_use_is_a_clear_error(radixlm_bin, radixlm_server):
    first = radixlm_server()
    proc = run_serve(radixlm_bin, "--port", first.port, "--host", "127.0.0.1")
    assert proc.returncode != 0
    assert "ready to roll" not in proc.stdout + proc.stderr
    assert str(first.port) in proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------------------------
# Starting


def test_sglang_launch_line_starts_and_warns_about_tuning_knobs(radixlm_server, fixtures_dir):
    model = fixtures_dir / "models" / "llama3.2-tiny-chat"
    server = radixlm_server("--model-path", model, "--tp", "1", "--mem-fraction-static", "0.8",
                            "--chunked-prefill-size", "4096", "--enable-metrics", "--attention-backend", "flashinfer",
                            "--disaggregation-mode", "null", "--trust-remote-code", "--max-total-tokens", "20000")
    status, _ = get(server, "/health")
    assert status == 200
    log = server.log()
    warnings = [line for line in log.splitlines() if "--attention-backend" in line]
    assert len(warnings) == 1 and "warn" in warnings[0].lower(), log
    plan = [line for line in log.splitlines() if "max_total_num_tokens=" in line]
    assert len(plan) == 1, log
    # The CPU pool is --max-total-tokens (page size 1) and the flags reach the plan.
    assert "max_total_num_tokens=20000" in plan[0], plan[0]
    assert "chunked_prefill_size=4096" in plan[0], plan[0]
    assert "context_length=4096" in plan[0], plan[0]  # the fixture's max_position_embeddings
    assert "#pages=20000" in plan[0], plan[0]
    assert "weights=" in plan[0] and "kv_cache=" in plan[0] and "max_running_requests=" in plan[0]
    assert log.index("max_total_num_tokens=") < log.index("The server is fired up and ready to roll!")


def test_demo_model_by_default_with_page_size(radixlm_server):
    server = radixlm_server("--page-size", "16", "--max-total-tokens", "1000")
    status, _ = get(server, "/health")
    assert status == 200
    log = server.log()
    assert "demo model" in log
    # 1000 tokens in pages of 16: 62 whole pages.
    assert "#pages=62" in log and "max_total_num_tokens=992" in log, log


def get_json(server, path, key=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {key}"} if key else {})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def test_server_info_has_the_effective_arguments_and_no_secrets(radixlm_server):
    key = "sk-serve-test-9f3a"
    server = radixlm_server("--api-key", key, "--served-model-name", "my-model", "--chunked-prefill-size", "2048",
                            "--max-total-tokens", "5000", "--page-size", "4", "--random-seed", "7",
                            "--enable-torch-compile", "--schedule-policy", "lpm")
    status, _ = get_json(server, "/server_info")
    assert status == 401
    status, body = get_json(server, "/server_info", key)
    assert status == 200, body
    assert key not in body
    info = json.loads(body)
    assert info["chunked_prefill_size"] == 2048
    assert info["max_total_num_tokens"] == 5000
    assert info["page_size"] == 4
    assert info["random_seed"] == 7
    assert info["schedule_policy"] == "lpm"
    assert info["served_model_name"] == "my-model"
    assert info["port"] == server.port
    assert info["ignored_flags"] == ["--enable-torch-compile"]
    status, body = get_json(server, "/v1/models", key)
    assert status == 200, body
    assert [m["id"] for m in json.loads(body)["data"]] == ["my-model"]


def test_bad_model_path_fails_startup(radixlm_bin, tmp_path):
    proc = run_serve(radixlm_bin, "--model-path", tmp_path / "missing", "--port", "0")
    assert proc.returncode != 0
    assert "ready to roll" not in proc.stdout + proc.stderr
    assert "missing" in proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------------------------
# Graceful shutdown


def stream_completion(server, max_tokens, chunks, done, started):
    """Streams /v1/completions; appends each SSE data payload to `chunks`; sets `started` at the first one."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        body = {"model": "m", "prompt": "Once upon a time", "max_tokens": max_tokens, "stream": True,
                "temperature": 0, "ignore_eos": True}
        conn.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        chunks.append(("status", response.status))
        buffer = b""
        while True:
            data = response.read1(65536) if hasattr(response, "read1") else response.read(1)
            if not data:
                break
            buffer += data
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                if event.startswith(b"data: "):
                    chunks.append(event[len(b"data: "):].decode())
                    started.set()
    except (OSError, http.client.HTTPException) as e:  # a connection closed when the grace period ended
        chunks.append(("error", repr(e)))
    finally:
        conn.close()
        started.set()
        done.set()


def finish_reasons(chunks):
    reasons = []
    for c in chunks:
        if isinstance(c, str) and c != "[DONE]":
            for choice in json.loads(c).get("choices", []):
                if choice.get("finish_reason"):
                    reasons.append(choice["finish_reason"])
    return reasons


def late_generate_status(conn):
    """The status of a /generate sent on `conn`, or None when the connection is refused or closed."""
    try:
        conn.request("POST", "/generate", body=json.dumps({"text": "hi", "sampling_params": {"max_new_tokens": 4}}),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def test_sigterm_drains_a_streaming_request_then_exits_0(radixlm_server):
    server = radixlm_server("--graceful-shutdown-timeout", "60")
    # A keep-alive connection opened before the signal: the request it sends afterwards must get 503.
    idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    idle.request("GET", "/health")
    assert idle.getresponse().read() is not None

    chunks, done, started = [], threading.Event(), threading.Event()
    thread = threading.Thread(target=stream_completion, args=(server, 3000, chunks, done, started), daemon=True)
    thread.start()
    assert started.wait(60), server.log()
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)

    # While draining, a generation request either finds the door shut (new connections are refused, idle
    # keep-alive ones closed) or gets 503; it never runs.
    assert late_generate_status(idle) in (None, 503)
    fresh = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    assert late_generate_status(fresh) in (None, 503)
    assert not done.is_set(), "the stream ended as soon as the signal came"

    assert done.wait(60), server.log()
    assert server.proc.wait(timeout=60) == 0, server.log()
    assert chunks[0] == ("status", 200), chunks[:3]
    assert chunks[-1] == "[DONE]", chunks[-3:]
    assert finish_reasons(chunks) == ["length"], (chunks[-3:], server.log())
    tokens = sum(1 for c in chunks[1:] if isinstance(c, str) and c != "[DONE]" and json.loads(c)["choices"])
    assert tokens >= 100, tokens  # the request ran on after the signal
    assert "SIGTERM" in server.log()


def test_sigterm_aborts_what_outlives_the_grace_period(radixlm_server):
    server = radixlm_server("--graceful-shutdown-timeout", "0.5", "--max-total-tokens", "8192")
    chunks, done, started = [], threading.Event(), threading.Event()
    thread = threading.Thread(target=stream_completion, args=(server, 4000, chunks, done, started), daemon=True)
    thread.start()
    assert started.wait(60), server.log()
    begin = time.time()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0, server.log()
    assert time.time() - begin < 15
    assert done.wait(30)
    assert "length" not in finish_reasons(chunks)  # it did not run to its end


def test_sigint_exits_0_when_idle(radixlm_server):
    server = radixlm_server()
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=30) == 0, server.log()
    assert "Shutdown complete" in server.log()
