"""``llmos ray submit``: run a Ray job on an MLCluster with the saved login.

The same as ``ray job submit --address https://HOST:8443/mlclusters/NS/NAME/dashboard
--headers '{"Authorization": "Bearer TOKEN"}' --verify CA``, with the server,
token and CA taken from ``llmos login``. Ray's SDK is imported only here and
only when the command runs: it is the optional ``ray`` extra.
"""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from llmos.cli.client import Client, CLIError, KindRef, default_namespace
from llmos.cli.common import NamespaceOpt, friendly
from llmos.cli.lookup import fetch

ray_app = typer.Typer(name="ray", help="Ray jobs on MLClusters.", no_args_is_help=True)
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
MLCLUSTERS = KindRef("ml.llmos.ai", "v1", "MLCluster", "mlclusters", namespaced=True)


def _client(cluster: str, namespace: str) -> Any:
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as exc:
        raise CLIError(
            "Ray is not installed here: install the ray extra "
            "(scripts/setup --ray, or pip install 'llmos[ray]')"
        ) from exc
    api = Client()  # not logged in: a plain error
    creds = api.creds
    # Ask LLMOS first: a missing cluster, no access or a head not ready, in its words.
    cluster_obj = fetch(api, MLCLUSTERS, namespace, cluster)
    status = cluster_obj.get("status") or {}
    head = [n for n in status.get("nodes") or [] if n.get("name") == "head"]
    if not head or head[0].get("phase") != "Ready":
        message = status.get("message") or "it is starting"
        raise CLIError(f"the Ray head of {namespace}/{cluster} is not ready: {message}")
    verify: bool | str = True
    if creds.insecure:
        verify = False
    elif creds.ca_file:
        verify = creds.ca_file
    address = f"{creds.server.rstrip('/')}/mlclusters/{namespace}/{cluster}/dashboard"
    try:
        return JobSubmissionClient(
            address, headers={"Authorization": f"Bearer {creds.token}"}, verify=verify
        )
    except (ConnectionError, RuntimeError) as exc:
        raise CLIError(f"cannot reach the Ray dashboard of {namespace}/{cluster}: {exc}") from exc


async def _follow(client: Any, job: str) -> None:
    async for lines in client.tail_job_logs(job):
        typer.echo(lines, nl=False)


def register(app: typer.Typer) -> None:
    @ray_app.command()
    @friendly
    def submit(
        cluster: Annotated[str, typer.Argument(metavar="CLUSTER", help="The MLCluster's name.")],
        entrypoint: Annotated[
            list[str], typer.Argument(metavar="COMMAND", help="The command, after --.")
        ],
        namespace: NamespaceOpt = None,
        working_dir: Annotated[
            Path | None,
            typer.Option(help="A local directory to upload; the job runs in it."),
        ] = None,
        wait: Annotated[bool, typer.Option(help="Follow the logs until the job ends.")] = True,
    ) -> None:
        """Submit a Ray job to an MLCluster: llmos ray submit NAME -- python train.py"""
        client = _client(cluster, default_namespace(namespace))
        runtime_env = {"working_dir": str(working_dir)} if working_dir else None
        try:
            job = client.submit_job(entrypoint=shlex.join(entrypoint), runtime_env=runtime_env)
        except RuntimeError as exc:
            raise CLIError(f"the job was not accepted: {exc}") from exc
        typer.echo(f"submitted {job}", err=True)
        if not wait:
            typer.echo(job)
            return
        asyncio.run(_follow(client, job))
        status = str(client.get_job_status(job))
        typer.echo(f"job {job}: {status}", err=True)
        if status != "SUCCEEDED":
            raise typer.Exit(1)

    app.add_typer(ray_app)
