"""The Redis key contract of customer and item features: layout, version, reads, writes."""
