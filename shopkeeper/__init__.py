"""Shopkeeper's front door: the ``shopkeeper`` CLI, the demo, the synthetic traffic
generator and the embedded Kafka broker and Redis server."""
