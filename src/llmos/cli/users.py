"""``llmos users`` and ``llmos apikeys``: manage accounts and API keys."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from llmos.cli import output
from llmos.cli.client import Client, CLIError
from llmos.cli.common import OUTPUT_HELP, PasswordStdinOpt, check_output, friendly

USERS = "/apis/management.llmos.ai/v1/users"
BINDINGS = "/apis/management.llmos.ai/v1/namespaces/{namespace}/roletemplatebindings"
users_app = typer.Typer(help="Manage users (admins only).", no_args_is_help=True)
keys_app = typer.Typer(help="Manage your API keys.", no_args_is_help=True)
OutputOpt = Annotated[str, typer.Option("--output", "-o", help=OUTPUT_HELP)]
NameArg = Annotated[str, typer.Argument(metavar="USER", help="The user's name.")]
PasswordOpt = Annotated[
    str | None, typer.Option(help="The password (prefer --password-stdin: shells keep history).")
]


def _read_password(given: str | None, stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    if given:
        return given
    if not sys.stdin.isatty():
        raise CLIError("no password given: use --password or --password-stdin", code=2)
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("list")
@friendly
def list_users(out: OutputOpt = "table") -> None:
    """List users."""
    check_output(out)
    output.print_objects(Client().request("GET", USERS)["items"], "User", out)


@users_app.command("create")
@friendly
def create_user(
    name: NameArg,
    password: PasswordOpt = None,
    password_stdin: PasswordStdinOpt = False,
    display_name: Annotated[str, typer.Option(help="The name people see.")] = "",
    admin: Annotated[bool, typer.Option("--admin", help="Give the admin global role.")] = False,
    must_change_password: Annotated[
        bool,
        typer.Option("--must-change-password", help="Make them choose a new one at first login."),
    ] = False,
) -> None:
    """Create a user with a password."""
    body: dict[str, Any] = {
        "apiVersion": "management.llmos.ai/v1",
        "kind": "User",
        "metadata": {"name": name},
        "spec": {
            "displayName": display_name,
            "password": _read_password(password, password_stdin),
            "globalRoles": ["admin"] if admin else ["user"],
            "mustChangePassword": must_change_password,
        },
    }
    Client().request("POST", USERS, json=body)
    typer.echo(f"user/{name} created")


@users_app.command("set-password")
@friendly
def set_password(
    name: NameArg,
    password: PasswordOpt = None,
    password_stdin: PasswordStdinOpt = False,
) -> None:
    """Set another user's password (admins)."""
    body = {"spec": {"password": _read_password(password, password_stdin)}}
    Client().request(
        "PATCH",
        f"{USERS}/{name}",
        json=body,
        headers={"Content-Type": "application/merge-patch+json"},
    )
    typer.echo(f"user/{name} password set")


@users_app.command("disable")
@friendly
def disable(name: NameArg) -> None:
    """Disable a user: their tokens stop working.

    Until `llmos users enable NAME`; nothing of theirs is deleted.
    """
    _set_active(name, False)


@users_app.command("enable")
@friendly
def enable(name: NameArg) -> None:
    """Enable a disabled user."""
    _set_active(name, True)


def _set_active(name: str, active: bool) -> None:
    Client().request(
        "PATCH",
        f"{USERS}/{name}",
        json={"spec": {"active": active}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    typer.echo(f"user/{name} {'enabled' if active else 'disabled'}")


@users_app.command("delete")
@friendly
def delete_user(name: NameArg) -> None:
    """Delete a user, with their tokens and namespace bindings."""
    Client().request("DELETE", f"{USERS}/{name}")
    typer.echo(f"user/{name} deleted")


@users_app.command("grant")
@friendly
def grant(
    name: NameArg,
    namespace: Annotated[
        str, typer.Argument(metavar="NAMESPACE", help="The namespace the role applies in.")
    ],
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="namespace-owner (all, and its bindings), namespace-member (workloads) or "
            "namespace-readonly",
        ),
    ] = "namespace-member",
) -> None:
    """Give a user a role in a namespace (a RoleTemplateBinding)."""
    body = {
        "apiVersion": "management.llmos.ai/v1",
        "kind": "RoleTemplateBinding",
        "metadata": {"name": f"{name}-{role}"[:253]},
        "spec": {"user": name, "roleTemplate": role},
    }
    Client().request("POST", BINDINGS.format(namespace=namespace), json=body)
    typer.echo(f"user/{name} is {role} in namespace {namespace}")


@users_app.command("revoke")
@friendly
def revoke(
    name: NameArg,
    namespace: Annotated[
        str, typer.Argument(metavar="NAMESPACE", help="The namespace the roles apply in.")
    ],
) -> None:
    """Take back every role a user holds in a namespace."""
    client = Client()
    path = BINDINGS.format(namespace=namespace)
    held = [b for b in client.request("GET", path)["items"] if b["spec"]["user"] == name]
    if not held:
        raise CLIError(f"user {name!r} holds no role in namespace {namespace!r}")
    for binding in held:
        client.request("DELETE", f"{path}/{binding['metadata']['name']}")
        typer.echo(f"user/{name} is no longer {binding['spec']['roleTemplate']} in {namespace}")


@keys_app.command("list")
@friendly
def list_keys(out: OutputOpt = "table") -> None:
    """List your API keys (never the secrets)."""
    check_output(out)
    items = Client().request("GET", "/v1-auth/apikeys")["items"]
    if out != "table":
        import orjson
        import yaml

        if out == "name":
            typer.echo("".join(f"apikey/{key['name']}\n" for key in items), nl=False)
            return
        listed = {"kind": "List", "items": items}  # as `users list` and `get` print lists
        text = (
            orjson.dumps(listed, option=orjson.OPT_INDENT_2).decode()
            if out == "json"
            else yaml.safe_dump(listed, sort_keys=False)
        )
        typer.echo(text)
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for title in ("NAME", "DESCRIPTION", "SCOPES", "LIMITS", "EXPIRES", "LAST USED"):
        table.add_column(title)
    for key in items:
        table.add_row(
            key["name"],
            key["description"],
            ",".join(key["scopes"]),
            _limits(key),
            key["expiresAt"] or "never",
            key["lastUsedAt"] or "-",
        )
    output.console.print(table)


def _limits(key: dict[str, Any]) -> str:
    """A key's gateway limits for the table: ``60 req/min, 10000 tok/min`` or ``none``."""
    limits = [
        f"{key[field]} {unit}/min"
        for field, unit in (("requestsPerMinute", "req"), ("tokensPerMinute", "tok"))
        if key.get(field)
    ]
    return ", ".join(limits) or "none"


@keys_app.command("create")
@friendly
def create_key(
    description: Annotated[
        str, typer.Option("--description", "-d", help="What the key is for.")
    ] = "",
    ttl_minutes: Annotated[int | None, typer.Option(help="Expire after this many minutes.")] = None,
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="A model this key may use (repeatable).")
    ] = None,
    requests_per_minute: Annotated[
        int | None,
        typer.Option("--requests-per-minute", "--rpm", help="Gateway requests a minute at most."),
    ] = None,
    tokens_per_minute: Annotated[
        int | None,
        typer.Option("--tokens-per-minute", "--tpm", help="Gateway tokens a minute at most."),
    ] = None,
) -> None:
    """Create an API key. The key is printed once: store it now."""
    body: dict[str, Any] = {"description": description, "scopes": scope or ["*"]}
    if ttl_minutes is not None:
        body["ttlMinutes"] = ttl_minutes
    if requests_per_minute is not None:
        body["requestsPerMinute"] = requests_per_minute
    if tokens_per_minute is not None:
        body["tokensPerMinute"] = tokens_per_minute
    created = Client().request("POST", "/v1-auth/apikeys", json=body)
    typer.echo(created["token"])
    typer.echo(f"API key {created['name']} created. It is shown only this once.", err=True)


@keys_app.command("revoke")
@friendly
def revoke_key(
    name: Annotated[
        str, typer.Argument(metavar="KEY", help="The key's name (llmos apikeys list).")
    ],
) -> None:
    """Revoke an API key by name."""
    Client().request("DELETE", f"/v1-auth/apikeys/{name}")
    typer.echo(f"API key {name} revoked")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
    app.add_typer(keys_app, name="apikeys")
