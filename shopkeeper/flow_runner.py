"""Run the feature flow as one or more supervised Bytewax processes.

Bytewax scales with processes, not threads (the GIL): one process per core, each owning
some of the Kafka partitions. This module starts ``python -m bytewax.run
flows.features:flow`` once per process with the cluster addresses, recovery options and
``SHOPKEEPER_*`` settings in its environment, and stops them all if one fails.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

__all__ = [
    "FlowRun",
    "flow_settings",
    "free_ports",
    "histogram_quantile",
    "init_recovery",
    "run_flow",
    "start_flow",
]

FLOW = "flows.features:flow"
RECOVERY_PARTITIONS = 4
"""Recovery partitions of a new recovery directory (fixed for its lifetime)."""


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The ``q`` quantile of cumulative ``(upper bound, count)`` buckets, sorted by bound."""
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower
            inside = count - below
            return lower + (upper - lower) * ((rank - below) / inside if inside else 0.0)
        lower, below = upper, count
    return lower


def free_ports(count: int, *, consecutive: bool = False) -> list[int]:
    """Ask the OS for ``count`` free TCP ports on 127.0.0.1 (``consecutive``: a run of them)."""
    if consecutive:
        for _ in range(100):
            (first,) = free_ports(1)
            if all(_is_free(first + i) for i in range(1, count)):
                return list(range(first, first + count))
        raise OSError(f"no {count} consecutive free ports found")
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def init_recovery(directory: Path, partitions: int = RECOVERY_PARTITIONS) -> None:
    """Create Bytewax's recovery database in ``directory`` unless it exists."""
    if directory.exists() and any(directory.iterdir()):
        return
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bytewax.recovery", str(directory), str(partitions)], check=True
    )


@dataclasses.dataclass
class FlowRun:
    """Running flow processes, and the ports their ``/metrics`` are served on."""

    processes: list[subprocess.Popen[bytes]]
    metrics_ports: list[int] = dataclasses.field(default_factory=list)

    def metric(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """Sum of a metric's samples over every process (and over labels not given).

        Raises:
            OSError: A process does not serve its metrics (yet).
        """
        wanted = (labels or {}).items()
        return sum(
            sample.value
            for sample in self._samples()
            if sample.name == name and all(sample.labels.get(k) == v for k, v in wanted)
        )

    def quantile(
        self, name: str, q: float, *, since: list[tuple[float, float]] | None = None
    ) -> float | None:
        """Estimate a histogram's ``q`` quantile over every process, as Prometheus's
        ``histogram_quantile`` does (linear inside the bucket); ``None`` if empty.

        ``since``: an earlier ``histogram(name)``, to take only what was observed after it.
        """
        buckets = self.histogram(name)
        if since is not None:
            before = dict(since)
            buckets = [(le, count - before.get(le, 0.0)) for le, count in buckets]
        return histogram_quantile(buckets, q)

    def histogram(self, name: str) -> list[tuple[float, float]]:
        """A histogram's cumulative ``(upper bound, count)`` buckets, summed over processes."""
        buckets: dict[float, float] = {}
        for sample in self._samples():
            if sample.name == f"{name}_bucket":
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
        return sorted(buckets.items())

    def _samples(self) -> Iterator[Sample]:
        for port in self.metrics_ports:
            url = f"http://127.0.0.1:{port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
            for family in text_string_to_metric_families(text):
                yield from family.samples

    def serving_metrics(self) -> bool:
        """Whether every process answers on its metrics port."""
        try:
            self.metric("shopkeeper_flow_events_total")
        except OSError:
            return False
        return True

    def wait(self, timeout: float | None = None) -> int:
        """Wait for every process; if one fails, stop the others. Return the worst status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        status = 0
        pending = list(self.processes)
        while pending:
            for process in list(pending):
                code = process.poll()
                if code is None:
                    continue
                pending.remove(process)
                if code != 0:
                    status = status or code
                    self.stop()
            if deadline is not None and time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("the flow did not finish in time")
            if pending:
                time.sleep(0.05)
        return status

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to every process that is still running."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(sig)


def start_flow(
    settings: Mapping[str, str],
    *,
    processes: int = 1,
    recovery_dir: Path | None = None,
    snapshot_interval_s: int = 5,
    metrics_port: int | None = None,
    python: str = sys.executable,
    stdout: int | None = None,
    stderr: int | None = None,
) -> FlowRun:
    """Start the flow's processes and return at once.

    Args:
        settings: ``SHOPKEEPER_*`` variables for ``FlowSettings`` (Kafka, Redis, namespace...).
        processes: How many processes (one per core is the sweet spot).
        recovery_dir: Bytewax recovery database; created if missing. ``None``: no recovery.
        snapshot_interval_s: How often state and offsets are snapshotted; a restart replays
            at most this much.
        metrics_port: Serve ``/metrics`` on this port and the next ones, one per process.
        python: The interpreter to run.
        stdout: Where the processes' output goes (inherited by default).
        stderr: Where the processes' errors go (inherited by default).
    """
    # The snapshot interval is Bytewax's epoch: state is snapshotted for every key touched
    # in an epoch (with or without recovery), so short epochs spread that pause thin.
    command: list[str] = [python, "-m", "bytewax.run", FLOW, "-s", str(snapshot_interval_s)]
    if recovery_dir is not None:
        init_recovery(recovery_dir)
        command += ["-r", str(recovery_dir), "-b", "0"]
    addresses = ";".join(f"127.0.0.1:{port}" for port in free_ports(processes))
    started = []
    ports = [] if metrics_port is None else [metrics_port + i for i in range(processes)]
    for index in range(processes):
        env = {**os.environ, **settings, "OPENBLAS_NUM_THREADS": "1"}
        env["SHOPKEEPER_RECOVERY"] = "true" if recovery_dir is not None else "false"
        if metrics_port is not None:
            env["SHOPKEEPER_METRICS_PORT"] = str(metrics_port)
        if processes > 1:
            env["BYTEWAX_PROCESS_ID"] = str(index)
            env["BYTEWAX_ADDRESSES"] = addresses
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, env=env, stdout=stdout, stderr=stderr
        )
        started.append(process)
    return FlowRun(started, ports)


def run_flow(
    settings: Mapping[str, str],
    *,
    processes: int = 1,
    recovery_dir: Path | None = None,
    snapshot_interval_s: int = 5,
    metrics_port: int | None = None,
) -> int:
    """Run the flow in the foreground until it ends (or Ctrl-C); return its exit status."""
    run = start_flow(
        settings,
        processes=processes,
        recovery_dir=recovery_dir,
        snapshot_interval_s=snapshot_interval_s,
        metrics_port=metrics_port,
    )
    try:
        return run.wait()
    except KeyboardInterrupt:
        run.stop(signal.SIGINT)
        run.wait(timeout=30)
        return 130


def flow_settings(
    *, kafka_bootstrap: str, redis_url: str, namespace: str, tail: bool
) -> dict[str, str]:
    """The ``SHOPKEEPER_*`` environment of a flow process."""
    return {
        "SHOPKEEPER_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SHOPKEEPER_REDIS_URL": redis_url,
        "SHOPKEEPER_NAMESPACE": namespace,
        "SHOPKEEPER_TAIL": "true" if tail else "false",
    }
