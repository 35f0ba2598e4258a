"""`sla-operator rules`: the alert rules of every agreement, from the cluster or a folder.

``-o rules`` prints one Prometheus rule file (``promtool check rules`` accepts it);
``-o prometheusrule`` prints the PrometheusRule objects the operator keeps in a cluster, as
a YAML stream ``kubectl apply -f -`` takes. An agreement the operator would reject is left
out with one line on stderr, never aborting the others.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from sla_operator.domain.alerts import prometheus_rule, rule_file
from sla_operator.domain.errors import SpecError
from sla_operator.domain.model import Agreement
from sla_operator.domain.parse import agreement_from_manifest


class UsageError(Exception):
    """A flag's value that cannot be used (exit 2, as argparse's own errors)."""


def _readable(items: Iterable[Mapping[str, Any]]) -> list[Agreement]:
    agreements = []
    for item in items:
        try:
            agreements.append(agreement_from_manifest(item))
        except SpecError as error:
            meta = item.get("metadata") or {}
            print(f"agreement {meta.get('namespace', 'default')}/{meta.get('name')} skipped: "
                  f"{error}", file=sys.stderr)
    return agreements


def folder_agreements(folder: Path, namespaces: Sequence[str],
                      elsewhere: set[str] | None = None) -> list[dict[str, Any]]:
    """ServiceLevelAgreement manifests of a folder as local mode reads them; problems to stderr.

    ``elsewhere`` receives the namespaces of the agreements ``namespaces`` left out."""
    from sla_operator.local.manifests import (
        FileError,
        FolderWatch,
        manifests_folder_problem,
        read_manifests,
    )

    problem = manifests_folder_problem(folder)
    if problem is not None:
        raise UsageError(problem)
    found = []
    for path in FolderWatch(folder).files():
        try:
            manifests, unnamed = read_manifests(path, str(path.relative_to(folder)), [])
        except FileError as error:
            print(error, file=sys.stderr)
            continue
        for message in unnamed:
            print(message, file=sys.stderr)
        for manifest in manifests:
            if manifest.kind != "ServiceLevelAgreement":
                continue
            if manifest.problems:
                for message in manifest.messages(manifest.problems):
                    print(f"{message}: skipped", file=sys.stderr)
                continue
            if not namespaces or manifest.key[0] in namespaces:
                found.append(manifest.body)
            elif elsewhere is not None:
                elsewhere.add(manifest.key[0])
    return found


def cluster_agreements(namespaces: Sequence[str]) -> list[dict[str, Any]]:
    from sla_operator.kube.connect import api_client, list_kind

    return list_kind(api_client(), "servicelevelagreements", namespaces)


def render(agreements: Sequence[Agreement], output: str,
           rule_labels: Mapping[str, str] | None = None) -> str:
    if output == "rules":
        return yaml.safe_dump(rule_file(agreements), sort_keys=False, width=1000,
                              allow_unicode=True)
    objects = [o for a in sorted(agreements, key=lambda a: a.key)
               if (o := prometheus_rule(a, rule_labels)) is not None]
    return yaml.safe_dump_all(objects, sort_keys=False, width=1000, allow_unicode=True)


def run_rules(namespaces: Sequence[str], manifests: str | None, output: str,
              rule_labels: Mapping[str, str] | None = None) -> int:
    from sla_operator.kube.connect import StartupError

    elsewhere: set[str] = set()
    try:
        items = (folder_agreements(Path(manifests), namespaces, elsewhere) if manifests
                 else cluster_agreements(namespaces))
    except UsageError as error:
        print(f"sla-operator rules: {error}", file=sys.stderr)
        return 2
    except StartupError as error:
        print(f"sla-operator rules: {error}", file=sys.stderr)
        return 1
    if namespaces and not items:
        # Rules for nothing are a mistake to say, not an empty file to install.
        where = f"under --manifests {manifests}" if manifests else "in the cluster"
        found = (f"; the agreements there are in namespace(s) {', '.join(sorted(elsewhere))}"
                 if elsewhere else "")
        default = (" (a manifest without metadata.namespace is in namespace default, as "
                   "kubectl apply without -n would put it)" if "default" in elsewhere else "")
        print(f"sla-operator rules: no agreement in namespace(s) {', '.join(namespaces)} "
              f"{where}{found}{default}", file=sys.stderr)
        return 1
    sys.stdout.write(render(_readable(items), output, rule_labels))
    return 0
