"""Volumes and notebooks from the dashboard: create, see them live, open JupyterLab through
the proxy with the dashboard's session, stop, delete."""

from __future__ import annotations

import re
import time
import uuid

import httpx
from playwright.sync_api import Page, expect

from conftest import go, log_in
from server import ADMIN_PASSWORD, RunningServer
from workloads.helpers import mlcluster


def test_create_a_volume_and_a_notebook_then_open_jupyterlab(
    page: Page, server: RunningServer, admin: httpx.Client
) -> None:
    vol, nb = f"ui-{uuid.uuid4().hex[:6]}", f"lab-{uuid.uuid4().hex[:6]}"
    log_in(page, server, "admin", ADMIN_PASSWORD)
    go(page, "Volumes")
    form = page.get_by_role("form", name="Create a volume")
    form.get_by_label("Name", exact=True).fill(vol)
    form.get_by_label("Capacity").fill("lots")
    form.get_by_role("button", name="Create volume").click()
    expect(form.locator("#vol-capacity-error")).to_be_visible()
    form.get_by_label("Capacity").fill("2Gi")
    form.get_by_role("button", name="Create volume").click()
    row = page.locator(f'tr[data-name="{vol}"]')
    expect(row.locator("[data-phase]")).to_have_attribute("data-phase", "Bound")

    go(page, "Notebooks")
    form = page.get_by_role("form", name="Create a notebook")
    form.get_by_label("Name", exact=True).fill(nb)
    form.get_by_label("Volume (working dir)").select_option(vol)
    form.get_by_role("button", name="Create notebook").click()
    row = page.locator(f'tr[data-name="{nb}"]')
    expect(row.locator("[data-phase]")).to_have_attribute("data-phase", "Ready", timeout=120_000)

    # Its detail page: conditions, Events and the object itself.
    row.get_by_role("link", name=nb, exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(nb))).to_be_visible()
    expect(page.locator("table").first).to_contain_text("Ready")
    expect(page.get_by_label("The object as YAML")).to_contain_text(f"name: {nb}")
    expect(page.get_by_role("link", name="Open", exact=True)).to_have_attribute(
        "href", f"/notebooks/default/{nb}/"
    )
    # Its live log: JupyterLab's own lines, through the logs API.
    expect(page.get_by_label("Notebook logs")).to_contain_text("Jupyter Server", timeout=30_000)
    # All is well: its message is a plain line with a link, not a warning banner.
    message = page.get_by_test_id("status-message")
    expect(message).to_have_class("status-line")
    expect(message.get_by_role("link", name=f"/notebooks/default/{nb}/")).to_be_visible()
    go(page, "Notebooks")
    with page.context.expect_page() as opened:
        row.get_by_role("link", name=f"Open {nb}").click()
    lab = opened.value
    expect(lab).to_have_url(re.compile(f"/notebooks/default/{nb}/"))
    expect(lab.locator("#jp-main-dock-panel")).to_be_visible(timeout=60_000)
    # A notebook from the launcher: its kernel answers over the proxied WebSocket, although
    # the page holds no token (the proxy adds the notebook's secret to each request).
    lab.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
    idle = lab.get_by_role("button", name=re.compile(r"Python 3 \(ipykernel\) \| Idle"))
    expect(idle).to_be_visible(timeout=60_000)  # its kernel is connected
    cell = lab.locator(".jp-Notebook .jp-Cell").first
    editor = cell.locator(".cm-content")
    editor.fill("print(6 * 7)")
    expect(editor).to_have_text("print(6 * 7)")
    editor.press("Shift+Enter")
    expect(cell.locator(".jp-OutputArea-output")).to_have_text("42", timeout=60_000)
    lab.close()

    go(page, "Volumes")
    expect(page.locator(f'tr[data-name="{vol}"]')).to_contain_text(f"Notebook/{nb}")
    go(page, "Notebooks")
    row.get_by_role("button", name="Stop").click()
    expect(row.locator("[data-phase]")).to_have_attribute("data-phase", "Stopped")
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name=f"Delete {nb}").click()
    expect(row).to_have_count(0)
    admin.delete(f"/apis/ml.llmos.ai/v1/namespaces/default/volumes/{vol}")


def test_create_a_ray_cluster_scale_it_and_open_its_dashboard(
    page: Page, server: RunningServer, admin: httpx.Client
) -> None:
    name = f"ray-{uuid.uuid4().hex[:6]}"
    log_in(page, server, "admin", ADMIN_PASSWORD)
    go(page, "ML Clusters")
    form = page.get_by_role("form", name="Create a Ray cluster")
    form.get_by_label("Name", exact=True).fill(name)
    form.get_by_label("Workers").fill("0")
    form.get_by_role("button", name="Create cluster").click()
    row = page.locator(f'tr[data-name="{name}"]')
    expect(row.locator("[data-phase]")).to_have_attribute("data-phase", "Ready", timeout=180_000)
    expect(row).to_contain_text("head")
    row.get_by_label("workers workers").fill("1")
    row.get_by_role("button", name="Scale").click()
    expect(row).to_contain_text("workers-0", timeout=180_000)
    with page.context.expect_page() as opened:
        row.get_by_role("link", name=f"Open the Ray dashboard of {name}").click()
    dashboard = opened.value
    expect(dashboard).to_have_title(re.compile("Ray"), timeout=60_000)
    dashboard.close()
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name=f"Delete {name}").click()
    expect(row).to_have_count(0, timeout=60_000)


def test_a_stopped_notebook_offers_no_open_and_its_volume_says_why_it_stays(
    page: Page, server: RunningServer, admin: httpx.Client
) -> None:
    vol, nb = f"kept-{uuid.uuid4().hex[:6]}", f"off-{uuid.uuid4().hex[:6]}"
    base = "/apis/ml.llmos.ai/v1/namespaces/default"
    admin.post(f"{base}/volumes", json={"metadata": {"name": vol}, "spec": {"capacity": "1Gi"}})
    spec = {"type": "jupyter", "stopped": True, "volumes": [{"name": vol}]}
    admin.post(f"{base}/notebooks", json={"metadata": {"name": nb}, "spec": spec})
    log_in(page, server, "admin", ADMIN_PASSWORD)
    go(page, "Notebooks")
    row = page.locator(f'tr[data-name="{nb}"]')
    expect(row.locator("[data-phase]")).to_have_attribute("data-phase", "Stopped")
    open_button = row.get_by_role("button", name=f"Open {nb}")
    expect(open_button).to_be_disabled()
    expect(open_button).to_have_attribute("title", re.compile("stopped"))
    row.get_by_role("link", name=nb, exact=True).click()
    expect(page.get_by_role("button", name="Open", exact=True)).to_be_disabled()

    go(page, "Home")  # a Bound volume counts as ready
    stat = page.locator('[data-kind="volumes"] small')
    expect(stat).to_have_text(re.compile(r"^[1-9]\d* ready$"))
    go(page, "Volumes")
    row = page.locator(f'tr[data-name="{vol}"]')
    expect(row.locator("[data-phase]")).to_have_attribute("data-phase", "Bound")
    # The action buttons sit in a cell like the others: every cell of a row ends at one line.
    bottoms = row.evaluate("(tr) => [...tr.cells].map((td) => td.getBoundingClientRect().bottom)")
    assert max(bottoms) - min(bottoms) < 1, bottoms
    row.get_by_role("button", name=f"Snapshot {vol}").click()
    snapshot = page.get_by_role("table", name="Snapshots").locator("tr", has_text=vol)
    expect(snapshot).to_contain_text("0 B")
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name=f"Delete {vol}").click()
    expect(row.locator("[data-phase]")).to_have_attribute("data-phase", "Terminating")
    expect(row.get_by_test_id("volume-note")).to_contain_text(
        f"Deletion waits: in use by Notebook/{nb}"
    )
    row.get_by_role("link", name=vol, exact=True).click()
    expect(page.get_by_test_id("status-message")).to_contain_text(f"in use by Notebook/{nb}")
    admin.delete(f"{base}/notebooks/{nb}")
    expect(page.get_by_text(f"There is no Volume {vol}")).to_be_visible(timeout=30_000)
    for item in admin.get(f"{base}/volumesnapshots").json()["items"]:
        if item["spec"]["volumeName"] == vol:
            admin.delete(f"{base}/volumesnapshots/{item['metadata']['name']}")


def test_a_volume_bigger_than_the_disk_says_so_in_its_row(
    page: Page, server: RunningServer, admin: httpx.Client
) -> None:
    vol = f"huge-{uuid.uuid4().hex[:6]}"
    base = "/apis/ml.llmos.ai/v1/namespaces/default"
    admin.post(f"{base}/volumes", json={"metadata": {"name": vol}, "spec": {"capacity": "1Pi"}})
    log_in(page, server, "admin", ADMIN_PASSWORD)
    go(page, "Volumes")
    row = page.locator(f'tr[data-name="{vol}"]')
    expect(row.locator("[data-phase]")).to_have_attribute("data-phase", "Bound")
    expect(row.get_by_test_id("volume-note")).to_contain_text(
        "spec.capacity 1Pi is more than this node's disk can give"
    )
    admin.delete(f"{base}/volumes/{vol}")


def test_a_ray_clusters_page_follows_the_log_of_the_node_picked(
    page: Page, server: RunningServer, admin: httpx.Client
) -> None:
    name = f"ray-{uuid.uuid4().hex[:6]}"
    url = f"/apis/ml.llmos.ai/v1/namespaces/default/mlclusters/{name}"
    assert admin.post(url.rsplit("/", 1)[0], json=mlcluster(name)).status_code == 201
    try:
        log_in(page, server, "admin", ADMIN_PASSWORD)
        go(page, "ML Clusters")
        page.get_by_role("link", name=name, exact=True).click()
        heading = page.get_by_role("heading", name=re.compile(name))
        expect(heading.locator("[data-phase]")).to_have_attribute(
            "data-phase", "Ready", timeout=180_000
        )
        ips = {n["name"]: n["ip"] for n in admin.get(url).json()["status"]["nodes"]}
        logs = page.get_by_label("Ray node logs")
        # The head's by default; `ray start` names each node's own IP in its log (in colour
        # on a terminal: the page shows the text alone).
        expect(logs).to_contain_text(f"Local node IP: {ips['head']}", timeout=30_000)
        page.get_by_role("combobox", name="Ray node").select_option("cpu-0")
        expect(logs).to_contain_text(f"Local node IP: {ips['cpu-0']}", timeout=30_000)
        expect(logs).not_to_contain_text("\x1b[")  # no terminal colour codes
    finally:
        assert admin.delete(url).status_code == 200
        deadline = time.monotonic() + 60
        while admin.get(url).status_code != 404:  # its Ray processes are stopped by then
            assert time.monotonic() < deadline, f"{name} is still there"
            time.sleep(0.2)
