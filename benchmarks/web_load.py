"""The web server under load: every answer checked, latency and peak memory measured, bad requests refused.

    python benchmarks/web_load.py                                  # bundled en-fr: 500 requests, 16 clients
    python benchmarks/web_load.py --model runs/en-fr/best --requests 120 --clients 8

Starts the real server (``python -m selfattention serve``, uvicorn) on 127.0.0.1, on a free port,
in a subprocess, and talks to it over HTTP from this computer only. Then, in order:

1. baseline: each of the sentences below is translated by a single request, alone;
2. load: ``--requests`` requests from ``--clients`` concurrent clients, in visits of the page
   (one ``POST /api/translate``, then three ``POST /api/attention`` on the same sentence for
   other kinds, layers and heads); every answer must be a 200 with the expected fields, the
   sentence's baseline translation, and attention rows that are distributions;
3. bad requests: an oversized body (declared and streamed), malformed JSON, a body that is not
   an object, invalid UTF-8, empty text, text over the length limit, and path traversal in the
   static route: each must get a 4xx and no file from outside ``static/``;
4. isolation: the same batch of normal requests (``--isolation-requests``, on four sentences
   the server has cached), alone and then with four more clients sending over-limit requests
   (10,000 words, and over-sized bodies; each client one every 50 ms) the whole time; the normal
   requests' median latency should not grow: a refused request never waits for, or holds, the model.

The server's peak resident memory is its ``VmHWM`` in /proc/PID/status. Prints a markdown
table for BENCHMARKS.md and exits with status 1 if any check failed. It stops by itself: the
load phases end after ``--time-limit`` seconds at the latest (requests not sent by then are
reported), and the server is always stopped.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfattention.web.app import MAX_BODY_BYTES

HOST = "127.0.0.1"  # never anything else: the load stays on this computer
JSON = {"content-type": "application/json"}
TEXTS = [
    "I am good.",
    "A dog ate the food because it was hungry.",
    "Two young men are playing soccer in a park.",
    "I love apple juice.",
    "A man in a blue shirt is standing on a ladder.",
    "The cat sleeps on the bed.",
    "A little girl climbs into a wooden playhouse.",
    "Where is the train station?",
    "She reads a book under a tree.",
    "Two dogs are running through the snow.",
    "We want to go to the beach tomorrow.",
    "A woman is selling vegetables at a market.",
    "The children are laughing.",
    "He did not know the answer.",
    "A boy jumps into the water.",
    "My brother works in a hospital.",
    "Three people are sitting at a table.",
    "It is raining in Paris.",
    "A black dog carries a stick.",
    "They are waiting for the bus.",
    "The old man is fishing from a boat.",
    "Can you help me, please?",
    "A group of people are dancing in the street.",
    "I forgot my keys at home.",
]  # more than the server's trace cache (8), so the load translates, not only looks up
TEN_THOUSAND_WORDS = " ".join(["The red dog runs in the park."] * 1429)  # 10,003 words, about 43 KB
OVER_LIMIT_PAUSE = 0.05  # seconds each over-limit client waits between its requests: traffic, not a flood
TRAVERSALS = [
    "/static/../app.py",
    "/static/%2e%2e/app.py",
    "/static/..%2fapp.py",
    "/static/%2e%2e%2f%2e%2e%2fcli%2fcommon.py",
    "/static/../../cli/common.py",
    "/static/..%5capp.py",
    "/static/.%2e/__init__.py",
    "/static/app.py",
]


# --- talking to the server ------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One HTTP request; ``payload`` is the JSON object sent, when it is one."""

    method: str
    path: str
    body: bytes | None = None
    payload: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False


def post(path: str, payload: dict[str, Any]) -> Call:
    return Call("POST", path, json.dumps(payload).encode("utf-8"), payload, JSON)


@dataclass(frozen=True)
class Answer:
    call: Call
    status: int  # 0: no answer (refused connection, reset or timeout)
    body: bytes
    seconds: float
    error: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


def send(port: int, call: Call, timeout: float = 120.0) -> Answer:
    """One request on its own connection; network problems become an answer with status 0."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        body: Any = call.body
        if call.chunked and call.body is not None:
            half = len(call.body) // 2
            body = iter([call.body[:half], call.body[half:]])
        connection.request(call.method, call.path, body=body, headers=call.headers, encode_chunked=call.chunked)
        response = connection.getresponse()
        data = response.read()
        return Answer(call, response.status, data, time.perf_counter() - started)
    except (OSError, http.client.HTTPException) as error:
        return Answer(call, 0, b"", time.perf_counter() - started, f"{type(error).__name__}: {error}")
    finally:
        connection.close()


def send_all(port: int, calls: Sequence[Call], clients: int, deadline: float) -> list[Answer | None]:
    """Send the calls in order from ``clients`` threads; a call not sent before the deadline stays None."""
    answers: list[Answer | None] = [None] * len(calls)
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(calls)):
        todo.put(index)

    def client() -> None:
        while time.monotonic() < deadline:
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            answers[index] = send(port, calls[index], timeout=max(1.0, deadline - time.monotonic()))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class Server:
    """``selfattention serve`` in a subprocess on 127.0.0.1; stopped on leaving the ``with``."""

    def __init__(self, model: str | None, *, threads: int | None = None, startup_timeout: float = 300.0) -> None:
        self.port = free_port()
        self.model = model
        self.threads = threads
        self.startup_timeout = startup_timeout
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - the server's stderr while it runs; closed on exit
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        argv = [sys.executable, "-m", "selfattention", "serve", "--host", HOST, "--port", str(self.port)]
        if self.model is not None:
            argv += ["--model", self.model]
        env = dict(os.environ)
        if self.threads is not None:
            env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self._log, env=env)
        try:
            self._wait_until_ready()
        except BaseException:  # a failed start, or Ctrl+C while waiting: never leave the server behind
            self.__exit__()
            raise
        return self

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server stopped at start-up:\n{self.log()}")
            if send(self.port, Call("GET", "/api/model"), timeout=5).status == 200:
                return
            time.sleep(0.25)
        raise RuntimeError(f"the server did not answer within {self.startup_timeout:.0f} s:\n{self.log()}")

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self._log.close()

    def memory_kib(self, field_name: str = "VmHWM") -> int:
        """A memory figure of the server process from /proc/PID/status (VmHWM: peak resident set)."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="ascii")
        for line in status.splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"no {field_name} in /proc/{self.process.pid}/status")

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-4000:]


# --- what is sent, and what must come back ----------------------------------------------------------


def visits(count: int, info: dict[str, Any], texts: Sequence[str] = TEXTS) -> list[Call]:
    """``count`` requests: visits of the page, each a translation and three attention views of one sentence."""
    kinds = ["encoder", "decoder", "cross"]
    layers = {"encoder": info["encoder_layers"], "decoder": info["decoder_layers"], "cross": info["decoder_layers"]}
    calls = []
    for index in range(count):
        visit, step = divmod(index, 4)
        text = texts[visit % len(texts)]
        if step == 0:
            calls.append(post("/api/translate", {"text": text}))
        else:
            kind = kinds[(visit + step) % 3]
            layer, head = (visit + step) % layers[kind], (visit * 3 + step) % info["n_heads"]
            calls.append(post("/api/attention", {"text": text, "kind": kind, "layer": layer, "head": head}))
    return calls


def problem(answer: Answer | None, baseline: dict[str, str]) -> str | None:
    """What is wrong with the answer to a normal request, or None if it is right."""
    if answer is None:
        return "not sent before the time limit"
    call = answer.call
    if answer.status != 200:
        return f"{call.path}: status {answer.status} {answer.error or answer.body[:200]!r}"
    try:
        body = answer.json()
    except ValueError:
        return f"{call.path}: not JSON: {answer.body[:200]!r}"
    assert call.payload is not None
    text = call.payload["text"]
    if body.get("translation") != baseline[text]:
        return f"{call.path}: {text!r} translated as {body.get('translation')!r}, alone as {baseline[text]!r}"
    if call.path == "/api/translate":
        tokens = body.get("source_tokens"), body.get("target_tokens")
        if not all(isinstance(t, list) and t for t in tokens) or tokens[0][-1] != "</s>" or tokens[1][0] != "<s>":
            return f"/api/translate: bad tokens {tokens!r}"
        return None
    for name in ("kind", "layer", "head"):
        if body.get(name) != call.payload[name]:
            return f"/api/attention: asked for {name} {call.payload[name]!r}, got {body.get(name)!r}"
    rows, columns = body.get("rows", []), body.get("columns", [])
    for name in ("weights", "mean"):
        matrix = body.get(name)
        if not isinstance(matrix, list) or len(matrix) != len(rows) or not rows:
            return f"/api/attention: {name} is not {len(rows)} rows"
        for row in matrix:
            if len(row) != len(columns) or not all(math.isfinite(v) and v >= 0 for v in row):
                return f"/api/attention: a row of {name} is not {len(columns)} finite weights"
            if abs(sum(row) - 1.0) > 1e-3:
                return f"/api/attention: a row of {name} sums to {sum(row)}"
    return None


def bad_calls(max_chars: int) -> list[tuple[str, Call]]:
    """Requests the server must refuse with a 4xx, by name."""
    oversized = json.dumps({"text": "a" * (MAX_BODY_BYTES + 100)}).encode()
    calls = [
        ("body over 64 KiB (declared)", Call("POST", "/api/translate", oversized, headers=JSON)),
        ("body over 64 KiB (streamed)", Call("POST", "/api/translate", oversized, headers=JSON, chunked=True)),
        ("malformed JSON", Call("POST", "/api/translate", b'{"text": "A dog', headers=JSON)),
        ("JSON that is not an object", Call("POST", "/api/attention", b'["A", "dog"]', headers=JSON)),
        ("invalid UTF-8 in the body", Call("POST", "/api/translate", b'{"text": "A \xff dog"}', headers=JSON)),
        ("empty text", post("/api/translate", {"text": "  "})),
        (f"text over {max_chars} characters (10,000 words)", post("/api/attention", {"text": TEN_THOUSAND_WORDS})),
        ("layer that does not exist", post("/api/attention", {"text": "I am good.", "layer": 99})),
    ]
    calls += [(f"GET {path}", Call("GET", path)) for path in TRAVERSALS]
    return calls


def refused(answer: Answer) -> bool:
    """A 4xx, and nothing of the package's source in it."""
    return 400 <= answer.status < 500 and b"import " not in answer.body and b"create_app" not in answer.body


def over_limit_calls() -> list[Call]:
    oversized = b'{"text": "' + b"a" * (MAX_BODY_BYTES + 100) + b'"}'
    return [
        post("/api/translate", {"text": TEN_THOUSAND_WORDS}),
        Call("POST", "/api/attention", oversized, headers=JSON),
    ]


def with_over_limit_traffic(
    port: int, calls: Sequence[Call], clients: int, over_clients: int, deadline: float
) -> tuple[list[Answer | None], list[Answer]]:
    """The calls as :func:`send_all` sends them, while ``over_clients`` more send over-limit requests until they end."""
    done = threading.Event()
    over: list[Answer] = []
    lock = threading.Lock()

    def spammer(offset: int) -> None:
        pattern = over_limit_calls()
        index = offset
        while not done.is_set() and time.monotonic() < deadline:
            answer = send(port, pattern[index % len(pattern)], timeout=max(1.0, deadline - time.monotonic()))
            with lock:
                over.append(answer)
            index += 1
            done.wait(OVER_LIMIT_PAUSE)

    threads = [threading.Thread(target=spammer, args=(i,), daemon=True) for i in range(over_clients)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # the over-limit traffic is under way before the first normal request
    try:
        answers = send_all(port, calls, clients, deadline)
    finally:
        done.set()
        for thread in threads:
            thread.join()
    return answers, over


# --- the run and its report -------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class Report:
    model: str
    requests: int
    clients: int
    seconds: float = 0.0
    correct: int = 0
    problems: list[str] = field(default_factory=list)
    server_errors: int = 0  # 5xx or no answer, in every phase
    latency: dict[str, list[float]] = field(default_factory=dict)  # path -> seconds of the correct answers
    bad: list[tuple[str, int, bool]] = field(default_factory=list)  # name, status, refused properly
    isolation_requests: int = 0
    alone_p50: float = 0.0
    beside_over_limit_p50: float = 0.0
    over_limit_sent: int = 0
    over_limit_refused: int = 0
    over_limit_latency: list[float] = field(default_factory=list)
    rss_start_mib: float = 0.0
    peak_rss_mib: float = 0.0

    @property
    def all_latencies(self) -> list[float]:
        return [s for seconds in self.latency.values() for s in seconds]

    @property
    def ok(self) -> bool:
        return (
            not self.problems
            and self.correct == self.requests
            and self.server_errors == 0
            and all(ok for _, _, ok in self.bad)
            and self.over_limit_refused == self.over_limit_sent
        )


def server_error(answer: Answer | None) -> bool:
    """A 5xx, or no answer at all (a refused or reset connection, a timeout)."""
    return answer is not None and (answer.status == 0 or answer.status >= 500)


def translations_alone(port: int) -> dict[str, str]:
    """Each sentence's translation from a single request, with nothing else going on."""
    baseline = {}
    for text in TEXTS:
        answer = send(port, post("/api/translate", {"text": text}))
        if answer.status != 200:
            raise RuntimeError(f"baseline translation of {text!r}: status {answer.status} {answer.body[:200]!r}")
        baseline[text] = answer.json()["translation"]
    return baseline


def tally(
    report: Report, answers: Sequence[Answer | None], baseline: dict[str, str], where: str = ""
) -> list[str | None]:
    """Check normal answers: count server errors and note problems in the report; each answer's problem."""
    problems = [problem(answer, baseline) for answer in answers]
    report.server_errors += sum(server_error(answer) for answer in answers)
    report.problems += [where + p for p in problems if p is not None]
    return problems


def run_benchmark(
    model: str | None = None,
    *,
    requests: int = 500,
    clients: int = 16,
    isolation_requests: int = 100,
    over_limit_clients: int = 4,
    time_limit: float = 900.0,
    threads: int | None = None,
) -> Report:
    """Start the server, run the four phases (see the module docstring), stop the server."""
    report = Report(model or "bundled en-fr", requests, clients, isolation_requests=isolation_requests)
    deadline = time.monotonic() + time_limit
    with Server(model, threads=threads) as server:
        port = server.port
        info = send(port, Call("GET", "/api/model")).json()
        report.rss_start_mib = server.memory_kib("VmRSS") / 1024
        baseline = translations_alone(port)

        started = time.perf_counter()
        answers = send_all(port, visits(requests, info), clients, deadline)
        report.seconds = time.perf_counter() - started
        for answer, wrong in zip(answers, tally(report, answers, baseline), strict=True):
            if wrong is None and answer is not None:
                report.correct += 1
                report.latency.setdefault(answer.call.path, []).append(answer.seconds)

        for name, call in bad_calls(info["max_chars"]):
            bad = send(port, call)
            report.server_errors += server_error(bad)
            report.bad.append((name, bad.status, refused(bad)))

        normal = visits(isolation_requests, info, TEXTS[:4])  # fewer texts than the cache holds
        send_all(port, normal, clients, deadline)  # warm up: from here on the same work both times
        alone = send_all(port, normal, clients, deadline)
        beside, over = with_over_limit_traffic(port, normal, clients, over_limit_clients, deadline)
        tally(report, alone, baseline, "isolation, alone: ")
        tally(report, beside, baseline, "isolation, beside over-limit requests: ")
        report.alone_p50 = percentile([a.seconds for a in alone if a is not None], 0.5)
        report.beside_over_limit_p50 = percentile([a.seconds for a in beside if a is not None], 0.5)
        report.over_limit_sent = len(over)
        report.over_limit_refused = sum(refused(a) for a in over)
        report.over_limit_latency = [a.seconds for a in over]
        report.server_errors += sum(server_error(a) for a in over)
        report.peak_rss_mib = server.memory_kib("VmHWM") / 1024
    return report


def format_report(report: Report) -> str:
    """The report as markdown tables."""

    def ms(seconds: float) -> str:
        return f"{1000 * seconds:.0f} ms" if seconds >= 0.01 else f"{1000 * seconds:.1f} ms"

    def spread(values: Sequence[float]) -> str:
        return f"{ms(percentile(values, 0.5))} / {ms(percentile(values, 0.95))} / {ms(max(values, default=0.0))}"

    every = report.all_latencies
    refused_count = sum(ok for _, _, ok in report.bad)
    rate = report.correct / report.seconds if report.seconds else 0.0
    lines = [
        f"model: {report.model}; {report.requests} requests from {report.clients} concurrent clients on {HOST}",
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| answered correctly (200, expected fields, same translation as alone) | {report.correct} / {report.requests} |",
        f"| server errors (5xx or no answer), all phases | {report.server_errors} |",
        f"| latency p50 / p95 / max, all requests | {spread(every)} |",
    ]
    for path in sorted(report.latency):
        lines.append(f"| latency p50 / p95 / max, {path} | {spread(report.latency[path])} |")
    lines += [
        f"| throughput | {rate:.1f} requests/s over {report.seconds:.1f} s |",
        f"| server memory: resident after start-up / peak (VmHWM) | {report.rss_start_mib:.0f} MiB / {report.peak_rss_mib:.0f} MiB |",
        f"| bad requests refused with a 4xx | {refused_count} / {len(report.bad)} |",
        f"| p50 of {report.isolation_requests} normal requests: alone / beside over-limit requests | "
        f"{ms(report.alone_p50)} / {ms(report.beside_over_limit_p50)} |",
        f"| over-limit requests sent alongside, refused with a 4xx | {report.over_limit_refused} / {report.over_limit_sent} |",
        f"| latency p50 / p95 / max of those refusals | {spread(report.over_limit_latency)} |",
        "",
        "| bad request | status |",
        "| --- | ---: |",
    ]
    lines += [f"| {name} | {status}{'' if ok else ' (wrong)'} |" for name, status, ok in report.bad]
    if report.problems:
        shown = report.problems[:20]
        lines += ["", f"problems ({len(report.problems)}, the first {len(shown)}):", *(f"- {p}" for p in shown)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model directory or bundled model name (default: the bundled en-fr)")
    parser.add_argument("--requests", type=int, default=500, help="requests in the load phase (default 500)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--isolation-requests", type=int, default=100, help="normal requests per isolation run")
    parser.add_argument("--time-limit", type=float, default=900, help="seconds of load at most (default 900)")
    parser.add_argument("--threads", type=int, help="torch threads of the server (default: torch's own choice)")
    args = parser.parse_args(argv)
    if min(args.requests, args.clients, args.isolation_requests) < 1 or args.time_limit <= 0:
        parser.error("--requests, --clients and --isolation-requests must be at least 1, --time-limit above 0")
    report = run_benchmark(
        args.model,
        requests=args.requests,
        clients=args.clients,
        isolation_requests=args.isolation_requests,
        time_limit=args.time_limit,
        threads=args.threads,
    )
    print(format_report(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
