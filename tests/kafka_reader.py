"""A plain confluent-kafka consumer, run as a separate process by the tests.

    python -m tests.kafka_reader BOOTSTRAP COUNT OUT TOPIC [TOPIC ...]

Reads COUNT messages from the start of the topics and writes one line per message to OUT:
``topic partition offset key_hex value_hex``. Exits 1 if fewer arrive within 60 s.
"""

from __future__ import annotations

import sys
import time
import uuid

from confluent_kafka import Consumer


def main(bootstrap: str, count: int, out: str, topics: list[str]) -> int:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    received = 0
    deadline = time.monotonic() + 60
    with open(out, "w") as sink:
        while received < count and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                if message.error() is not None:
                    raise RuntimeError(message.error())
                key = message.key() or b""
                sink.write(
                    f"{message.topic()} {message.partition()} {message.offset()} "
                    f"{key.hex()} {(message.value() or b'').hex()}\n"
                )
                received += 1
    consumer.close()
    return 0 if received == count else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]))
