"""Debian's real `prometheus` server on loopback, in a temp dir, scraping given targets every second."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx

from tests.fakes.loopback import free_port


class PrometheusServer:
    def __init__(self, workdir: Path, targets: list[str], namespace: str = "llm-serving") -> None:
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        if not Path(binary).exists():
            raise RuntimeError("Debian's prometheus is not installed: `make test` installs it (apt-get install prometheus)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "prometheus.yml"
        # The namespace label stands in for what the PodMonitor's Kubernetes discovery would attach.
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: vllm\n    static_configs:\n"
            f"      - targets: {targets!r}\n        labels:\n          namespace: {namespace}\n")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"prometheus was not ready within {timeout} s")

    def wait_for_samples(self, query: str, minimum: int, timeout: float = 30) -> None:
        """Wait until `query` has at least `minimum` samples (i.e. enough scrapes for rate())."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = httpx.get(f"{self.url}/api/v1/query", params={"query": f"count_over_time({query}[1m])"}, timeout=5).json()
            result = r.get("data", {}).get("result", [])
            if result and float(result[0]["value"][1]) >= minimum:
                return
            time.sleep(0.5)
        raise RuntimeError(f"prometheus did not collect {minimum} samples of {query} within {timeout} s")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
