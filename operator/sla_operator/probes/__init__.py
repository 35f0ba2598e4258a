"""Probes: one module per probe kind, plus the scheduler that runs them."""
