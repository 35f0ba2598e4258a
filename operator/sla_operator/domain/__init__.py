"""Pure logic of service level agreements: no I/O, no clocks, no Kubernetes."""
