"""Bytewax dataflows: decode and validate, timers, per-customer state, triggers, sinks."""
