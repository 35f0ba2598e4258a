"""The package ships a copy of crds/*.yaml (local mode validates with it); it must not drift."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "crds"
PACKAGED = ROOT / "operator" / "sla_operator" / "crds"


def test_the_package_ships_exactly_the_crds_of_the_crds_folder() -> None:
    source = sorted(p.name for p in SOURCE.glob("*.yaml"))
    packaged = sorted(p.name for p in PACKAGED.glob("*.yaml"))
    assert source, "crds/ holds no CRD"
    assert packaged == source, "operator/sla_operator/crds/ lists other files than crds/: run make crds"


@pytest.mark.parametrize("name", sorted(p.name for p in SOURCE.glob("*.yaml")))
def test_each_packaged_crd_is_identical_to_its_source(name: str) -> None:
    copy = PACKAGED / name
    assert copy.exists(), f"{copy} is missing: run make crds"
    assert copy.read_bytes() == (SOURCE / name).read_bytes(), \
        f"{copy} differs from crds/{name}: run make crds"


def test_the_validator_reads_the_crds_from_the_installed_package() -> None:
    from sla_operator.local.schema import crd_schemas

    assert set(crd_schemas()) == {"ServiceLevelAgreement", "MaintenanceWindow", "Incident",
                                  "NotificationRoute", "SupportRequest", "LocationReport"}
