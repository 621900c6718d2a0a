"""Hot swap under load: promote and roll back while requests flow; none fails."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from pathlib import Path

import httpx2 as httpx
import pytest

from models.als import AlsParams
from shopkeeper.embedded import Endpoints
from shopkeeper.train import train_als
from tests.servekit import Shop, build_shop, serve


@pytest.fixture(scope="module")
def shop(infra: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return build_shop(infra, "swap1", tmp_path_factory.mktemp("shop"))


class _Load:
    """Clients sending requests back to back to every server, recording what answered."""

    def __init__(self, urls: list[str], customers: list[str]) -> None:
        self.urls = urls
        self.customers = customers
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []
        self.latest: dict[str, str | None] = {}
        self.changed = threading.Condition(self.lock)
        self.threads = [threading.Thread(target=self._run, args=(url,)) for url in urls]

    def _run(self, url: str) -> None:
        paths = [f"/v1/customers/{c}/recommendations" for c in self.customers]
        paths += ["/v1/items/p-00010/cross-sell", "/v1/items/p-00010/up-sell"]
        with httpx.Client(base_url=url, timeout=10) as client:
            n = 0
            while not self.stop.is_set():
                path = paths[n % len(paths)]
                n += 1
                try:
                    response = client.get(path)
                except httpx.HTTPError as exc:
                    with self.lock:
                        self.failures.append(repr(exc))
                    continue
                with self.lock:
                    self.statuses[response.status_code] += 1
                    if response.status_code == 200:
                        self.latest[url] = response.json()["model_version"]
                        self.changed.notify_all()

    def wait_all_serve(self, version: str, timeout: float) -> bool:
        """Wait until every server has answered with ``version``."""
        with self.lock:
            self.latest.clear()
            return self.changed.wait_for(
                lambda: all(self.latest.get(u) == version for u in self.urls), timeout
            )

    def __enter__(self) -> _Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def test_promote_and_roll_back_under_load_with_no_failed_request(
    shop: Shop, tmp_path: Path
) -> None:
    newer = train_als(
        shop.history,
        shop.registry,
        params=AlsParams(factors=12, iterations=6, seed=9),
        now=dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
    ).version
    customers = ["c-000001", "c-000002", "nobody", "c-000003"]
    # Two serving processes' worth of state: each app polls the registry on its own.
    with (
        serve(shop.app(model_poll_seconds=0.2)) as first,
        serve(shop.app(model_poll_seconds=0.2)) as second,
        _Load([first, second], customers) as load,
    ):
        assert load.wait_all_serve(shop.version, 10)
        shop.registry.promote(newer)
        # The acceptance bound: every process serves a promotion within 10 s.
        assert load.wait_all_serve(newer, 10)
        shop.registry.rollback()
        assert load.wait_all_serve(shop.version, 10)
    assert load.failures == []
    assert set(load.statuses) == {200}
    assert sum(load.statuses.values()) > 50
