"""``llmos install`` and ``llmos uninstall``: make this host a node of an LLMOS cluster (k3s), or not.

Install reads :class:`~llmos.install.config.InstallConfig` from
``/etc/llmos/config.yaml`` (``--config``), the ``LLMOS_*`` environment and the
flags (flags win over the environment, which wins over the file), runs
preflight for the role, does the join handshake when joining, then carries out
``install.plan``: ``--dry-run`` prints every file and command instead, and
``--root DIR`` writes the files under DIR and runs no command (tests, or a look
at the result). A real run needs root. Exit codes: 0 done, 1 refused or
failed, 2 bad input.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from llmos.cli.install_config import CONFIG_FILE, USAGE, fail, read_config, require_root
from llmos.install.config import InstallConfig
from llmos.install.errors import InstallError
from llmos.install.execute import execute
from llmos.install.manifests import APP, ClusterOptions
from llmos.install.plan import (
    BOOTSTRAP_PASSWORD_PATH,
    JOIN_TOKEN_PATH,
    describe,
    install_plan,
    uninstall_plan,
)
from llmos.install.secrets import HIDDEN, ClusterSecrets, service_names

__all__ = ["register"]


def _preflight(config: InstallConfig, root: Path, *, dry_run: bool) -> None:
    from llmos.preflight import PreflightOptions, Role, run_preflight

    role = Role.SERVER if config.role == "server" else Role.WORKER
    # A fixture root is not a real disk: skip the disk measurement there.
    options = PreflightOptions(role=role, root=root, quick=root != Path("/"))
    typer.echo(f"Running preflight checks for a {config.role} node ...")
    report = run_preflight(options)
    if not report.failures:
        typer.echo(f"Preflight: {report.verdict.value} ({len(report.warnings)} warnings).")
        return
    names = ", ".join(result.id for result in report.failures)
    if dry_run:
        typer.echo(f"Preflight failed ({names}); a real install would stop here:", err=True)
    else:
        typer.echo(f"error: preflight checks failed ({names}):", err=True)
    for result in report.failures:
        typer.echo(f"  - {result.title}: {result.measured} (required: {result.required})", err=True)
        if result.fix:
            typer.echo(f"    fix: {result.fix}", err=True)
    if dry_run:
        return
    typer.echo(
        "Fix them (`llmos preflight --role ...` shows every check), or install anyway "
        "with --skip-preflight.",
        err=True,
    )
    raise typer.Exit(1)


def _join(
    config: InstallConfig,
    version_given: bool,
    ca_cert: Path | None,
    *,
    allow_unpinned: bool,
    dry_run: bool,
) -> tuple[InstallConfig, str]:
    """The handshake; the config to install (k3s' URL, the release) and k3s' token.

    On a dry run the token's secret is :data:`HIDDEN`, so it reaches no terminal.
    """
    from llmos._lib.jointoken import JoinToken
    from llmos.install.join import UNPINNED_FLAG, check_join, endpoints, handshake, k3s_token

    assert config.server is not None  # InstallConfig requires it without clusterInit
    try:
        k3s_url, llmos_url = endpoints(config.server)
    except ValueError as exc:
        fail(f"--server (LLMOS_SERVER / config key server): {exc}", USAGE)
    node_name = config.node_name or socket.gethostname().lower()
    typer.echo(f"Asking {llmos_url} about the cluster ...")
    info = handshake(llmos_url, config.token, ca_cert=ca_cert)
    version = check_join(info, config, node_name, version_given=version_given)
    secret = HIDDEN if dry_run else JoinToken.parse(config.token).secret
    token = k3s_token(info, secret, allow_unpinned=allow_unpinned)
    typer.echo(
        f"Cluster: LLMOS {info.llmos_version}, Kubernetes {info.kubernetes_version}, "
        f"{len(info.nodes)} node(s); the name {node_name!r} is free; k3s joins {k3s_url}"
        + (
            f", pinned to its CA {info.kubernetes_ca_hash[:12]}…."
            if info.kubernetes_ca_hash
            else "."
        )
    )
    if not info.kubernetes_ca_hash:
        typer.echo(
            f"warning: the server named no Kubernetes CA; as {UNPINNED_FLAG} asks, k3s joins "
            f"{k3s_url} unpinned: it trusts whatever answers there and sends it the secret.",
            err=True,
        )
    return config.model_copy(update={"server": k3s_url, "kubernetes_version": version}), token


def install(
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar="LLMOS_CONFIG",
            help=f"Config file (default {CONFIG_FILE}, under --root if given).",
            show_default=False,
        ),
    ] = None,
    role: Annotated[
        str | None, typer.Option(envvar="LLMOS_ROLE", help="server or agent.", show_default=False)
    ] = None,
    cluster_init: Annotated[
        bool | None,
        typer.Option(
            "--cluster-init/--no-cluster-init",
            envvar="LLMOS_CLUSTER_INIT",
            help="Start a new cluster: the first server.",
            show_default=False,
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(envvar="LLMOS_SERVER", help="https://HOST:6443 of a server, to join."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="LLMOS_TOKEN",
            help="Shared secret (first server), or the join token K10<hash>::<secret> it "
            "printed (other nodes).",
        ),
    ] = None,
    node_name: Annotated[
        str | None, typer.Option(envvar="LLMOS_NODE_NAME", help="Node name (default: hostname).")
    ] = None,
    address: Annotated[
        str | None, typer.Option(envvar="LLMOS_ADDRESS", help="External IP of this node.")
    ] = None,
    internal_address: Annotated[
        str | None,
        typer.Option(envvar="LLMOS_INTERNAL_ADDRESS", help="Internal IP of this node."),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(help="Node label KEY=VALUE (repeatable) (env LLMOS_LABELS, comma-separated)."),
    ] = None,
    taint: Annotated[
        list[str] | None,
        typer.Option(help="Node taint key[=value]:Effect (repeatable) (env LLMOS_TAINTS)."),
    ] = None,
    tls_san: Annotated[
        list[str] | None,
        typer.Option(
            help="Extra name or IP for the certificates (repeatable) (env LLMOS_TLS_SANS)."
        ),
    ] = None,
    kubernetes_version: Annotated[
        str | None,
        typer.Option(
            envvar="LLMOS_KUBERNETES_VERSION",
            help="k3s release (default: the pinned one; joining nodes: the cluster's).",
        ),
    ] = None,
    airgap_dir: Annotated[
        Path | None,
        typer.Option(help="Install k3s from this folder (k3s binary, image tarballs, install.sh)."),
    ] = None,
    ca_cert: Annotated[
        Path | None,
        typer.Option(help="The server's CA, to join with a bare token (no K10 hash)."),
    ] = None,
    allow_unpinned_k3s_join: Annotated[
        bool,
        typer.Option(
            "--allow-unpinned-k3s-join",
            help="Join even when the server cannot name its Kubernetes CA: k3s then trusts "
            "whatever answers on port 6443 and sends it the cluster secret.",
        ),
    ] = False,
    image: Annotated[
        str | None, typer.Option(envvar="LLMOS_IMAGE", help="LLMOS server image (first server).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print every file and command; change nothing.")
    ] = False,
    root: Annotated[
        Path,
        typer.Option(help="Write the files under this folder and run no command (tests)."),
    ] = Path("/"),
    skip_preflight: Annotated[
        bool, typer.Option(help="Install even when preflight checks fail.")
    ] = False,
) -> None:
    """Install k3s and LLMOS on this node.

    As a cluster's first server, another server, or an agent.
    """
    real = not dry_run and root == Path("/")
    if real:
        require_root("install")
    given = {
        "role": role,
        "cluster_init": cluster_init,
        "server": server,
        "token": token,
        "node_name": node_name,
        "address": address,
        "internal_address": internal_address,
        "kubernetes_version": kubernetes_version,
        "label": label,
        "taint": taint,
        "tls_san": tls_san,
    }
    path = config_file or root / str(CONFIG_FILE).lstrip("/")
    config, version_given = read_config(path, config_file is not None, given)
    if airgap_dir is not None and not airgap_dir.is_dir():
        fail(f"--airgap-dir {airgap_dir} is not a folder", USAGE)
    if not skip_preflight:
        _preflight(config, root, dry_run=dry_run)
    try:
        k3s_token = None
        if not config.cluster_init:
            config, k3s_token = _join(
                config,
                version_given,
                ca_cert,
                allow_unpinned=allow_unpinned_k3s_join,
                dry_run=dry_run,
            )
        cluster = ClusterOptions(image=image) if image else ClusterOptions()
        secrets = None
        if config.cluster_init:
            if dry_run:
                secrets = ClusterSecrets.placeholder()
            else:
                secrets = ClusterSecrets.generate(config, service_names(cluster.namespace, APP))
        steps = install_plan(
            config, airgap_dir=airgap_dir, cluster=cluster, secrets=secrets, k3s_token=k3s_token
        )
        if dry_run:
            typer.echo(describe(steps))
            typer.echo("Dry run: nothing was changed.")
            return
        typer.echo(f"Installing a {config.role} node ({len(steps)} steps) ...")
        execute(steps, root, run_commands=real, echo=typer.echo)
    except InstallError as exc:
        fail(str(exc))
    _done(config, secrets, root)


def _done(config: InstallConfig, secrets: ClusterSecrets | None, root: Path) -> None:
    where = "" if root == Path("/") else f" (under {root})"
    typer.echo(f"\nDone{where}: this node is a k3s {config.role} of the LLMOS cluster.")
    if secrets is None:
        return
    host = config.address or config.node_name or socket.gethostname().lower()
    typer.echo(
        f"""
  LLMOS is being deployed into the cluster; watch it with
      k3s kubectl -n llmos-system rollout status deployment/{APP}

  Join the other nodes with this token (also in {JOIN_TOKEN_PATH}, mode 0600):

      {secrets.join_token}

      llmos install --server https://{host}:6443 --token <that token> [--role agent]

  The admin's one-time password, shown only now (also in {BOOTSTRAP_PASSWORD_PATH}, mode 0600):

      {secrets.admin_password}

  Log in with `llmos login https://{host}:8443` and choose your own.
"""
    )
    sys.stdout.flush()


def uninstall(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print every command and removal; change nothing.")
    ] = False,
    root: Annotated[
        Path, typer.Option(help="Remove the files under this folder and run no command (tests).")
    ] = Path("/"),
) -> None:
    """Remove k3s and LLMOS from this node.

    Runs k3s' own uninstall, then removes LLMOS's units and /etc/llmos.
    """
    real = not dry_run and root == Path("/")
    if real:
        require_root("uninstall")
    steps = uninstall_plan()
    if dry_run:
        typer.echo(describe(steps))
        typer.echo("Dry run: nothing was changed.")
        return
    typer.echo(f"Uninstalling k3s and LLMOS ({len(steps)} steps) ...")
    try:
        execute(steps, root, run_commands=real, echo=typer.echo)
    except InstallError as exc:
        fail(str(exc))
    typer.echo(
        "Done: k3s and LLMOS are gone from this node (workload data under /var/lib/llmos, if any, is kept)."
    )


def register(app: typer.Typer) -> None:
    app.command("install")(install)
    app.command("uninstall")(uninstall)
