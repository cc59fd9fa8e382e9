"""The Streamlit explorer: every curation action through AppTest, and a real headless browser."""

import contextlib
import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psutil
import pytest
from streamlit.testing.v1 import AppTest

from discover.cluster.type_merge import MERGED_INTO
from discover.curate import views
from discover.curate.apply import apply_decisions
from discover.curate.store import CurationStore
from discover.outputs.run_data import RunData
from discover.workspace import Workspace
from tests.conftest import REPO

APP = str(REPO / "apps" / "explorer.py")


def _app() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=120)
    app.run()
    assert not app.exception, app.exception
    return app


def _category(app: AppTest):
    """The sidebar's category box (keyed by the labels it shows)."""
    return next(box for box in app.sidebar.selectbox if box.label == "Category")


def _select_largest_leaf(app: AppTest, run: RunData) -> str:
    parent = _category(app).value
    leaves = [n for n in run.tree.proposals(parent) if not n.children]
    node = max(leaves, key=lambda n: n.size)
    next(box for box in app.sidebar.selectbox if box.label == "Proposal").set_value(node.id).run()
    assert not app.exception, app.exception
    return node.id


def test_app_shows_tree_card_and_products(workspace):
    ws, run_id = workspace
    app = _app()
    run = RunData(ws, run_id)
    node_id = _select_largest_leaf(app, run)
    assert any(h.value == run.tree[node_id].name for h in app.subheader)
    captions = " ".join(c.value for c in app.caption)
    assert "gender" in captions and "first title word" in captions  # signals that need no truth
    assert {m.label: m.help for m in app.metric}["Stability"]  # every number explained where it stands
    assert len(app.dataframe) >= 2
    app.sidebar.radio(key="view").set_value("Metrics").run()
    assert not app.exception and any("purity" in m.label for m in app.metric)


def test_a_flagged_proposal_shows_its_warning_as_plain_text(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    tree = run.tree
    parent = views.parent_options(tree)[-1]
    node = max((n for n in tree.proposals(parent) if not n.children), key=lambda n: n.size)
    node.flags = ["brand-dominated: 90% “*Acme*”", "mixed titles: 40% “Kajal”, 35% “Compact”"]
    (run.run_dir / "tree.json").write_text(tree.to_json())
    app = _app()
    _category(app).set_value(parent).run()
    next(box for box in app.sidebar.selectbox if box.label == "Proposal").set_value(node.id).run()
    assert not app.exception, app.exception
    assert [w.value for w in app.warning] == [
        views.plain("Brand-dominated: 90% “*Acme*”"),
        views.plain("Mixed titles: 40% “Kajal”, 35% “Compact”. The Split tab below can part them."),
    ]
    assert r"\*Acme\*" in app.warning[0].value  # catalog text: never rendered as Markdown
    table = app.dataframe[0].value  # the category's table says which proposals to look at first
    assert table.loc[table["proposal"].str.endswith(node.name), "flags"].tolist() == ["brand-dominated; mixed titles"]


def test_rename_through_the_app_is_stored_and_exported(workspace):
    ws, run_id = workspace
    app = _app()
    node_id = _select_largest_leaf(app, RunData(ws, run_id))
    app.text_input(key="comment").set_value("seen in photos")
    app.text_input(key=f"rename-name:{node_id}").set_value("Round Neck Tees")
    app.button(key=f"rename-button:{node_id}").click().run()
    (decision,) = CurationStore(ws.curation_path).decisions(run_id)
    assert decision.payload == {"node": node_id, "name": "Round Neck Tees"} and decision.comment == "seen in photos"
    app.sidebar.radio(key="view").set_value("Export").run()
    preview = app.dataframe[0].value  # what the export will write, before it is written
    renamed = preview[preview["subcategory"] == "Round Neck Tees"]
    assert renamed["renamed from"].tolist() == [RunData(ws, run_id).tree[node_id].name]
    assert "1 renamed" in " ".join(c.value for c in app.caption)
    app.button(key="export").click().run()
    exported = (ws.run_dir(run_id) / "export" / "curated_tree.json").read_text()
    assert '"name": "Round Neck Tees"' in exported


def test_merge_reject_move_and_undo_through_the_app(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    store = CurationStore(ws.curation_path)
    app = _app()
    node_id = _select_largest_leaf(app, run)
    into = app.selectbox(key=f"merge-into:{node_id}").options[0]
    assert store.decisions(run_id) == [], "a merge waits for confirmation"
    app.button(key=f"confirm-merge:{node_id}").click().run()
    assert [d.action for d in store.decisions(run_id)] == ["merge"]
    assert store.decisions(run_id)[0].payload["node"] == node_id and not app.exception
    app.button(key="undo").click().run()
    assert store.decisions(run_id) == []
    node_id = _select_largest_leaf(app, run)
    app.button(key=f"confirm-reject:{node_id}").click().run()
    assert [d.action for d in store.decisions(run_id)] == ["reject"]
    app.button(key="undo").click().run()
    node_id = _select_largest_leaf(app, run)
    products = app.multiselect(key=f"move-products:{node_id}").options[:2]
    app.multiselect(key=f"move-products:{node_id}").set_value(products).run()
    app.button(key=f"move-button:{node_id}").click().run()
    (move,) = CurationStore(ws.curation_path).decisions(run_id)
    assert move.action == "move" and move.payload["products"] == products
    assert into  # the merge target list was offered


def test_split_preview_then_accept_through_the_app(workspace):
    ws, run_id = workspace
    app = _app()
    node_id = _select_largest_leaf(app, RunData(ws, run_id))
    app.slider(key=f"split-strictness:{node_id}").set_value(4.0)
    app.button(key=f"split-preview:{node_id}").click().run()
    assert not app.exception, app.exception
    (shown,) = [frame.value for frame in app.dataframe if "new proposal" in frame.value.columns]  # shown first
    assert list(shown.columns) == ["new proposal", "products", "flags"] and len(shown) >= 2
    app.button(key=f"split-accept:{node_id}").click().run()
    (split,) = CurationStore(ws.curation_path).decisions(run_id)
    assert split.action == "split" and split.payload["node"] == node_id
    # split children are proposals like any other: keywords, exemplars, stability
    run = RunData(ws, run_id)
    curated, _, skipped = apply_decisions(run.tree, run.assignments, [split])
    children = curated.children(node_id)
    assert not skipped and len(children) >= 2
    assert all(c.keywords and c.exemplars and c.stability is not None for c in children if c.size >= 10)


def test_a_category_without_proposals_is_listed_and_split_as_a_whole(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    parent = views.parent_options(run.tree)[0]
    store = CurationStore(ws.curation_path)
    for node in [c for c in run.tree.children(parent) if c.kind == "proposed"]:
        store.record(run_id, "reject", {"node": node.id})  # every proposal of the category rejected
    app = _app()
    category = _category(app)
    assert category.format_func(parent).endswith("· no proposals")  # still listed, said to have none
    category.set_value(parent).run()
    assert not app.exception, app.exception
    assert "no proposals left" in app.info[0].value
    assert not any(box.label == "Proposal" for box in app.sidebar.selectbox)
    assert len(app.dataframe) >= 1  # its products
    app.slider(key=f"split-strictness:{parent}").set_value(4.0)
    app.button(key=f"split-preview:{parent}").click().run()
    assert not app.exception, app.exception
    app.button(key=f"split-accept:{parent}").click().run()
    assert not app.exception, app.exception
    split = store.decisions(run_id)[-1]
    assert split.action == "split" and split.payload["node"] == parent
    curated, _, skipped = apply_decisions(run.tree, run.assignments, store.decisions(run_id))
    assert not skipped and len(curated.children(parent)) >= 2
    assert _category(app).value == parent  # the curator stays on the category
    assert any(box.label == "Proposal" for box in app.sidebar.selectbox)  # now with its new proposals


def test_a_category_left_whole_of_several_types_says_so_in_the_category_box(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    flagged = [n for n in run.tree.nodes.values() if n.kind == "existing" and n.flags]
    assert flagged, "the small run leaves Bottomwear's 40 products of many types whole"
    category = _category(_app())
    for node in flagged:  # where a split helps, before the curator opens it
        assert category.format_func(node.id).endswith("· no proposals · mixed titles"), node.id


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def explorer(workspace: Workspace) -> Iterator[int]:
    """`discover explore` in a process group of its own; the whole group is stopped afterwards."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "discover.cli", "explore", "--workspace", str(workspace.root), "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "DISCOVER_WORKSPACE": str(workspace.root)},
        start_new_session=True,
    )
    try:
        deadline = time.time() + 90
        while not _listening(port):
            assert server.poll() is None and time.time() < deadline, "the explorer did not start"
            time.sleep(0.2)
        yield port
    finally:  # SIGTERM lets `discover explore` stop Streamlit's group; SIGKILL if it does not end
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_stopping_discover_explore_stops_its_server(workspace, stop):
    ws, _ = workspace
    with explorer(ws) as port:
        cli = next(p for p in psutil.process_iter(["cmdline"]) if str(port) in " ".join(p.info["cmdline"] or []))
        children = cli.children(recursive=True)
        assert children, "streamlit runs as a child of discover explore"
        cli.send_signal(stop)
        # Streamlit ends within a second of SIGTERM; 8 s is under the 10 s after which
        # `discover explore` falls back to SIGKILL, so a stop that needed the fallback fails
        gone, alive = psutil.wait_procs([cli, *children], timeout=8)
        assert not alive and not _listening(port)


def _browser(playwright):
    return playwright.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    )


def _open(page, port: int) -> None:
    deadline = time.time() + 60
    while True:
        try:
            page.goto(f"http://127.0.0.1:{port}", timeout=5000)
            return
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium is installed by .ci/run")
def test_real_browser_rename_and_export(workspace, tmp_path):
    from playwright.sync_api import sync_playwright

    ws, run_id = workspace
    run = RunData(ws, run_id)
    with explorer(ws) as port, sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        _open(page, port)
        largest_parent = max(run.tree.parents_with_proposals(), key=lambda n: (n.size, n.id))
        first = run.tree.children(largest_parent.id)[0]
        page.get_by_text("Curate").wait_for(timeout=90_000)
        page.get_by_role("heading", name=first.name, exact=True).wait_for(timeout=30_000)
        page.get_by_role("tab", name="Rename").click()
        box = page.get_by_label("New name")
        box.fill("Browser Renamed")
        box.press("Enter")
        page.get_by_role("button", name="Rename").click()
        page.get_by_role("heading", name="Browser Renamed", exact=True).wait_for(timeout=30_000)
        page.get_by_text("Export", exact=True).click()
        page.get_by_role("button", name="Export curated tree").click()
        page.get_by_text("Exported:").wait_for(timeout=30_000)
        page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
        if os.environ.get("DISCOVER_SCREENSHOT"):
            shutil.copyfile(tmp_path / "explorer.png", os.environ["DISCOVER_SCREENSHOT"])
        browser.close()
    assert (tmp_path / "explorer.png").stat().st_size > 10_000
    assert '"name": "Browser Renamed"' in (ws.run_dir(run_id) / "export" / "curated_tree.json").read_text()


class _Counting(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (the http.server name)
        _Counting.hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium is installed by .ci/run")
def test_catalog_text_is_shown_as_written_never_as_markdown(workspace, tmp_path):
    from playwright.sync_api import sync_playwright

    ws, run_id = workspace
    run = RunData(ws, run_id)
    trap = http.server.HTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=trap.serve_forever, daemon=True).start()
    image = f"![x](http://127.0.0.1:{trap.server_port}/pixel.png)"
    parent = max(run.tree.parents_with_proposals(), key=lambda n: (n.size, n.id))
    first = run.tree.children(parent.id)[0]
    snapshot = ws.catalog_snapshot_path(run.tree.meta["catalog_signature"])
    catalog = pd.read_parquet(snapshot)
    catalog.loc[catalog["product_id"] == first.exemplars[0], "title"] = f"**Bold** title {image}"
    catalog.to_parquet(snapshot)
    CurationStore(ws.curation_path).record(run_id, "rename", {"node": first.id, "name": f"**Loud** {image}"})
    try:
        with explorer(ws) as port, sync_playwright() as playwright:
            browser = _browser(playwright)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            _open(page, port)
            page.get_by_role("heading", name=f"**Loud** {image}").wait_for(timeout=90_000)
            page.get_by_text(f"**Bold** title {image}").wait_for(timeout=30_000)
            assert page.locator("strong", has_text="Loud").count() == 0
            browser.close()
    finally:
        trap.shutdown()
    assert _Counting.hits == []


def _show_proposal(page, tree, node_id: str) -> None:
    """Pick the proposal's category, then the proposal, in the sidebar, as a curator does."""
    from playwright.sync_api import expect

    node, parent = tree[node_id], tree.existing_parent(node_id)
    page.get_by_text("Curate").wait_for(timeout=90_000)
    _pick(page, "Category", f"{' > '.join(parent.path)} ({parent.size:,})")
    page.get_by_role("heading", name=" > ".join(parent.path), exact=True).wait_for(timeout=30_000)
    opened = views.proposal_label(tree, tree.proposals(parent.id)[0].id)  # the box is drawn anew for the category
    expect(page.get_by_role("combobox", name="Proposal", exact=True)).to_have_value(opened, timeout=30_000)
    _pick(page, "Proposal", views.proposal_label(tree, node_id))
    page.get_by_role("heading", name=node.name, exact=True).wait_for(timeout=30_000)


@contextlib.contextmanager
def _on_proposal(ws: Workspace, tree, node_id: str) -> Iterator:
    """A page of a headless browser on the explorer of `ws`, showing the proposal `node_id`."""
    from playwright.sync_api import sync_playwright

    with explorer(ws) as port, sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        _open(page, port)
        _show_proposal(page, tree, node_id)
        yield page
        browser.close()


def _settled(page) -> None:
    """Wait until Streamlit has run the script for every change sent so far: a click sent
    while it runs may be judged on widget values from before the last change."""
    page.wait_for_timeout(300)  # the change reaches the server and the run starts
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=60_000)


def _open_options(page, label: str, count: int, container: str | None = None, tab: str | None = None):
    """Open the selectbox labelled `label` (inside the popover opened by the button named
    `container`, on the card's `tab`, if given) and return its `count` options. A script run
    still finishing when it opens draws the page anew and closes the list, the popover, or
    shows the card's first tab again (all seen under load): then they are opened again once
    the app has settled."""
    from playwright.sync_api import expect

    options = page.get_by_role("option")
    box = page.get_by_role("combobox", name=label, exact=True)
    for _ in range(3):
        _settled(page)
        opener = page.get_by_role("button", name=container, exact=True) if container else None
        if tab and opener is not None and not box.is_visible() and not opener.is_visible():
            page.get_by_role("tab", name=tab).click()
            _settled(page)
        if opener is not None and not box.is_visible():
            opener.click()
        box.click()
        try:
            expect(options).to_have_count(count, timeout=10_000)
            return options
        except AssertionError:
            continue  # closed again: the next click opens it
    raise AssertionError(f"the {label!r} box did not stay open with {count} options")


def _pick(page, label: str, option: str) -> None:
    """Choose `option` in the Streamlit selectbox labelled `label`."""
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).first.click()


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium is installed by .ci/run")
def test_a_category_split_in_the_browser_no_longer_reads_no_proposals(workspace):
    from playwright.sync_api import expect, sync_playwright

    ws, run_id = workspace
    run = RunData(ws, run_id)
    parent = max(run.tree.parents_with_proposals(), key=lambda n: (n.size, n.id))
    store = CurationStore(ws.curation_path)
    for node in [c for c in run.tree.children(parent.id) if c.kind == "proposed"]:
        store.record(run_id, "reject", {"node": node.id})
    label = f"{' > '.join(parent.path)} ({parent.size:,})"
    with explorer(ws) as port, sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        _open(page, port)
        page.get_by_text("Curate").wait_for(timeout=90_000)
        _pick(page, "Category", f"{label} · no proposals")  # listed after the categories with proposals
        category = page.get_by_role("combobox", name="Category", exact=True)
        page.get_by_text("no proposals left").wait_for(timeout=30_000)
        page.get_by_role("button", name="Preview split").click()
        page.get_by_role("button", name="Accept split").click(timeout=120_000)
        page.get_by_role("combobox", name="Proposal", exact=True).wait_for(timeout=30_000)
        expect(category).to_have_value(label)  # the box says what it holds now, not its old text
        browser.close()
    (split,) = [d for d in store.decisions(run_id) if d.action == "split"]
    assert split.payload["node"] == parent.id


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium is installed by .ci/run")
def test_actions_follow_the_proposal_on_screen_and_export_twice(workspace, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    ws, run_id = workspace
    run = RunData(ws, run_id)
    parent = max(run.tree.parents_with_proposals(), key=lambda n: (n.size, n.id))
    first, target = run.tree.proposals(parent.id)[:2]  # the app opens on the first
    with explorer(ws) as port, sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        _open(page, port)
        page.get_by_role("heading", name=first.name, exact=True).wait_for(timeout=90_000)
        _pick(page, "Proposal", views.proposal_label(run.tree, target.id))
        page.get_by_role("heading", name=target.name, exact=True).wait_for(timeout=30_000)
        page.get_by_role("tab", name="Rename").click()
        expect(page.get_by_label("New name")).to_have_value(target.name)  # not the previous proposal's name
        page.get_by_label("New name").fill("Renamed In Browser")
        page.get_by_label("New name").press("Enter")
        page.get_by_role("button", name="Rename", exact=True).click()
        page.get_by_role("heading", name="Renamed In Browser", exact=True).wait_for(timeout=30_000)
        renamed = views.proposal_label(run.tree, target.id).replace(target.name, "Renamed In Browser", 1)
        expect(page.get_by_role("combobox", name="Proposal", exact=True)).to_have_value(renamed)
        siblings = [c for c in run.tree.children(target.parent) if c.id != target.id]
        page.get_by_role("tab", name="Merge").click()
        page.get_by_role("button", name="Merge", exact=True).click()
        into = views.proposal_label(run.tree, siblings[0].id)
        _pick(page, "Merge this proposal into", into)
        assert [d.action for d in CurationStore(ws.curation_path).decisions(run_id)] == ["rename"]  # not yet
        page.get_by_role("button", name="Confirm merge").click()
        page.get_by_text(f"Merged “{renamed}” into “{into}”").wait_for(timeout=30_000)
        page.get_by_role("heading", name=siblings[0].name, exact=True).wait_for(timeout=30_000)
        expect(page.get_by_role("button", name="Confirm merge")).to_have_count(0)  # the question closed with it
        page.get_by_text("Export", exact=True).click()
        for _ in range(2):
            page.get_by_role("button", name="Export curated tree").click()
            page.get_by_text("Exported:").wait_for(timeout=30_000)
            with page.expect_download():
                page.get_by_role("button", name="Download curated_tree.json").click()
            expect(page.get_by_role("button", name="Download taxonomy_diff.json")).to_have_count(1)
        page.screenshot(path=str(tmp_path / "export.png"), full_page=True)
        assert page.get_by_text("Duplicate").count() == 0 and page.locator('[data-testid="stException"]').count() == 0
        browser.close()
    _, merge = CurationStore(ws.curation_path).decisions(run_id)
    assert merge.payload == {"into": siblings[0].id, "node": target.id}  # the one picked, not a namesake


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium is installed by .ci/run")
def test_a_proposal_that_took_in_others_of_its_type_says_so_not_its_old_size(workspace):
    """The type merge grows a leaf after the cascade stopped at it: the explorer showed
    "Not split further: 37 products < min_split_size 60" on a proposal of 79."""
    from playwright.sync_api import expect, sync_playwright

    ws, run_id = workspace
    tree = RunData(ws, run_id).tree
    grown = [n for n in tree.proposals() if n.split == MERGED_INTO]
    assert grown, "the small run merges clusters of one type into a leaf"
    node = grown[0]
    with explorer(ws) as port, sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        _open(page, port)
        _show_proposal(page, tree, node.id)
        expect(page.get_by_text("Not split further: clusters of its type were merged into it")).to_be_visible()
        expect(page.get_by_text(re.compile(r"Not split further: \d+ products"))).to_have_count(0)
        browser.close()


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium is installed by .ci/run")
def test_moving_products_off_a_page_keeps_the_curator_on_that_page(workspace):
    """A curator pages through a proposal's products and moves the misplaced ones. Moving the
    last page's products away took that page away, and the picker fell back to page 1 instead
    of showing the page before it."""
    from playwright.sync_api import expect, sync_playwright

    ws, run_id = workspace
    run = RunData(ws, run_id)
    size = {n.id: int(views.member_products(run.catalog, run.assignments, n.id).shape[0]) for n in run.tree.proposals()}
    node = max(
        (n for n in run.tree.proposals() if not n.children and run.tree.children(n.parent)), key=lambda n: size[n.id]
    )
    pages = -(-size[node.id] // 25)
    moved = size[node.id] - 25 * (pages - 1)  # every product of the last page
    assert pages >= 3, "the test needs a proposal of 51+ products"
    with explorer(ws) as port, sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        _open(page, port)
        _show_proposal(page, run.tree, node.id)
        picker = page.get_by_label(re.compile(r"^Page")).first  # "Page (of N)" before the fix; then noise
        picker.fill(str(pages))
        picker.press("Enter")
        _settled(page)
        page.get_by_role("tab", name="Move").click()
        label = "Products (from the page shown above)"
        choose = page.get_by_role("combobox", name=label, exact=True)
        for _ in range(moved):  # each pick reruns the page: the next waits for it
            choose.click()
            page.get_by_role("option", name=re.compile(r"^\d+$")).first.click()  # a product id, not "Select all"
            page.keyboard.press("Escape")
            _settled(page)
        move = page.get_by_role("button", name=f"Move {moved} products", exact=True)  # drawn once all are chosen
        expect(move).to_be_enabled(timeout=30_000)
        move.click()
        _settled(page)
        expect(picker).to_have_value(str(pages - 1), timeout=30_000)  # the new last page, not the first
        page.get_by_text(f"Page {pages - 1} of {pages - 1}", exact=True).wait_for(timeout=30_000)
        browser.close()
    (move,) = CurationStore(ws.curation_path).decisions(run_id)
    assert move.action == "move" and len(move.payload["products"]) == moved


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium is installed by .ci/run")
def test_splitting_a_proposal_again_replaces_the_children_of_the_first_split(workspace):
    """A curator splits a proposal, finds the split too coarse and splits it again. The accepted
    preview stayed on screen with its "Accept split" button; a second split of the proposal (or a
    second click on that button) stopped the explorer on every page load with "duplicate node id",
    Undo included."""
    from playwright.sync_api import expect

    ws, run_id = workspace
    run = RunData(ws, run_id)
    node = max((n for n in run.tree.proposals() if not n.children), key=lambda n: n.size)
    with _on_proposal(ws, run.tree, node.id) as page:
        for _ in range(2):
            _settled(page)
            page.get_by_role("tab", name="Split").click()
            by_type = page.get_by_role("checkbox", name="Merge the clusters that name one type, as discovery does")
            if by_type.is_checked():  # the largest leaf is of one type: its clusters as found, by colour
                page.get_by_text("Merge the clusters that name one type, as discovery does").click()
                _settled(page)
            strictness = page.get_by_role("slider")
            strictness.press("Home")
            for _ in range(6):  # 1.0 → 4.0 in steps of 0.5: smaller clusters, so the small run splits
                strictness.press("ArrowRight")
            expect(strictness).to_have_value("4")
            _settled(page)
            page.get_by_role("button", name="Preview split").click()
            page.get_by_text(re.compile(r"^Split preview ready")).wait_for(timeout=180_000)
            page.get_by_role("button", name="Accept split").click()
            page.get_by_text(f"Split “{node.name}” into", exact=False).first.wait_for(timeout=30_000)
            _settled(page)
            expect(page.get_by_role("button", name="Accept split")).to_have_count(0)  # recorded: not offered again
            expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    decisions = CurationStore(ws.curation_path).decisions(run_id)
    assert [d.action for d in decisions] == ["split", "split"]
    curated, _, skipped = apply_decisions(run.tree, run.assignments, decisions)
    children = curated.children(node.id)
    assert not skipped
    assert [c.name for c in children] == decisions[1].payload["names"]  # the second split's only, none left empty
    assert all(c.size > 0 for c in children)


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium is installed by .ci/run")
def test_merge_targets_are_told_apart_by_their_place_under_the_category(workspace):
    """A proposal the cascade split further held a child of its own name ("Kurta" > "Kurta"):
    the merge box listed both as "Kurta", and the curator could not tell which one a merge hit.
    A child is labelled "Kurta · in Kurta", and no label is cut short in the merge question."""
    from playwright.sync_api import expect, sync_playwright

    ws, run_id = workspace
    tree = RunData(ws, run_id).tree
    nested = next(n for n in tree.proposals() if len(n.children) >= 2)
    long_name = "Kurtas, Tunics, Tops and Everything Else Worn Above the Waist"
    CurationStore(ws.curation_path).record(run_id, "rename", {"node": nested.id, "name": long_name})
    tree[nested.id].name = long_name
    tree.refresh_paths()
    node = tree[nested.children[0]]
    category = tree.existing_parent(node.id)
    expected = [views.proposal_label(tree, i) for i in views.merge_targets(tree, category.id, node.id)]
    assert len(set(expected)) == len(expected) and f"{tree[nested.children[1]].name} · in {long_name}" in expected
    with explorer(ws) as port, sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        _open(page, port)
        _show_proposal(page, tree, node.id)
        options = _open_options(page, "Merge this proposal into", len(expected), container="Merge", tab="Merge")
        expect(options).to_have_text(expected)
        cut = options.evaluate_all(  # an option whose text, or a box inside it, overflows: shown cut with "…"
            "os => os.filter(o => [o, ...o.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1))"
            ".map(o => o.textContent)"
        )
        assert cut == [], "labels cut short"
        page.keyboard.press("Escape")
        browser.close()


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium is installed by .ci/run")
def test_products_a_reject_returns_to_the_category_can_be_found_and_seen_there(workspace):
    """A reject returns a proposal's products to its category, where they sit in no proposal.
    They were on no page of the category (its list showed HDBSCAN's noise only), and "Find a
    product" offered a disabled "Open its proposal" for them: the curator lost sight of them."""
    from playwright.sync_api import expect, sync_playwright

    from discover.curate import lookup

    ws, run_id = workspace
    run = RunData(ws, run_id)
    parent = max(run.tree.parents_with_proposals(), key=lambda n: (n.size, n.id))
    first = run.tree.proposals(parent.id)[0]  # the app opens on it
    rejected = [c for c in run.tree.children(parent.id) if c.kind == "proposed"][1]  # its products go to the category
    CurationStore(ws.curation_path).record(run_id, "reject", {"node": rejected.id})
    members = run.assignments[(run.assignments["leaf_id"] == rejected.id) & ~run.assignments["is_noise"]]
    product = members["product_id"].iloc[0]
    title = run.catalog.set_index("product_id").loc[product, "title"]
    found = lookup.locate(run.catalog, run.assignments, run.tree, product)["product_id"].tolist()
    with explorer(ws) as port, sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        _open(page, port)
        page.get_by_role("heading", name=first.name, exact=True).wait_for(timeout=90_000)
        find = page.get_by_label("Find a product (id or title words)")
        find.fill(product)
        find.press("Enter")
        page.get_by_role("heading", name="Find a product").wait_for(timeout=30_000)
        if found[0] != product:
            _pick(page, "Product", f"{product} · {title}")
        opener = page.get_by_role("button", name=re.compile("^Open its"))
        expect(opener).to_be_enabled(timeout=30_000)
        opener.click()
        page.get_by_role("heading", name=" > ".join(parent.path), exact=True).wait_for(timeout=30_000)
        unplaced = page.get_by_test_id("stExpander")
        unplaced.get_by_text(re.compile("in no proposal|Unassigned")).click()
        search = unplaced.get_by_label("Search titles or ids")
        search.fill(product)
        search.press("Enter")
        closer = unplaced.get_by_role("combobox", name="Look closer at a product of this page", exact=True)
        option = page.get_by_role("option", name=f"{product} · {title}", exact=True)
        for _ in range(3):  # a script run finishing as it opens closes the list again: open it once more
            _settled(page)
            closer.click()
            with contextlib.suppress(AssertionError):
                expect(option).to_have_count(1, timeout=10_000)
                break
        expect(option).to_have_count(1)  # listed with its category's products in no proposal
        browser.close()


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium is installed by .ci/run")
def test_a_split_preview_that_finds_no_split_says_why_on_screen(workspace):
    """A preview of the T-shirt leaf finds its clusters all name one type. The page said "No
    split" and put why inside the status box, which folds away on an error: the curator saw
    no reason."""
    from playwright.sync_api import expect

    ws, run_id = workspace
    run = RunData(ws, run_id)
    (node,) = [n for n in run.tree.proposals() if n.name == "T-Shirt" and not n.children]
    with _on_proposal(ws, run.tree, node.id) as page:
        _settled(page)
        page.get_by_role("tab", name="Split").click()
        page.get_by_role("button", name="Preview split").click()
        page.get_by_text("No split", exact=True).wait_for(timeout=180_000)
        said = f"“{node.name}”: even with strictness 2.0, its clusters all name one type"
        expect(page.get_by_text(said, exact=False)).to_be_visible(timeout=30_000)
