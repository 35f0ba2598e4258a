"""sla-operator: service level agreements that a Kubernetes cluster enforces and proves."""

__version__ = "0.1.0"
