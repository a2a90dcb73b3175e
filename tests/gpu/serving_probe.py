#!/usr/bin/env python3
"""Helpers of tests/gpu/serving.sh (the serving stages of the GPU run); standard library only, since the GPU
machine has nothing else we can count on.

  ready  --port P --t0 EPOCH --pid PID --timeout S
      Polls GET /health until it answers 200 and prints the seconds since T0 (the wall clock taken just
      before the server was started), then sends one /generate request with input_ids (the server has no
      tokenizer) and prints the seconds since T0 at which it completed. Exits 1 if the server dies or is not
      ready in time.
  stats  --bench FILE.jsonl [--server-log LOG]
      Reads the last line `radixlm bench serving --output-file` appended and prints TTFT/ITL/throughput, plus
      the decode batch size the median generated token saw: for every streamed token (start + TTFT + the
      running sum of its ITLs), the number of requests past their first token and not yet finished at that
      moment; the median over tokens is what the median ITL was measured at. Prints `batch_for_one_batch=N`
      for the shell. With --server-log, the same median from the server's "Decode batch" lines (#running-req
      of every --decode-log-interval'th step, each weighted by its batch) as a cross-check.
  ratio  --bench FILE.jsonl --one-batch FILE.json
      ITL p50 of the serving run over the median decode step of `radixlm bench one-batch` at that batch.
"""
import argparse
import bisect
import json
import os
import re
import statistics
import sys
import time
import urllib.error
import urllib.request


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by the shell) still answers kill(0).
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def cmd_ready(a):
    base = f"http://127.0.0.1:{a.port}"
    deadline = a.t0 + a.timeout
    ready_s = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(base + "/health", timeout=2) as r:
                if r.status == 200:
                    ready_s = time.time() - a.t0
                    break
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if a.pid and not alive(a.pid):
            print("the server exited before /health answered 200 (see serve.log)")
            return 1
        time.sleep(0.05)
    if ready_s is None:
        print(f"/health did not answer 200 within {a.timeout:.0f} s of the start")
        return 1
    if a.pid and not alive(a.pid):  # e.g. it could not bind, and another server holds the port
        print(f"/health answered 200 but the server started at T0 has exited (port {a.port} taken?)")
        return 1
    print(f"serve start-to-ready (process start to GET /health 200): {ready_s:.2f} s = "
          f"{ready_s / a.target_s:.2f} of the {a.target_s:g} s target")
    body = json.dumps({"input_ids": list(range(1000, 1000 + a.prompt_len)),
                       "sampling_params": {"max_new_tokens": a.max_new_tokens, "ignore_eos": True,
                                           "temperature": 0}}).encode()
    request = urllib.request.Request(base + "/generate", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=max(deadline - time.time(), 5)) as r:
            reply = json.loads(r.read())
    except (urllib.error.URLError, ConnectionError, OSError, ValueError) as e:
        print(f"the first /generate request failed: {e}")
        return 1
    done_s = time.time() - a.t0
    got = len(reply.get("output_ids", []))
    print(f"serve start to first completed request ({a.prompt_len} in / {got} out, /generate with input_ids): "
          f"{done_s:.2f} s = {done_s / a.target_s:.2f} of the {a.target_s:g} s target")
    if got != a.max_new_tokens:
        print(f"the first request returned {got} tokens, asked {a.max_new_tokens}: {reply}")
        return 1
    return 0


def last_json_line(path):
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    if not lines:
        raise SystemExit(f"{path} is empty")
    return json.loads(lines[-1])


def decode_batch_per_token(d):
    """The number of requests in their decode phase at each streamed token after the first."""
    firsts, ends, events = [], [], []
    for start, ttft, itls, e2e, err in zip(d["start_times"], d["ttfts"], d["itls"], d["e2e_latencies"],
                                           d["errors"]):
        if err or not itls:
            continue
        t = start + ttft
        firsts.append(t)
        ends.append(start + e2e)
        for gap in itls:
            t += gap
            events.append(t)
    firsts.sort()
    ends.sort()
    # In decode at t: first token at or before t, and finished at or after t.
    return [bisect.bisect_right(firsts, t) - bisect.bisect_left(ends, t) for t in events]


def server_running_reqs(log):
    pattern = re.compile(r"Decode batch\. #running-req: (\d+)")
    with open(log, errors="replace") as f:
        return [int(m.group(1)) for m in map(pattern.search, f) if m]


def cmd_stats(a):
    d = last_json_line(a.bench)
    print(f"requests: {d['completed']} completed, {d['failed']} failed, {d['duration']:.1f} s "
          f"(rate {d['request_rate']} req/s, seed {d['seed']}; input {d['total_input_tokens']} tokens, "
          f"output {d['total_output_tokens']} tokens)")
    print(f"TTFT ms: p50 {d['median_ttft_ms']:.1f}  p99 {d['p99_ttft_ms']:.1f}")
    print(f"ITL ms: p50 {d['median_itl_ms']:.2f}  p99 {d['p99_itl_ms']:.2f}  max {d['max_itl_ms']:.1f}")
    print(f"output tok/s: {d['output_throughput']:.0f}  (total tok/s {d['total_throughput']:.0f})")
    per_token = decode_batch_per_token(d)
    batch = round(statistics.median(per_token)) if per_token else max(round(d["concurrency"]), 1)
    line = f"concurrency: mean {d['concurrency']:.1f} (bench's metric)"
    if per_token:
        line += f", decode batch at the median token {statistics.median(per_token):.0f}"
    if a.server_log and os.path.exists(a.server_log):
        running = server_running_reqs(a.server_log)
        if running:
            # A step of batch n emits n tokens: weight each logged step by its batch, as the tokens above.
            weighted = statistics.median([n for n in running for _ in range(n)])
            line += f", server's #running-req at the median token {weighted:.0f} ({len(running)} logged steps)"
    print(line)
    print(f"batch_for_one_batch={max(batch, 1)}")
    return 0


def cmd_ratio(a):
    d = last_json_line(a.bench)
    with open(a.one_batch) as f:
        one = json.load(f)["results"][0]
    step = one["decode_median_step_ms"]
    ratio = d["median_itl_ms"] / step
    verdict = "met" if ratio <= 1.2 else "missed"
    print(f"one-batch at batch {one['batch_size']} ({one['input_len']} in / {one['output_len']} out): "
          f"decode step {step:.3f} ms")
    print(f"serving ITL p50 / one-batch decode step: {d['median_itl_ms']:.2f} / {step:.3f} = {ratio:.2f} "
          f"(target <= 1.2: {verdict})")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("ready")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--t0", type=float, required=True)
    r.add_argument("--pid", type=int, default=0)
    r.add_argument("--timeout", type=float, default=120)
    r.add_argument("--prompt-len", type=int, default=8)
    r.add_argument("--max-new-tokens", type=int, default=8)
    r.add_argument("--target-s", type=float, default=20, help="issue 6's start-to-ready target")
    s = sub.add_parser("stats")
    s.add_argument("--bench", required=True)
    s.add_argument("--server-log")
    o = sub.add_parser("ratio")
    o.add_argument("--bench", required=True)
    o.add_argument("--one-batch", required=True)
    a = p.parse_args()
    return {"ready": cmd_ready, "stats": cmd_stats, "ratio": cmd_ratio}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
