"""``llmos get | describe | apply | delete | edit | scale``: kubectl-style resource commands."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
import yaml

from llmos.cli import output
from llmos.cli.client import Client, CLIError, KindRef, default_namespace
from llmos.cli.common import OUTPUT_HELP, NamespaceOpt, check_output, err, friendly
from llmos.cli.completion import complete_kind
from llmos.cli.lookup import fetch, naming

OutputOpt = Annotated[str, typer.Option("--output", "-o", help=OUTPUT_HELP)]
_KIND_HELP = "A kind (modelservices, ms, users, nodes, …), or KIND/NAME."
KindArg = Annotated[
    str, typer.Argument(metavar="KIND", help=_KIND_HELP, autocompletion=complete_kind)
]
NamesArg = Annotated[list[str] | None, typer.Argument(metavar="NAME", help="Names (default: all).")]
NameArg = Annotated[str | None, typer.Argument(metavar="NAME", help="The object's name.")]


def _split_target(client: Client, kind: str, names: list[str]) -> tuple[KindRef, list[str]]:
    """Accept ``ms foo``, ``ms/foo`` and ``modelservice foo bar``."""
    if "/" in kind:
        kind, first = kind.split("/", 1)
        names = [first, *names]
    return client.resolve(kind), names


def _load_documents(path: str) -> list[dict[str, Any]]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror}", code=2) from exc
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise CLIError(f"{path} is not valid YAML or JSON: {exc}", code=2) from exc
    result: list[dict[str, Any]] = []
    for index, doc in enumerate(docs):
        items = doc.get("items") if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
        for item in items or []:
            if not isinstance(item, dict) or "kind" not in item or "apiVersion" not in item:
                raise CLIError(f"{path}: document {index + 1} needs apiVersion and kind", code=2)
            result.append(item)
    return result


def _events_for(client: Client, obj: dict[str, Any]) -> list[dict[str, Any]]:
    namespace = obj["metadata"].get("namespace") or "default"
    try:
        page = client.request("GET", f"/apis/node.llmos.ai/v1/namespaces/{namespace}/events")
    except CLIError:
        return []
    uid = obj["metadata"].get("uid")
    events = [e for e in page["items"] if e["spec"]["involvedObject"].get("uid") == uid]
    return sorted(events, key=lambda e: e["spec"].get("lastTimestamp") or "")


def _gone(client: Client, path: str, timeout: float) -> dict[str, Any] | None:
    """Poll until the object is gone (None); the object if it is still there after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            obj: dict[str, Any] = client.request("GET", path)
        except CLIError as exc:
            if exc.reason == "NotFound":
                return None
            raise
        if time.monotonic() >= deadline:
            return obj
        time.sleep(0.2)


def _holding(obj: dict[str, Any]) -> str:
    """Why a deleted object is still there: its conditions that say so, or its finalizers."""
    status = obj.get("status") or {}
    said = [
        c["message"]
        for c in status.get("conditions") or []
        if c.get("status") == "True" and c.get("message") and c.get("type") in ("InUse",)
    ]
    finalizers = ", ".join(obj["metadata"].get("finalizers") or [])
    return "; ".join(said) or f"its finalizers are not done: {finalizers}"


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly
    def get(
        kind: KindArg,
        names: NamesArg = None,
        namespace: NamespaceOpt = None,
        all_namespaces: Annotated[
            bool, typer.Option("--all-namespaces", "-A", help="List every namespace's.")
        ] = False,
        selector: Annotated[
            str | None, typer.Option("--selector", "-l", help="Labels, e.g. app=chat,tier!=dev.")
        ] = None,
        out: OutputOpt = "table",
        watch: Annotated[
            bool, typer.Option("--watch", "-w", help="Keep printing changes.")
        ] = False,
    ) -> None:
        """List objects of a kind, or show named ones."""
        check_output(out)
        client = Client()
        ref, wanted = _split_target(client, kind, names or [])
        ns = None if (all_namespaces or not ref.namespaced) else default_namespace(namespace)
        with_namespace = ref.namespaced and ns is None
        params = {"labelSelector": selector} if selector else {}
        page: dict[str, Any] | None = None
        missing: list[str] = []
        if wanted:  # as kubectl: the ones found are shown, the others said after
            items = []
            for name in wanted:
                try:
                    items.append(fetch(client, ref, ns, name))
                except CLIError as exc:
                    missing.append(str(exc))
        else:
            page = client.request("GET", ref.path(ns), params=params)
            items = page["items"]
        table = None
        if items or not missing:
            where = (
                f" in namespace {ns} (add -A for every namespace)" if ref.namespaced and ns else ""
            )
            table = output.print_objects(
                items,
                ref.kind,
                out,
                with_namespace=with_namespace,
                as_list=len(wanted) != 1,
                where=where,
            )
        if missing:
            raise CLIError("\n".join(missing))
        if not watch:
            return
        if page is None:  # named objects: the watch needs the listing's resourceVersion
            page = client.request("GET", ref.path(ns), params=params)
        params |= {"watch": "true", "resourceVersion": page["metadata"]["resourceVersion"]}
        for event in client.stream_lines(ref.path(ns), params):
            obj = event["object"]
            if wanted and obj["metadata"]["name"] not in wanted:
                continue
            if event["type"] == "DELETED":
                err.print(f"{ref.kind.lower()}/{obj['metadata']['name']} deleted")
                continue
            table = output.print_objects(
                [obj], ref.kind, out, with_namespace, as_list=False, table=table
            )

    @app.command()
    @friendly
    def describe(
        kind: KindArg,
        names: NamesArg = None,
        namespace: NamespaceOpt = None,
    ) -> None:
        """Show an object in detail, with its Events.

        Its spec, status and conditions, then the Events about it, oldest first.
        """
        client = Client()
        ref, wanted = _split_target(client, kind, names or [])
        if not wanted:
            raise CLIError("describe needs a name, e.g. `llmos describe ms my-model`", code=2)
        ns = default_namespace(namespace) if ref.namespaced else None
        for name in wanted:
            obj = fetch(client, ref, ns, name)
            output.describe(obj, _events_for(client, obj))

    @app.command()
    @friendly
    def apply(
        filename: Annotated[str, typer.Option("--filename", "-f", help="YAML/JSON file, or -.")],
        namespace: NamespaceOpt = None,
    ) -> None:
        """Create objects from a file, or update them if they exist."""
        client = Client()
        for doc in _load_documents(filename):
            ref = client.by_api_version(doc["apiVersion"], doc["kind"])
            meta = doc.setdefault("metadata", {})
            name = meta.get("name")
            if not name:
                raise CLIError(f"a {doc['kind']} in {filename} has no metadata.name", code=2)
            ns = (meta.get("namespace") or default_namespace(namespace)) if ref.namespaced else None
            if ns:
                meta["namespace"] = ns
            doc.pop("status", None)
            label = f"{ref.kind.lower()}/{name}"
            try:
                current = client.request("GET", ref.path(ns, name))
            except CLIError as exc:
                # Forbidden to read is not forbidden to create: a user may create a
                # namespace it cannot yet get (it owns it once made).
                if exc.reason not in ("NotFound", "Forbidden"):
                    raise
                try:
                    client.request("POST", ref.path(ns), json=doc)
                except CLIError as refused:
                    raise (exc if refused.reason == "AlreadyExists" else refused) from None
                typer.echo(f"{label} created")
                continue
            saved = client.request(
                "PATCH",
                ref.path(ns, name),
                content=orjson.dumps(doc),
                headers={"Content-Type": "application/merge-patch+json"},
            )
            same = saved["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]
            typer.echo(f"{label} {'unchanged' if same else 'configured'}")

    @app.command()
    @friendly
    def delete(
        kind: Annotated[
            str | None,
            typer.Argument(metavar="KIND", help=_KIND_HELP, autocompletion=complete_kind),
        ] = None,
        names: Annotated[
            list[str] | None, typer.Argument(metavar="NAME", help="The objects' names.")
        ] = None,
        namespace: NamespaceOpt = None,
        filename: Annotated[
            str | None,
            typer.Option("--filename", "-f", help="Delete the objects this YAML file names."),
        ] = None,
        wait: Annotated[
            bool, typer.Option(help="Wait until finalizers are done and the object is gone.")
        ] = True,
        timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 120,
    ) -> None:
        """Delete objects by kind and name, or those in a file."""
        client = Client()
        targets: list[tuple[KindRef, str | None, str]] = []
        if filename:
            for doc in _load_documents(filename):
                ref = client.by_api_version(doc["apiVersion"], doc["kind"])
                meta = doc.get("metadata") or {}
                ns = (
                    (meta.get("namespace") or default_namespace(namespace))
                    if ref.namespaced
                    else None
                )
                targets.append((ref, ns, meta.get("name", "")))
        elif kind:
            ref, wanted = _split_target(client, kind, names or [])
            if not wanted:
                raise CLIError("delete needs at least one name", code=2)
            ns = default_namespace(namespace) if ref.namespaced else None
            targets.extend((ref, ns, name) for name in wanted)
        else:
            raise CLIError("say what to delete: `llmos delete KIND NAME` or -f FILE", code=2)
        failed: list[str] = []
        for ref, ns, name in targets:  # as kubectl: one that fails does not stop the others
            label = f"{ref.kind.lower()}/{name}"
            try:
                with naming(client, ref, ns, name):
                    obj = client.request("DELETE", ref.path(ns, name))
            except CLIError as exc:
                failed.append(str(exc))
                continue
            if not obj["metadata"].get("finalizers"):
                typer.echo(f"{label} deleted")
            elif not wait:
                typer.echo(f"{label} deleting (finalizers pending)")
            elif (left := _gone(client, ref.path(ns, name), timeout)) is None:
                typer.echo(f"{label} deleted")
            else:
                failed.append(f"{label} is still there after {timeout:g} s: {_holding(left)}")
        if failed:
            raise CLIError("\n".join(failed))

    @app.command()
    @friendly
    def scale(
        kind: KindArg,
        name: NameArg = None,
        replicas: Annotated[
            int | None, typer.Option("--replicas", help="How many replicas.")
        ] = None,
        namespace: NamespaceOpt = None,
    ) -> None:
        """Set a ModelService's replicas (0 stops it).

        For example: llmos scale ms chat --replicas 2
        """
        client = Client()
        ref, wanted = _split_target(client, kind, [name] if name else [])
        if ref.kind != "ModelService":
            raise CLIError(
                f"only ModelServices scale this way, not {ref.kind}s (an MLCluster's worker "
                "groups: `llmos edit mlcluster NAME`, spec.workerGroups[].replicas)",
                code=2,
            )
        if len(wanted) != 1:
            raise CLIError(
                "scale needs exactly one name, e.g. `llmos scale ms chat --replicas 2`", code=2
            )
        if replicas is None:
            raise CLIError("say how many: --replicas N (0 stops every replica)", code=2)
        ns = default_namespace(namespace)
        with naming(client, ref, ns, wanted[0]):
            client.request(
                "PATCH",
                ref.path(ns, wanted[0]),
                content=orjson.dumps({"spec": {"replicas": replicas}}),
                headers={"Content-Type": "application/merge-patch+json"},
            )
        noun = "replica" if replicas == 1 else "replicas"
        typer.echo(f"{ref.kind.lower()}/{wanted[0]} scaled to {replicas} {noun}")

    @app.command()
    @friendly
    def edit(
        kind: KindArg,
        name: NameArg = None,
        namespace: NamespaceOpt = None,
    ) -> None:
        """Edit an object in $EDITOR and save it.

        The save is refused if someone changed the object meanwhile.
        """
        client = Client()
        ref, wanted = _split_target(client, kind, [name] if name else [])
        if len(wanted) != 1:
            raise CLIError("edit needs exactly one name", code=2)
        ns = default_namespace(namespace) if ref.namespaced else None
        obj = fetch(client, ref, ns, wanted[0])
        obj.pop("status", None)
        original = yaml.safe_dump(obj, sort_keys=False)
        editor = os.environ.get("EDITOR") or os.environ.get("VISUAL") or "vi"
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
            handle.write(original)
            path = handle.name
        try:
            subprocess.run([*shlex.split(editor), path], check=True)
        except (OSError, ValueError, subprocess.CalledProcessError) as exc:
            raise CLIError(f"editor {editor!r} failed: {exc}") from exc
        edited = Path(path).read_text()
        if edited == original:
            os.unlink(path)
            err.print("Edit cancelled, no changes made.")
            return
        try:
            doc = yaml.safe_load(edited)
            client.request("PUT", ref.path(ns, wanted[0]), json=doc)
        except (yaml.YAMLError, CLIError) as exc:
            raise CLIError(f"{exc} (your edit is kept in {path})") from exc
        os.unlink(path)
        typer.echo(f"{ref.kind.lower()}/{wanted[0]} edited")
