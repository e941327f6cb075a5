"""Drives bench/workflow_bench.sh: workflow executions per second and the latency of
config.get from the Python SDK, each next to its reference, against a running server.

Usage: workflow_bench.py ADDR ADMIN_TOKEN ORG_ID SDK_DIR
Prints one JSON object on stdout.
"""
import concurrent.futures
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse

ADDR, TOKEN, ORG, SDK_DIR = sys.argv[1:5]
RUNS = int(os.environ.get("RUNS", "200"))
GETS = int(os.environ.get("GETS", "2000"))
CLIENTS = int(os.environ.get("CLIENTS", "8"))


def connect():
    url = urllib.parse.urlsplit(ADDR)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=120)


def call(conn, method, path, body=None, token=TOKEN):
    headers = {"Authorization": "Bearer " + token}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    payload = response.read()
    if response.status >= 300:
        raise RuntimeError(f"{method} {path}: {response.status} {payload[:200]!r}")
    return json.loads(payload) if payload else None


def run_one(conn, workflow):
    """Starts one execution and waits for it; returns (seconds, status)."""
    start = time.perf_counter()
    execution = call(conn, "POST", f"/api/v1/orgs/{ORG}/workflows/{workflow}/executions",
                     {"parameters": {}})
    while execution["status"] in ("pending", "running"):
        execution = call(conn, "GET", f"/api/v1/executions/{execution['id']}?wait=10")
    return time.perf_counter() - start, execution["status"]


def throughput(workflow, runs):
    """`runs` executions from CLIENTS concurrent clients: executions per second, latencies."""
    def worker(count):
        conn = connect()
        results = [run_one(conn, workflow) for _ in range(count)]
        conn.close()
        return results
    shares = [runs // CLIENTS + (1 if i < runs % CLIENTS else 0) for i in range(CLIENTS)]
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        results = [r for rs in pool.map(worker, shares) for r in rs]
    wall = time.perf_counter() - start
    failed = [s for _, s in results if s != "success"]
    if failed:
        raise RuntimeError(f"{len(failed)} executions of {workflow} did not succeed: {failed[:3]}")
    latencies = sorted(t for t, _ in results)
    return {"runs": runs, "per_second": runs / wall,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]}


def spawn_floor(runs):
    """The reference for a Python execution: starting the interpreter and importing the SDK
    in a new process, with the same parallelism, and nothing else."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": SDK_DIR, "PYTHONDONTWRITEBYTECODE": "1"}

    def one(_):
        subprocess.run(["/usr/bin/python3", "-c", "import bifrost"], env=env, check=True)
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one, range(runs)))
    return runs / (time.perf_counter() - start)


def get_latency(member_token):
    """config.get through the SDK, against a bare kept-alive HTTP GET of the same reveal."""
    os.environ.update({"BIFROST_ADDR": ADDR, "BIFROST_TOKEN": member_token})
    sys.path.insert(0, SDK_DIR)
    from bifrost import config  # noqa: E402
    assert config.get_sync("bench_secret") == "sk_live_bench_value_0123456789"
    sdk = []
    for _ in range(GETS):
        t = time.perf_counter()
        config.get_sync("bench_secret")
        sdk.append(time.perf_counter() - t)
    conn = connect()
    raw = []
    for _ in range(GETS):
        t = time.perf_counter()
        call(conn, "GET", f"/api/v1/orgs/{ORG}/configs/bench_secret/reveal", token=member_token)
        raw.append(time.perf_counter() - t)

    def summary(samples):
        samples = sorted(samples)
        return {"mean_us": 1e6 * statistics.mean(samples),
                "p50_us": 1e6 * statistics.median(samples),
                "p99_us": 1e6 * samples[int(len(samples) * 0.99)]}
    return {"gets": GETS, "sdk": summary(sdk), "raw_http": summary(raw)}


def main():
    conn = connect()
    call(conn, "PUT", f"/api/v1/orgs/{ORG}/configs/bench_secret",
         {"type": "secret", "value": "sk_live_bench_value_0123456789"})
    member = call(conn, "POST", "/api/v1/tokens", {"role": "member", "org_id": ORG})["token"]
    # Warm-up: the first executions pay for cold caches.
    throughput("noop_python", 8)
    out = {
        "python": throughput("noop_python", RUNS),
        "executable": throughput("noop_exe", RUNS),
        "python_get": throughput("get_secret", RUNS),
        "spawn_floor_per_second": spawn_floor(RUNS),
        "config_get": get_latency(member),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
