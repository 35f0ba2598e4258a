"""`sla-operator export openslo` and `sla-operator import openslo FILE`.

Export reads the agreements as `rules` does (the cluster, or a folder of manifests with
``--manifests``) and prints each as OpenSLO v1 documents, one YAML stream. Import reads an
OpenSLO file and prints a ServiceLevelAgreement manifest per SLO it can express, each under
comments that say what to fill in; every SLO it cannot express is refused on stderr, one line
per field. Either exits 1 when anything was left out.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from sla_operator.domain.openslo_export import export_all
from sla_operator.domain.openslo_import import Imported, import_documents
from sla_operator.rules_command import UsageError, _readable, cluster_agreements, folder_agreements


def _dump(documents: Sequence[object]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False, width=100, allow_unicode=True)


def run_export(namespaces: Sequence[str], manifests: str | None) -> int:
    from sla_operator.kube.connect import StartupError

    try:
        items = (folder_agreements(Path(manifests), namespaces) if manifests
                 else cluster_agreements(namespaces))
    except (UsageError, StartupError) as error:
        print(f"sla-operator export: {error}", file=sys.stderr)
        return 2 if isinstance(error, UsageError) else 1
    agreements = _readable(items)
    documents, notes, refused = export_all(agreements)
    for agreement, error in refused:
        print(f"agreement {agreement.namespace}/{agreement.name} left out: {error}",
              file=sys.stderr)
    for note in notes:
        print(note, file=sys.stderr)
    sys.stdout.write(_dump(documents))
    return 1 if refused or len(agreements) < len(items) else 0


def run_import(file: str, namespace: str | None) -> int:
    try:
        with open(file, encoding="utf-8") as source:
            documents = [d for d in yaml.safe_load_all(source) if d is not None]
    except (OSError, yaml.YAMLError) as error:
        print(f"sla-operator import: {file}: {error}", file=sys.stderr)
        return 2
    results = import_documents(documents, namespace)
    if not results:
        print(f"sla-operator import: {file} holds no OpenSLO SLO (kind: SLO)", file=sys.stderr)
        return 1
    out: list[str] = []
    refused = 0
    for result in results:
        if isinstance(result, Imported):
            comments = [f"Imported from OpenSLO SLO {result.slo} ({file}).",
                        *[f"- {note}" for note in result.notes]]
            out.append("".join(f"# {line}\n" for line in comments) + _dump([result.manifest]))
            continue
        refused += 1
        for problem in result.error.problems:
            print(f"SLO {result.slo} refused: {problem}", file=sys.stderr)
    sys.stdout.write("---\n".join(out))
    imported = len(results) - refused
    print(f"sla-operator import: {imported} agreement(s) written, {refused} SLO(s) refused; "
          "fill in spec.endpoints of each agreement before applying it", file=sys.stderr)
    return 1 if refused else 0
