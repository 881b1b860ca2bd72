"""The real web server (uvicorn, in a subprocess on 127.0.0.1) under a small bounded load.

The same code path as ``benchmarks/web_load.py``, whose functions this imports: 120 requests from
8 concurrent clients on the untrained tiny model (its translations are nonsense, but not empty,
so "the same translation as a request alone" means something), the bad requests, and the
over-limit requests beside normal ones.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed: pip install 'selfattention[web]'")
pytest.importorskip("uvicorn", reason="the web extra is not installed: pip install 'selfattention[web]'")

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "web_load.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("web_load", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


web_load = load_script()


@pytest.fixture(scope="module")
def report(deep_model_dir: Path) -> Any:
    return web_load.run_benchmark(
        str(deep_model_dir), requests=120, clients=8, isolation_requests=60, time_limit=300, threads=1
    )


def test_every_request_under_load_is_answered_correctly(report: Any) -> None:
    assert report.problems == []
    assert report.correct == report.requests == 120
    assert report.server_errors == 0
    assert sorted(report.latency) == ["/api/attention", "/api/translate"]
    assert len(report.latency["/api/translate"]) == 30  # a visit: one translation, three attention views
    assert report.ok


def test_bad_requests_get_a_4xx_and_no_file(report: Any) -> None:
    statuses = {name: status for name, status, _ in report.bad}
    assert all(refused for _, _, refused in report.bad), report.bad
    assert statuses["body over 64 KiB (declared)"] == statuses["body over 64 KiB (streamed)"] == 413
    assert statuses["malformed JSON"] == 422
    assert statuses["text over 1000 characters (10,000 words)"] == 422
    assert all(status == 404 for name, status in statuses.items() if name.startswith("GET /static/"))
    assert len([name for name in statuses if name.startswith("GET ")]) == len(web_load.TRAVERSALS)


def test_a_request_over_the_limit_does_not_slow_the_others(report: Any) -> None:
    assert report.over_limit_sent > 0
    assert report.over_limit_refused == report.over_limit_sent
    assert max(report.over_limit_latency) < 5.0  # refused at once, never translated
    assert report.beside_over_limit_p50 <= 2 * report.alone_p50 + 0.05, (report.alone_p50, report.beside_over_limit_p50)


def test_the_report_is_a_table_with_latency_and_memory(report: Any) -> None:
    table = web_load.format_report(report)
    assert "| answered correctly (200, expected fields, same translation as alone) | 120 / 120 |" in table
    assert "latency p50 / p95 / max, all requests" in table
    assert "VmHWM" in table
    assert 50 < report.peak_rss_mib < 4096
    assert report.peak_rss_mib >= report.rss_start_mib
    assert "problems" not in table


def test_the_script_refuses_bad_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        web_load.main(["--requests", "0"])
    assert exit_info.value.code == 2
    assert "at least 1" in capsys.readouterr().err
