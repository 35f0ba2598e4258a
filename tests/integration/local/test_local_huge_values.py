"""Values the CRD patterns admit but no computation can hold: refused one by one, never fatal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from local_support import LocalProcess, Target, agreement, write_manifests


def ready(status: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or () if c["type"] == "Ready"), None)


async def test_an_agreement_with_a_huge_interval_is_not_ready_and_the_valid_one_runs(
        target: Target, manifests: Path, local: Callable[[], LocalProcess]) -> None:
    huge = agreement("huge", target.port)
    huge["spec"]["endpoints"][0]["interval"] = "99999999999w"
    # Both in one file, the bad one first: nothing after it may be held up.
    write_manifests(manifests / "agreements.yaml", huge, agreement("shop", target.port))
    operator = local().start()

    await operator.wait_for("shop Up", lambda: operator.status("shop").get("state") == "Up")
    refused = await operator.wait_for("huge not Ready", lambda: ready(operator.status("huge")))
    assert refused["status"] == "False" and refused["reason"] == "InvalidSpec"
    assert "spec.endpoints[0].interval" in refused["message"]
    assert "at most 3650d" in refused["message"]
    assert "spec.endpoints[0].interval" in operator.log()
    assert operator.stop() == 0


async def test_a_window_with_a_far_future_start_or_an_endless_schedule_field_is_refused(
        target: Target, manifests: Path, local: Callable[[], LocalProcess]) -> None:
    def window(name: str, **spec: Any) -> dict[str, Any]:
        return {"apiVersion": "sla.dev/v1alpha1", "kind": "MaintenanceWindow",
                "metadata": {"name": name, "namespace": "demo"},
                "spec": {"slaNames": ["shop"], **spec}}

    write_manifests(
        manifests / "windows.yaml",
        window("far", schedule="0 2 * * SUN", duration="2h", validFrom="9999-01-01T00:00:00Z"),
        # A minute field of 5,000 digits matches the CRD pattern; reading it as a number fails.
        window("digits", schedule="9" * 5000 + " 2 * * SUN", duration="2h"),
    )
    write_manifests(manifests / "shop.yaml", agreement("shop", target.port))
    operator = local().start()

    await operator.wait_for("shop Up", lambda: operator.status("shop").get("state") == "Up")
    for name in ("far", "digits"):
        refused = await operator.wait_for(
            f"{name} not Ready", lambda name=name: ready(operator.status(name, plural="maintenancewindows")))
        assert refused["status"] == "False"
    far = ready(operator.status("far", plural="maintenancewindows"))
    assert far is not None and "spec.validFrom" in far["message"]
    assert operator.stop() == 0
