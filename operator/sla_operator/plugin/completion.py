"""Shell completion: `kubectl-sla completion bash|zsh` scripts, and the cobra-style answers
(`kubectl_complete-sla`, `kubectl-sla __complete`) kubectl 1.26+ asks plugins for.

An answer is one candidate per line and a last line ``:DIRECTIVE`` (4: no file names, 0:
the shell may complete file names), as cobra's ``__complete`` prints it."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TextIO

from sla_operator.plugin.parser import INCIDENT_COMMANDS, build_parser

NO_FILES, FILES = 4, 0
Names = Callable[[str, dict[str, str]], list[str]]  # (kind, flags given) -> object names

_POSITIONAL_KINDS = {**dict.fromkeys(INCIDENT_COMMANDS, "incidents"),
                     "start": "servicelevelagreements", "schedule": "servicelevelagreements",
                     "end": "maintenancewindows"}
# Subcommands whose last word alone would be read as another's (`request resolve` is no
# incident's resolve).
_PATH_KINDS: dict[tuple[str, ...], str | None] = {
    ("request", "open"): "servicelevelagreements", ("request", "respond"): "supportrequests",
    ("request", "resolve"): "supportrequests", ("request", "list"): None}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps them nowhere public
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0


def candidates(words: Sequence[str], names: Names) -> tuple[list[str], int]:
    """Completions of the last word of ``words`` (the arguments after the program name)."""
    parser: argparse.ArgumentParser = build_parser()
    path: list[str] = []
    flags: dict[str, str] = {}
    positionals = 0
    *given, current = list(words) or [""]
    index = 0
    while index < len(given):
        word = given[index]
        action = parser._option_string_actions.get(word.split("=")[0])
        if action is not None:
            if _takes_value(action) and "=" not in word and index + 1 < len(given):
                flags[action.dest] = given[index + 1]
                index += 1
        elif word in _subcommands(parser):
            parser, positionals = _subcommands(parser)[word], 0
            path.append(word)
        elif not word.startswith("-"):
            positionals += 1
        index += 1
    previous = parser._option_string_actions.get(given[-1]) if given else None
    if previous is not None and _takes_value(previous) and "=" not in given[-1]:
        return _values(previous, flags, names, current)
    if current.startswith("-"):
        options = sorted(s for s in parser._option_string_actions if s.startswith("--"))
        return [o for o in options if o.startswith(current)], NO_FILES
    subcommands = _subcommands(parser)
    if subcommands:
        return [c for c in subcommands if c.startswith(current)], NO_FILES
    if path == ["completion"]:
        return [s for s in ("bash", "zsh") if s.startswith(current)], NO_FILES
    kind = (_PATH_KINDS[tuple(path)] if tuple(path) in _PATH_KINDS
            else _POSITIONAL_KINDS.get(path[-1]) if path else None)
    if kind is None or positionals > 0:
        return [], NO_FILES
    return [n for n in names(kind, flags) if n.startswith(current)], NO_FILES


def _values(action: argparse.Action, flags: dict[str, str], names: Names,
            current: str) -> tuple[list[str], int]:
    if action.choices:
        return [str(c) for c in action.choices if str(c).startswith(current)], NO_FILES
    if action.dest == "kubeconfig":
        return [], FILES
    if action.dest in ("namespace", "context", "agreement"):
        kind = {"namespace": "namespaces", "context": "contexts",
                "agreement": "servicelevelagreements"}[action.dest]
        return [n for n in names(kind, flags) if n.startswith(current)], NO_FILES
    return [], NO_FILES


def cluster_names(kind: str, flags: dict[str, str]) -> list[str]:
    """Names from the cluster the flags given so far select; nothing when it cannot answer
    (a completion never prints errors into the command line being typed)."""
    from kubernetes import client, config

    from sla_operator.plugin.cluster import Cluster, connect
    try:
        if kind == "contexts":
            contexts, _ = config.list_kube_config_contexts(config_file=flags.get("kubeconfig"))
            return [str(c["name"]) for c in contexts or ()]
        connection = connect(flags.get("kubeconfig"), flags.get("context"))
        connection.api.configuration.retries = 0
        if kind == "namespaces":
            listed = client.CoreV1Api(connection.api).list_namespace(_request_timeout=5)
            return [n.metadata.name for n in listed.items]
        namespace = flags.get("namespace") or connection.namespace
        items = Cluster(connection).list(kind, namespace)
        return sorted(str((i.get("metadata") or {}).get("name")) for i in items)
    except Exception:  # any failure means: no suggestions
        return []


def run_completion(words: Sequence[str], out: TextIO, names: Names = cluster_names) -> int:
    found, directive = candidates(words, names)
    out.write("".join(f"{c}\n" for c in found) + f":{directive}\n")
    return 0


_BASH = r"""# bash completion for kubectl-sla; load with: source <(kubectl-sla completion bash)
_kubectl_sla() {
    local cur="${COMP_WORDS[COMP_CWORD]}" out directive
    out=$(kubectl-sla __complete "${COMP_WORDS[@]:1:COMP_CWORD-1}" "$cur" 2>/dev/null) || return
    directive=${out##*:}
    out=$(printf '%s\n' "$out" | sed '$d')
    COMPREPLY=($(compgen -W "$out" -- "$cur"))
    if [[ ${#COMPREPLY[@]} -eq 0 && $directive != 4 ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -F _kubectl_sla kubectl-sla
"""

_ZSH = r"""#compdef kubectl-sla
# zsh completion for kubectl-sla; load with: source <(kubectl-sla completion zsh)
_kubectl_sla() {
    local -a lines
    lines=("${(@f)$(kubectl-sla __complete "${(@)words[2,CURRENT-1]}" "${words[CURRENT]}" 2>/dev/null)}")
    local directive=${lines[-1]#:}
    lines=("${(@)lines[1,-2]}")
    if (( ${#lines} )); then
        compadd -- "${lines[@]}"
    elif [[ $directive != 4 ]]; then
        _files
    fi
}
compdef _kubectl_sla kubectl-sla
"""


def script(shell: str) -> str:
    return _BASH if shell == "bash" else _ZSH
