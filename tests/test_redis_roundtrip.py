"""The embedded Redis is a real server: shared across clients and processes, persistent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import redis

from shopkeeper.embedded import EmbeddedRedis


def test_pipelined_hashes_round_trip(redis_client: redis.Redis, key_prefix: str) -> None:
    profiles: dict[str, dict[Any, Any]] = {
        f"{key_prefix}c-{i}": {"orders": str(i), "revenue": f"{i * 1.5:.2f}", "tier": "gold"}
        for i in range(1_000)
    }
    with redis_client.pipeline(transaction=False) as pipe:
        for key, fields in profiles.items():
            pipe.hset(key, mapping=fields)
        pipe.execute()
    with redis_client.pipeline(transaction=False) as pipe:
        for key in profiles:
            pipe.hgetall(key)
        stored = pipe.execute()
    assert [{k.decode(): v.decode() for k, v in h.items()} for h in stored] == list(
        profiles.values()
    )


def test_another_process_reads_what_this_one_wrote(
    redis_client: redis.Redis, key_prefix: str, infra_redis_url: str
) -> None:
    redis_client.set(f"{key_prefix}greeting", "bom dia")
    script = (
        "import redis, sys; r = redis.Redis.from_url(sys.argv[1]);"
        "print(r.get(sys.argv[2]).decode()); r.set(sys.argv[3], 'olá')"
    )
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            infra_redis_url,
            f"{key_prefix}greeting",
            f"{key_prefix}reply",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert child.stdout.strip() == "bom dia"
    assert redis_client.get(f"{key_prefix}reply") == "olá".encode()


def test_embedded_redis_keeps_its_data_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "db" / "shopkeeper.db"
    with EmbeddedRedis(path) as server:
        client = redis.Redis.from_url(server.url)
        client.hset("customer:c-1", mapping={"orders": 3})
        client.close()
    with EmbeddedRedis(path) as server:
        client = redis.Redis.from_url(server.url)
        assert client.hget("customer:c-1", "orders") == b"3"
        client.close()
