"""Benchmarks of the probe engine against Prometheus' blackbox_exporter (`make bench`)."""
