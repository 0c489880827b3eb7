"""Jupyter notebooks through the LLMOS proxy: kernels over WebSocket, files on the volume,
stop and start, RBAC on the proxy path, idle culling and waking, no orphans."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from helpers import condition, create, notebook, path, phase_is, volume, wait_for
from jupyter import execute, start_kernel, submit

from factories import bind, create_namespace, create_user, unique
from llmos._lib.keys import ServerKey
from llmos.runtime.local.cgroups import cgroup_dirs
from processes import argv_of, descendants
from sandboxed import is_the_program
from server import RunningServer, start_server


def jupyter_pids(server: RunningServer) -> list[int]:
    # Jupyter itself, not the sandbox (bwrap) around it, which names it too.
    return [
        child.pid
        for child, argv in descendants(server.pid)
        if is_the_program(argv) and "jupyterlab" in " ".join(argv)
    ]


def jupyter_port(server: RunningServer, name: str) -> int:
    for pid in jupyter_pids(server):
        args = psutil.Process(pid).cmdline()
        if any(arg.endswith(f"/{name}/") for arg in args):
            return int(next(a for a in args if a.startswith("--ServerApp.port=")).split("=")[1])
    raise AssertionError(f"no Jupyter process for {name}")


@pytest.fixture(scope="module")
def team(server: RunningServer) -> Iterator[str]:
    with server.client(server.admin_token) as admin:  # type: ignore[attr-defined]
        namespace = unique("nbteam")
        create_namespace(admin, namespace)
        yield namespace
        admin.delete(f"/apis/management.llmos.ai/v1/namespaces/{namespace}")


def test_jupyter_kernel_writes_to_the_volume_and_survives_a_restart(
    server: RunningServer, admin: httpx.Client, team: str
) -> None:
    vol, nb = unique("work"), unique("lab")
    create(admin, "volumes", team, volume(vol))
    folder = Path(
        wait_for(admin, path("volumes", team, vol), phase_is("Bound"), "Bound")["status"]["path"]
    )
    # A user's file named like a module Jupyter imports does not stand in for it.
    (folder / "jupyter_server.py").write_text("raise SystemExit('the volume shadowed Jupyter')")
    env = [{"name": "GREETING", "value": "hello"}]
    create(admin, "notebooks", team, notebook(nb, volumes=[{"name": vol}], env=env))
    ready = wait_for(admin, path("notebooks", team, nb), phase_is("Ready"), "Ready", 120)
    base = f"/notebooks/{team}/{nb}/"
    assert ready["status"]["url"] == base
    assert ready["status"]["workingDir"] == str(folder)

    kernel = start_kernel(admin, base)
    volume_env = "LLMOS_VOLUME_" + vol.upper().replace("-", "_")
    reply = execute(
        server.url,
        base,
        kernel,
        server.admin_token,  # type: ignore[attr-defined]
        server.ssl_context(),
        "import os\nopen('hello.txt', 'w').write('written by a kernel')\nprint(os.getcwd())\n"
        f"for name in ('GREETING', '{volume_env}', 'LLMOS_NOTEBOOK_SECRET', 'JUPYTER_TOKEN'):\n"
        "    print(os.environ.get(name))",
    )
    assert reply["status"] == "ok", reply
    # The spec's env and the volume's path reach the kernel; the notebook's secret does not.
    assert reply["printed"].split() == [str(folder), "hello", str(folder), "None", "None"]
    assert (folder / "hello.txt").read_text() == "written by a kernel"

    # Stop it and start it again: the file is still there, served by the new process.
    stop = {"spec": {"stopped": True}}
    merge = {"Content-Type": "application/merge-patch+json"}
    admin.patch(path("notebooks", team, nb), json=stop, headers=merge)
    wait_for(admin, path("notebooks", team, nb), phase_is("Stopped"), "Stopped")
    assert admin.get(f"{base}api/status").status_code == 409
    admin.patch(path("notebooks", team, nb), json={"spec": {"stopped": False}}, headers=merge)
    wait_for(admin, path("notebooks", team, nb), phase_is("Ready"), "Ready again", 120)
    content = admin.get(f"{base}api/contents/hello.txt", params={"content": 1})
    assert content.status_code == 200
    assert content.json()["content"] == "written by a kernel"
    admin.delete(path("notebooks", team, nb))


def test_a_notebook_sees_its_own_files_not_the_servers_or_other_workloads(
    server: RunningServer, admin: httpx.Client, team: str
) -> None:
    mine, theirs, nb = unique("mine"), unique("theirs"), unique("boxed")
    for vol in (mine, theirs):
        create(admin, "volumes", team, volume(vol))
    folders = [
        wait_for(admin, path("volumes", team, v), phase_is("Bound"), "Bound")["status"]["path"]
        for v in (mine, theirs)
    ]
    limited = {"memory": "1536Mi", "cpu": "500m"}
    create(admin, "notebooks", team, notebook(nb, volumes=[{"name": mine}], resources=limited))
    ready = wait_for(admin, path("notebooks", team, nb), phase_is("Ready"), "Ready", 120)
    assert condition(ready, "Isolated")["status"] == "True", ready["status"]
    base = f"/notebooks/{team}/{nb}/"
    data = server.data_dir
    assert (data / "llmos.db").exists() and (data / "tls").is_dir()
    kernel_at = (
        server.url,
        base,
        start_kernel(admin, base),
        server.admin_token,  # type: ignore[attr-defined]
        server.ssl_context(),
    )
    reply = execute(
        *kernel_at,
        "import os\n"
        f"print(sorted(os.listdir({str(data)!r})))\n"
        f"print(os.path.exists({folders[1]!r}), os.path.exists('/proc/{server.pid}'))\n"
        "print(len([p for p in os.listdir('/proc') if p.isdigit()]) < 10)\n"
        f"open(os.path.join({folders[0]!r}, 'mine.txt'), 'w').write('kept')\n"
        "try:\n    open('/etc/shadow').read()\n    print('shadow read')\n"
        "except OSError:\n    print('no shadow')\n"
        # Its $USER is who it runs as (nobody, under a root server), and $SHELL a usable shell.
        "import pwd\n"
        "print(os.environ['USER'] == pwd.getpwuid(os.getuid()).pw_name,"
        " os.path.basename(os.environ['SHELL']) in {'bash', 'sh', 'zsh', 'dash'})\n",
    )
    assert reply["status"] == "ok", reply
    # Of the data dir it sees only the way to its own folders: no database, keys or logs;
    # not another volume, not the server's process (nor any outside its own few).
    assert reply["printed"].split("\n")[:5] == [
        "['notebooks', 'volumes']",
        "False False",
        "True",
        "no shadow",
        "True True",
    ]
    assert (Path(folders[0]) / "mine.txt").read_text() == "kept"
    # Jupyter and its kernel share one cgroup, held to the notebook's memory and CPU share.
    jupyter = next(p for p in jupyter_pids(server) if base in " ".join(argv_of(psutil.Process(p))))
    kernel = next(c for c, argv in descendants(jupyter) if "ipykernel" in " ".join(argv))
    groups = [g for c, g in cgroup_dirs(kernel.pid) if not c or "memory" in c]
    assert groups and groups == [g for c, g in cgroup_dirs(jupyter) if not c or "memory" in c]
    assert groups[0].name == f"notebooks_{team}_{nb}_0"
    limit = groups[0] / (
        "memory.max" if (groups[0] / "memory.max").exists() else "memory.limit_in_bytes"
    )
    assert limit.read_text().strip() == str(1536 * 2**20)
    # Past its memory, the kernel is killed (on cgroup v1 the largest process: the kernel
    # alone, which Jupyter restarts; on v2 the whole notebook), and the notebook says so.
    submit(*kernel_at, "chunks = [b'x' * 2**26 for _ in range(40)]")  # 2.5 GiB, touched
    events = f"/apis/node.llmos.ai/v1/namespaces/{team}/events"
    found = wait_for(admin, events, lambda e: oom_events(e, nb), "an OOMKilled Event", 60)
    (message,) = oom_events(found, nb)
    if limit.name == "memory.limit_in_bytes":
        assert message == (
            "the kernel's OOM killer ended one of its processes (out of memory); the notebook "
            "runs on. Raise resources.memory if it needs more"
        )
        assert psutil.pid_exists(jupyter)  # Jupyter runs on, and starts a new kernel
        assert admin.get(path("notebooks", team, nb)).json()["status"]["phase"] == "Ready"
        started = [e for e in found["items"] if e["spec"]["reason"] == "Started"]
        assert [e["spec"]["involvedObject"]["name"] for e in started].count(nb) == 1
    else:
        assert message.startswith("the notebook ran out of memory"), message
    admin.delete(path("notebooks", team, nb))


def oom_events(found: dict[str, Any], name: str) -> list[str]:
    return [
        e["spec"]["message"]
        for e in found["items"]
        if e["spec"]["involvedObject"]["name"] == name and e["spec"]["reason"] == "OOMKilled"
    ]


def test_only_users_who_may_run_code_reach_the_notebook(
    server: RunningServer, admin: httpx.Client, team: str
) -> None:
    nb = unique("private")
    create(admin, "notebooks", team, notebook(nb))
    wait_for(admin, path("notebooks", team, nb), phase_is("Ready"), "Ready", 120)
    base = f"/notebooks/{team}/{nb}/"
    outsider, viewer, member = unique("out"), unique("view"), unique("mem")
    for user in (outsider, viewer, member):
        create_user(admin, user, f"{user}-password-1")
    bind(admin, team, viewer, "namespace-readonly")
    bind(admin, team, member, "namespace-member")
    for user, expected in ((outsider, 403), (viewer, 403), (member, 200)):
        token = server.login(user, f"{user}-password-1")
        with server.client(token) as client:
            response = client.get(f"{base}api/status")
            assert response.status_code == expected, (user, response.text)
    with server.client() as anonymous:
        assert anonymous.get(f"{base}api/status").status_code == 401
    # The notebook's own secret never leaves the server: not in JupyterLab's page (whose
    # config would carry Jupyter's token), its headers or its cookies.
    uid = admin.get(path("notebooks", team, nb)).json()["metadata"]["uid"]
    secret = ServerKey(server.data_dir / "notebooks" / ".key").derive(uid)
    with server.client(server.admin_token) as client:  # type: ignore[attr-defined]
        status = client.get(f"{base}api/status")
        assert status.status_code == 200
        assert "token" not in status.text
        page = client.get(f"{base}lab")
        assert page.status_code == 200 and "jupyter-config-data" in page.text
        seen = page.text + str(page.headers) + str(client.cookies)
        assert secret not in seen and '"token": ""' in page.text
    # Its own port lets in only what carries the secret (which only the proxy adds).
    port = jupyter_port(server, nb)
    direct = f"http://127.0.0.1:{port}{base}api/kernels"
    assert httpx.get(direct).status_code == 403
    assert httpx.get(direct, headers={"Authorization": "token wrong"}).status_code == 403
    assert httpx.get(direct, headers={"Authorization": f"token {secret}"}).status_code == 200
    admin.delete(path("notebooks", team, nb))


def test_an_idle_notebook_is_culled_and_wakes_on_the_next_visit(
    admin: httpx.Client, team: str
) -> None:
    nb = unique("sleepy")
    create(admin, "notebooks", team, notebook(nb, idleTimeoutMinutes=0.05))  # 3 s
    wait_for(admin, path("notebooks", team, nb), phase_is("Ready"), "Ready", 120)
    culled = wait_for(admin, path("notebooks", team, nb), phase_is("Idle"), "Idle", 60)
    assert "idle" in condition(culled, "Ready")["message"]
    events = admin.get(f"/apis/node.llmos.ai/v1/namespaces/{team}/events").json()["items"]
    assert any(
        e["spec"]["reason"] == "Culled" and e["spec"]["involvedObject"]["name"] == nb
        for e in events
    )
    # The next request through the proxy starts it and waits for it.
    response = admin.get(f"/notebooks/{team}/{nb}/api/status", timeout=120)
    assert response.status_code == 200, response.text
    woken = admin.get(path("notebooks", team, nb)).json()
    assert woken["status"]["phase"] in ("Ready", "Idle")
    admin.delete(path("notebooks", team, nb))


def test_kill_9_of_the_server_leaves_no_jupyter_behind(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        token = server.setup_admin()
        with server.client(token) as admin:
            create(admin, "notebooks", "default", notebook("survivor"))
            wait_for(
                admin, path("notebooks", "default", "survivor"), phase_is("Ready"), "Ready", 120
            )
            start_kernel(admin, "/notebooks/default/survivor/")  # a kernel in a session of its own
        pids = jupyter_pids(server)
        assert pids
        tree = descendants(server.pid)
        assert any("ipykernel" in " ".join(argv) for _, argv in tree), "the kernel is running"
        server.stop(signal.SIGKILL)
        _gone, alive = psutil.wait_procs([p for p, _ in tree], 15)
        assert alive == [], [(p.pid, argv_of(p)) for p in alive]
        server.start()
        token = server.login("admin", "admin-password-123")
        with server.client(token) as admin:
            url = path("notebooks", "default", "survivor")
            seen = admin.get(url).json()["status"]
            # Never the killed server's Ready: it was marked starting before the new one served.
            assert seen["phase"] != "Ready" or jupyter_pids(server), seen
            wait_for(admin, url, phase_is("Ready"), "Ready again", 120)
            assert len(jupyter_pids(server)) == 1
            admin.delete(path("notebooks", "default", "survivor"))
    finally:
        server.stop()


def test_unavailable_types_say_so(admin: httpx.Client, team: str) -> None:
    nb = unique("rstudio")
    create(admin, "notebooks", team, notebook(nb, type="rstudio"))
    failed = wait_for(admin, path("notebooks", team, nb), phase_is("Unavailable"), "Unavailable")
    assert "not available on this node" in failed["status"]["message"]
    assert condition(failed, "Ready")["reason"] == "NotAvailable"
    admin.delete(path("notebooks", team, nb))


def test_a_missing_volume_is_named_and_its_coming_starts_the_notebook(
    admin: httpx.Client, team: str
) -> None:
    nb, vol = unique("novol"), unique("late")
    create(admin, "notebooks", team, notebook(nb, volumes=[{"name": vol}]))
    failed = wait_for(admin, path("notebooks", team, nb), phase_is("Failed"), "Failed")
    assert f"Volume '{vol}' does not exist" in failed["status"]["message"]
    # Applied in the wrong order: the volume that comes later starts the notebook.
    create(admin, "volumes", team, volume(vol))
    ready = wait_for(admin, path("notebooks", team, nb), phase_is("Ready"), "Ready", 120)
    assert ready["status"]["workingDir"].endswith(f"/{vol}")
    admin.delete(path("notebooks", team, nb))
