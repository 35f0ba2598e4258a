"""`python -m sla_operator.plugin`: what the krew package's `kubectl-sla` launcher runs."""

from sla_operator.plugin.main import run

run()
