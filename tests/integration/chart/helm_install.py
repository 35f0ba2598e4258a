"""Installs the chart with the real Helm library and prints the release as JSON.

Input on stdin (JSON): kubeconfig (its text), namespace, release, chart (a path), values.
Run as a process of its own with HELM_DRIVER=memory: the Go runtime reads the environment
once, when the library loads, and Helm then keeps its release record in memory rather than
in a Secret of the API server.
"""

from __future__ import annotations

import asyncio
import json
import sys

import helm_sdkpy


def main() -> None:
    request = json.load(sys.stdin)
    config = helm_sdkpy.Configuration(namespace=request["namespace"], kubeconfig=request["kubeconfig"])
    install = helm_sdkpy.Install(config)
    release = asyncio.run(install.run(request["release"], request["chart"], values=request["values"],
                                      wait=False, timeout=60))
    json.dump(release, sys.stdout)


if __name__ == "__main__":
    main()
