"""Hostile clients against a real `radixlm serve` (the tiny Llama 3.2 chat fixture on the CPU).

- Over 10,000 malformed or hostile requests on every generation route: each is answered with a 4xx (a JSON
  error in OpenAI's shape when there is a body), never a 5xx or a crash, and nothing is left running.
- 500 clients that go away mid-stream in several ways: afterwards nothing runs or waits, /flush_cache
  succeeds (SGLang's flush refuses while any request still holds the cache) and the KV usage gauge is 0.
- A small --max-queued-requests: surplus requests get 429 with Retry-After; every admitted one completes in
  full.
"""
import asyncio
import http.client
import json
import pathlib
import random
import socket
import struct
import sys
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "bench"))
from serving_process import running_server  # noqa: E402

MODEL = "llama3.2-tiny-chat"
VOCAB = 128256


@pytest.fixture(scope="module")
def server(radixlm_bin, fixtures_dir):
    with running_server(radixlm_bin, fixtures_dir / "models" / MODEL, "--enable-metrics") as s:
        yield s


# ---------------------------------------------------------------------------------------------------------
# Malformed requests


def error_shape_problem(status, body):
    """None when `body` is empty or an OpenAI-shaped JSON error; else what is wrong with it."""
    if not body:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return f"error body is not JSON: {body[:200]!r}"
    if not isinstance(parsed, dict):
        return f"error body is not an object: {body[:200]!r}"
    holder = parsed["error"] if isinstance(parsed.get("error"), dict) else parsed
    if not isinstance(holder.get("message"), str):
        return f"error body has no message: {body[:200]!r}"
    if "code" in holder and holder["code"] not in (status, str(status)) and not isinstance(holder["code"], str):
        return f"error body code {holder['code']} != HTTP {status}"
    return None


# Each of these alone makes a request invalid (OpenAI's and SGLang's documented ranges and types), so any
# combination of them must be refused. Sampling fields sit at the top level of the OpenAI routes and under
# sampling_params for /generate.
SAMPLING_MUTATIONS = [
    ("temperature", -1), ("temperature", -1e308), ("temperature", "hot"), ("temperature", [0.5]),
    ("temperature", {"v": 1}),
    ("top_p", 1.5), ("top_p", -0.1), ("top_p", 0), ("top_p", "most"),
    ("top_k", 0), ("top_k", -5), ("top_k", "many"), ("top_k", [3]),
    ("min_p", 1.5), ("min_p", -0.5),
    ("frequency_penalty", 2.5), ("frequency_penalty", -2.5), ("frequency_penalty", "x"),
    ("presence_penalty", 3), ("presence_penalty", -3), ("presence_penalty", [1]),
    ("repetition_penalty", 0), ("repetition_penalty", -1), ("repetition_penalty", 2.5),
    ("stop", 5), ("stop", [1, 2]), ("stop", {"a": 1}),
    ("stop_token_ids", "x"), ("stop_token_ids", [["a"]]),
    ("seed", "x"), ("seed", [1]),
]
OPENAI_MUTATIONS = [
    ("max_tokens", -1), ("max_tokens", 10**12), ("max_tokens", "ten"), ("max_tokens", [4]), ("max_tokens", -10**18),
    ("n", 0), ("n", -1), ("n", 10**9), ("n", "two"),
    ("min_tokens", -1), ("min_tokens", 100),  # more than max_tokens
    ("model", 5), ("model", ["m"]),
    ("stream", [1]), ("stream", {"on": 1}),
    ("logit_bias", "x"), ("logit_bias", [1]),
]
COMPLETION_MUTATIONS = [
    ("prompt", 5), ("prompt", None), ("prompt", []), ("prompt", [-1]), ("prompt", [10**10]), ("prompt", [VOCAB]),
    ("prompt", [VOCAB + 100000]), ("prompt", {"a": 1}), ("prompt", [1.5]), ("prompt", [[1, -2]]),
    ("logprobs", -1), ("logprobs", "x"), ("logprobs", 10**7),
    ("echo", [1]),
]
CHAT_MUTATIONS = [
    ("messages", "hi"), ("messages", []), ("messages", None), ("messages", [1, 2]),
    ("messages", [{"role": "robot", "content": "x"}]), ("messages", [{"content": "x"}]),
    ("messages", [{"role": "user", "content": 5}]), ("messages", [{"role": "user", "content": {"a": 1}}]),
    ("messages", [{"role": "user", "content": [{"type": "bogus", "x": 1}]}]),
    ("logprobs", "x"), ("top_logprobs", 10**7), ("top_logprobs", -1), ("top_logprobs", "x"),
    ("tools", "x"), ("tools", [{"type": "function"}]), ("tool_choice", 5),
    ("response_format", "json"), ("response_format", {"type": "nonsense"}),
]
GENERATE_MUTATIONS = [
    ("input_ids", [-1]), ("input_ids", [999999999]), ("input_ids", [VOCAB]), ("input_ids", "abc"),
    ("input_ids", [[]]), ("input_ids", []), ("input_ids", [1.5]), ("input_ids", {"a": 1}),
    ("text", 5), ("text", {"a": 1}),
    ("sampling_params", "x"), ("sampling_params", [1]),
    ("stream", [1]),
    ("return_logprob", [1]),
]
GENERATE_SAMPLING_ONLY = [
    ("max_new_tokens", -1), ("max_new_tokens", 10**12), ("max_new_tokens", "ten"),
    ("min_new_tokens", -1), ("min_new_tokens", 100),
    ("n", 0), ("n", -1), ("n", 10**9),
]


def base_body(route):
    if route == "/generate":
        return {"text": "Hello", "sampling_params": {"max_new_tokens": 4, "temperature": 0}}
    if route == "/v1/completions":
        return {"model": MODEL, "prompt": "Hello", "max_tokens": 4}
    if route == "/v1/chat/completions":
        return {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4}
    raise AssertionError(route)


def mutated_bodies(count, seed):
    """`count` (route, JSON body) pairs, each with one to three invalid fields."""
    rng = random.Random(seed)
    routes = ["/generate", "/v1/completions", "/v1/chat/completions"]
    out = []
    for i in range(count):
        route = routes[i % 3]
        body = base_body(route)
        if route == "/generate":
            pool = [("sp", m) for m in SAMPLING_MUTATIONS + GENERATE_SAMPLING_ONLY] + [("top", m) for m in GENERATE_MUTATIONS]
        elif route == "/v1/completions":
            pool = [("top", m) for m in SAMPLING_MUTATIONS + OPENAI_MUTATIONS + COMPLETION_MUTATIONS]
        else:
            pool = [("top", m) for m in SAMPLING_MUTATIONS + OPENAI_MUTATIONS + CHAT_MUTATIONS]
        for where, (key, value) in rng.sample(pool, rng.randint(1, 3)):
            if where == "sp" and isinstance(body.get("sampling_params"), dict):
                body["sampling_params"][key] = value
            else:
                body[key] = value
            if route == "/generate" and key == "input_ids":
                body.pop("text", None)
        if rng.random() < 0.3:
            if route == "/generate":
                body["stream"] = True if "stream" not in body else body["stream"]
            else:
                body.setdefault("stream", True)
        if rng.random() < 0.1 and route == "/generate" and "input_ids" not in body:
            body["input_ids"] = [1, 2, 3]  # both text and input_ids
        out.append((route, json.dumps(body).encode()))
    return out


def raw_json_bodies():
    """Bodies no JSON library writes: NaN/Infinity literals, invalid UTF-8, deep nesting, broken syntax."""
    out = []
    for route in ["/generate", "/v1/completions", "/v1/chat/completions", "/v1/tokenize"]:
        # Literals JSON does not have (any route), then numbers JSON has but no field here accepts: +-1e400
        # (infinite once parsed) and an integer past int64 (only where it is out of range: not temperature).
        literals = [(lit, b"temperature max_tokens top_p n top_k")
                    for lit in [b"NaN", b"Infinity", b"-Infinity", b"nan", b"inf", b"0x10", b"01", b"1.", b".5", b"+1"]]
        if route != "/v1/tokenize":
            literals += [(b"1e400", b"temperature max_tokens top_p n top_k"), (b"-1e400", b"temperature max_tokens top_p n top_k"),
                         (b"100000000000000000000000000000", b"max_tokens top_p n top_k")]
        for literal, fields in literals:
            for field in fields.split():
                if route == "/generate":
                    out.append((route, b'{"text": "hi", "sampling_params": {"' + field + b'": ' + literal + b"}}"))
                else:
                    out.append((route, b'{"model": "m", "prompt": "hi", "messages": [{"role": "user", "content": "hi"}], "'
                                + field + b'": ' + literal + b"}"))
        for bad in [b"\xff", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"a\x00b", b"\x80\x80"]:
            key = b"text" if route == "/generate" else b"prompt"
            out.append((route, b'{"' + key + b'": "x' + bad + b'y", "messages": [{"role": "user", "content": "a'
                        + bad + b'"}]}'))
            out.append((route, b'{"' + bad + b'": 1}'))
        for escape in [b"\\ud800", b"\\udc00x", b"\\uZZZZ", b"\\x41", b"\\"]:
            out.append((route, b'{"prompt": "' + escape + b'", "text": "' + escape + b'"}'))
        for depth in [1000, 100000]:
            out.append((route, b'{"prompt": ' + b"[" * depth + b"]" * depth + b"}"))
            out.append((route, b'{"text": ' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"))
            out.append((route, b"[" * depth))  # unterminated
        for broken in [b"", b" ", b"{", b"}", b'{"prompt": "ab', b'{"prompt": "a"', b'{"prompt": "a"}x', b"null",
                       b"true", b"1", b'"str"', b"[]", b"{}", b"{,}", b'{"a" 1}', b"{'prompt': 'a'}",
                       b'{"prompt": "a",}', b"\xef\xbb\xbf{}", b"\x00" * 64, bytes(range(256))]:
            out.append((route, broken))
    return out


def send_json_requests(server, cases, threads=4):
    """Sends (route, body) cases on keep-alive connections; returns [(route, body, status, headers, data)]."""
    results = [None] * len(cases)
    lock = threading.Lock()
    next_index = [0]

    def worker():
        conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= len(cases):
                break
            route, body = cases[i]
            for attempt in range(2):
                try:
                    conn.request("POST", route, body=body, headers={"Content-Type": "application/json"})
                    response = conn.getresponse()
                    data = response.read()
                    results[i] = (route, body, response.status, dict(response.getheaders()), data)
                    if response.will_close:
                        conn.close()
                    break
                except (http.client.HTTPException, OSError) as e:
                    conn.close()
                    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
                    if attempt == 1:
                        results[i] = (route, body, None, {}, repr(e).encode())
        conn.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return results


def raw_exchange(server, payload, read_timeout=5.0, shutdown_write=False):
    """Writes raw bytes on a fresh connection; returns (status or None, body bytes, error text)."""
    with socket.create_connection((server.host, server.port), timeout=read_timeout) as s:
        try:
            s.sendall(payload)
            if shutdown_write:
                s.shutdown(socket.SHUT_WR)
        except OSError as e:  # the server may refuse mid-upload (413, 431) and close
            return read_response(s), b"", repr(e)
        return read_response(s), b"", ""


def read_response(s):
    """The first response on `s` as (status, body) or None when the server closed without one."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        while head.startswith(b"HTTP/1.1 100"):  # an interim 100 Continue: the answer follows
            data = rest
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1."):
            return None
        status = int(head.split(b" ")[1])
        length = None
        chunked = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
            if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if length is not None:
            while len(rest) < length:
                chunk = s.recv(65536)
                if not chunk:
                    break
                rest += chunk
            rest = rest[:length]
        elif chunked:
            rest = b""  # streamed answers are not expected here; the status is what counts
        return status, rest
    except (OSError, ValueError, IndexError):
        return None


def raw_cases():
    """(name, bytes, may_close_silently) for one connection each."""
    json_body = b'{"text": "hi", "sampling_params": {"max_new_tokens": 2}}'
    cases = []
    for method in [b"FOO", b"GETT", b"get", b"PRI", b"BREW", b"TRACE", b"CONNECT", b"PATCH", b"DELETE", b"PUT",
                   b"G\x00T", b"\xff\xfe", b"POST\tX", b"OPTIONS"]:
        for path in [b"/generate", b"/v1/completions", b"/v1/chat/completions", b"/health", b"/nope"]:
            cases.append((f"method {method!r} {path!r}", method + b" " + path + b" HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: 0\r\n\r\n", method in (b"G\x00T", b"\xff\xfe", b"POST\tX")))
    for line in [b"GET\r\n\r\n", b"GET /health\r\n\r\n", b"GET /health HTTP/9.9\r\n\r\n", b"GET /health HTTP/1.1 x\r\n\r\n",
                 b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
                 b"HTTP/1.1 200 OK\r\n\r\n", b"\r\n\r\n\r\n", b" GET /health HTTP/1.1\r\n\r\n",
                 b"GET  /health  HTTP/1.1\r\n\r\n", b"GET health HTTP/1.1\r\n\r\n", b"\x00\x01\x02\x03\r\n\r\n"]:
        cases.append((f"request line {line[:30]!r}", line, True))
    for path in [b"/nope", b"/v1/nope", b"/v2/completions", b"/generate/x", b"/../../etc/passwd", b"/%00",
                 b"/generate%20", b"/v1/models/../../x", b"/" + b"a" * 8000, b"/?" + b"q=1&" * 2000,
                 b"/v1/chat/completions/", b"/GENERATE", b"//generate"]:
        cases.append((f"route {path[:40]!r}", b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"application/json\r\nContent-Length: " + str(len(json_body)).encode() + b"\r\n\r\n" + json_body,
                      False))
    head = b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    cases += [
        ("header 100 KB", head + b"X-Big: " + b"a" * 100000 + b"\r\nContent-Length: 2\r\n\r\n{}", True),
        ("10000 headers", head + b"".join(b"X-%d: v\r\n" % i for i in range(10000)) + b"Content-Length: 2\r\n\r\n{}", True),
        ("header without colon", head + b"NoColon\r\nContent-Length: 2\r\n\r\n{}", True),
        ("header name with space", head + b"Bad Name: v\r\nContent-Length: 2\r\n\r\n{}", True),
        ("header with NUL", head + b"X-A: a\x00b\r\nContent-Length: 2\r\n\r\n{}", True),
        ("content-length -1", head + b"Content-Length: -1\r\n\r\n{}", True),
        ("content-length abc", head + b"Content-Length: abc\r\n\r\n{}", True),
        ("content-length 10^20", head + b"Content-Length: 99999999999999999999\r\n\r\n{}", True),
        ("content-length past the limit", head + b"Content-Length: 999999999999\r\n\r\n{}", True),
        ("two content-lengths", head + b"Content-Length: 2\r\nContent-Length: 5\r\n\r\n{}abc", True),
        ("content-length shorter", head + b"Content-Length: 10\r\n\r\n" + json_body, True),
        ("chunked bad size", head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", True),
        ("chunked and length", head + b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n", True),
        ("transfer-encoding gzip", head + b"Transfer-Encoding: gzip\r\n\r\n{}", True),
        ("chunk size overflow", head + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n{}\r\n0\r\n\r\n", True),
        ("expect 100-continue", head + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n[]", True),
        ("content-type text", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                              b"Content-Length: 5\r\n\r\nhello", False),
    ]
    # Truncated bodies: the connection closes (write side) before Content-Length bytes came.
    for cut in [0, 1, 10, len(json_body) - 1]:
        cases.append((f"truncated at {cut}", head + b"Content-Length: " + str(len(json_body)).encode() + b"\r\n\r\n"
                      + json_body[:cut], True))
    return cases


def assert_no_server_errors(problems, label):
    assert not problems, f"{len(problems)} {label} problems; first ones:\n" + "\n".join(problems[:15])


@pytest.mark.slow
def test_ten_thousand_malformed_requests_get_4xx(server):
    cases = mutated_bodies(9600, seed=1) + raw_json_bodies()
    cases += [(route, b"{}") for route in ["/nope", "/v1/nope", "/v1/models/x/y", "/generate/1", "/v1"]]
    assert len(cases) >= 10000 - 300
    results = send_json_requests(server, cases)
    problems = []
    for route, body, status, headers, data in results:
        if status is None or not 400 <= status < 500:
            problems.append(f"POST {route} {body[:300]!r} -> {status}: {data[:300]!r}")
            continue
        shape = error_shape_problem(status, data)
        if shape:
            problems.append(f"POST {route} {body[:200]!r} -> {status}: {shape}")
    assert server.alive(), server.log_text()
    assert_no_server_errors(problems, "malformed-JSON")

    raw = raw_cases() * 2
    raw_problems = []
    for name, payload, may_close in raw:
        response = raw_exchange(server, payload, shutdown_write=name.startswith("truncated"))[0]
        if response is None:
            if not may_close:
                raw_problems.append(f"{name}: closed without an answer")
            continue
        status, data = response
        if not 400 <= status < 500:
            raw_problems.append(f"{name}: HTTP {status} {data[:200]!r}")
        elif error_shape_problem(status, data):
            raw_problems.append(f"{name}: {error_shape_problem(status, data)}")
    big = raw_exchange(server, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 40000000\r\n\r\n" + b"[" * 40000000, read_timeout=30)[0]
    if big is not None and not 400 <= big[0] < 500:
        raw_problems.append(f"40 MB body: HTTP {big[0]}")
    assert server.alive(), server.log_text()
    assert_no_server_errors(raw_problems, "raw-HTTP")
    assert len(results) + len(raw) >= 10000

    status, _, _ = server.request("GET", "/health")
    assert status == 200
    gauges = server.wait_idle(timeout=30)
    assert gauges["sglang:num_running_reqs"] == 0 and gauges["sglang:num_queue_reqs"] == 0
    # And it still serves a well-formed request.
    out = server.json("POST", "/generate", {"text": "Hello", "sampling_params": {"max_new_tokens": 3, "ignore_eos": True}})
    assert out["meta_info"]["completion_tokens"] == 3


# ---------------------------------------------------------------------------------------------------------
# Clients that leave mid-stream


async def leave_mid_stream(host, port, mode, index):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        if mode == "chat":
            body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": f"Tell a story {index}"}],
                               "max_tokens": 400, "ignore_eos": True, "stream": True}).encode()
            route = b"/v1/chat/completions"
        elif mode == "completions":
            body = json.dumps({"model": MODEL, "prompt": f"Once upon a time {index}", "max_tokens": 400,
                               "ignore_eos": True, "stream": True, "n": 2}).encode()
            route = b"/v1/completions"
        else:
            body = json.dumps({"text": f"Count with me {index}:", "stream": mode != "non_stream",
                               "sampling_params": {"max_new_tokens": 400, "ignore_eos": True}}).encode()
            route = b"/generate"
        request = (b"POST " + route + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
                   + str(len(body)).encode() + b"\r\n\r\n" + body)
        if mode == "half_body":
            writer.write(request[: len(request) - len(body) // 2])
            await writer.drain()
            return
        writer.write(request)
        await writer.drain()
        if mode in ("immediately", "non_stream"):
            await asyncio.sleep(0.05 if mode == "non_stream" else 0)
            return
        seen = b""
        wanted = 1 + index % 4  # leave after a few events
        while seen.count(b"data:") < wanted:
            chunk = await asyncio.wait_for(reader.read(4096), timeout=60)
            if not chunk:
                raise AssertionError(f"server closed a {mode} stream early: {seen[:300]!r}")
            seen += chunk
        assert seen.startswith(b"HTTP/1.1 200"), seen[:300]
    finally:
        sock = writer.get_extra_info("socket")
        if index % 2 and sock is not None:  # half of them reset the connection instead of closing it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()


async def many_leavers(host, port, count, concurrency):
    modes = ["generate", "generate", "chat", "completions", "half_body", "immediately", "non_stream"]
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i):
        async with semaphore:
            await leave_mid_stream(host, port, modes[i % len(modes)], i)

    return await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)


@pytest.mark.slow
def test_clients_leaving_mid_stream_free_everything(server):
    results = asyncio.run(many_leavers(server.host, server.port, 500, 100))
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    assert not failures, failures[:10]
    assert server.alive(), server.log_text()
    gauges = server.wait_idle(timeout=90)
    assert gauges["sglang:num_running_reqs"] == 0 and gauges["sglang:num_queue_reqs"] == 0
    # SGLang's /flush_cache refuses while any request still holds pages; it must succeed now, and then no KV
    # page is in use at all.
    deadline = time.time() + 30
    while True:
        status, _, data = server.request("POST", "/flush_cache")
        if status == 200 or time.time() > deadline:
            break
        time.sleep(0.5)
    assert status == 200, data
    gauges = server.metrics()
    assert gauges["sglang:token_usage"] == 0, gauges
    status, _, data = server.request("GET", "/get_server_info")
    assert status == 200, data
    status, _, _ = server.request("GET", "/health")
    assert status == 200


# ---------------------------------------------------------------------------------------------------------
# Queue overflow


def fire(server, kind, max_tokens, results, index):
    try:
        if kind == "generate":
            status, headers, data = server.request("POST", "/generate", {
                "text": f"Request {index}", "sampling_params": {"max_new_tokens": max_tokens, "ignore_eos": True}},
                timeout=300)
            results[index] = (kind, status, headers, data)
        else:
            status, headers, data = server.request("POST", "/v1/completions", {
                "model": MODEL, "prompt": f"Request {index}", "max_tokens": max_tokens, "ignore_eos": True,
                "stream": True, "stream_options": {"include_usage": True}}, timeout=300)
            results[index] = (kind, status, headers, data)
    except Exception as e:  # noqa: BLE001 - reported by the test
        results[index] = (kind, None, {}, repr(e).encode())


@pytest.mark.slow
def test_queue_overflow_gets_429_and_admitted_requests_finish(radixlm_bin, fixtures_dir):
    with running_server(radixlm_bin, fixtures_dir / "models" / MODEL, "--max-running-requests", "2", "--enable-metrics",
                        "--max-queued-requests", "3") as s:
        max_tokens = 48
        count = 40
        results = [None] * count
        threads = [threading.Thread(target=fire, args=(s, "generate" if i % 2 == 0 else "stream", max_tokens, results, i))
                   for i in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        refused = admitted = 0
        for kind, status, headers, data in results:
            assert status in (200, 429), (kind, status, data[:300])
            if status == 429:
                refused += 1
                assert "retry-after" in headers, headers
                assert error_shape_problem(429, data) is None, data
                continue
            admitted += 1
            if kind == "generate":
                assert json.loads(data)["meta_info"]["completion_tokens"] == max_tokens
            else:
                events = [line[len(b"data: "):] for line in data.split(b"\n") if line.startswith(b"data: ")]
                assert events[-1] == b"[DONE]", events[-3:]
                usage = [json.loads(e)["usage"] for e in events[:-1] if json.loads(e).get("usage")]
                assert usage and usage[-1]["completion_tokens"] == max_tokens, usage
                finish = [c.get("finish_reason") for e in events[:-1] for c in json.loads(e).get("choices", [])]
                assert "length" in finish
        assert refused > 0, "no request was refused with 429"
        assert admitted >= 2
        gauges = s.wait_idle(timeout=60)
        assert gauges["sglang:num_queue_reqs"] == 0
        assert s.alive()
