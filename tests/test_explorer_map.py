"""The explorer's map in a real browser: a click opens a product, a lasso moves products in bulk."""

import html
from pathlib import Path

import pandas as pd
import pytest

from discover.curate.apply import apply_decisions
from discover.curate.proposal_map import MIN_PER_GROUP, category_points, proposal_map, selected_products
from discover.curate.store import CurationStore
from discover.outputs.run_data import RunData
from tests.test_explorer import _browser, _open, explorer

CHROMIUM = pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium is installed by .ci/run")

# The pixel of a product's point, from the chart's own axes (the page, not our code, knows where it drew it).
POINT_PIXEL = """(productId) => {
  const plot = document.querySelector('.js-plotly-plot');
  const box = plot.querySelector('.nsewdrag').getBoundingClientRect();
  const layout = plot._fullLayout;
  for (const trace of plot._fullData) {
    const i = trace.customdata.findIndex(row => row[0] === productId);
    if (i >= 0) return [box.left + layout.xaxis.l2p(trace.x[i]), box.top + layout.yaxis.l2p(trace.y[i])];
  }
  return null;
}"""


def test_the_map_colours_proposals_highlights_the_chosen_one_and_escapes_catalog_text(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    parent = max(run.tree.parents_with_proposals(), key=lambda n: (n.size, n.id))
    chosen = run.tree.children(parent.id)[0]
    titles = run.catalog["title"].copy()
    titles.iloc[int((run.assignments["parent_id"] == parent.id).to_numpy().argmax())] = "<b>Bold</b> & co"
    points = category_points(run.tree, parent.id, run.assignments, run.coords, titles)
    figure = proposal_map(points, run.tree, chosen.id)
    by_name = {trace.name: trace for trace in figure.data}
    highlighted = by_name["▶ " + html.escape(chosen.name, quote=False)]  # "Top &amp; Kurta": Plotly shows "&"
    assert len(highlighted.x) == chosen.size  # its whole subtree, nothing else
    others = by_name["other proposals"]
    assert len(set(others.marker.color)) == len(run.tree.children(parent.id)) - 1  # a colour per proposal
    assert sum(len(t.x) for t in figure.data) == int((run.assignments["parent_id"] == parent.id).sum())
    shown = [row[1] for trace in figure.data for row in trace.customdata]
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; co" in shown  # Plotly would render the tag: escaped, shown as written
    assert "<b>" not in " ".join(shown)


def test_selected_products_reads_a_plotly_selection():
    class Event:
        selection = {"points": [{"customdata": ["a&amp;b", "t"]}, {"customdata": ["c", "t"]}, {"x": 1}]}

    assert selected_products(Event()) == ["a&b", "c"]
    assert selected_products(None) == []


def test_a_large_category_is_drawn_as_a_sample_that_keeps_every_proposal_and_its_exemplars(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    parent = max(run.tree.parents_with_proposals(), key=lambda n: (n.size, n.id))
    points = category_points(run.tree, parent.id, run.assignments, run.coords, run.catalog["title"])
    limit = len(points) // 4
    figure = proposal_map(points, run.tree, run.tree.children(parent.id)[0].id, limit=limit)
    drawn = pd.DataFrame([row for trace in figure.data for row in trace.customdata], columns=["id", "t", "p"])
    proposals = run.tree.proposals(parent.id)
    extra = len(proposals) * 2 * MIN_PER_GROUP + sum(len(p.exemplars) for p in proposals)
    assert limit * 0.9 <= len(drawn) <= limit + extra and len(drawn) < len(points)
    assert {e for p in proposals if not p.children for e in p.exemplars} <= set(drawn["id"])
    leaves = points.loc[points["product_id"].isin(drawn["id"]), "leaf_id"]
    assert set(leaves) == set(points["leaf_id"])  # no proposal vanishes from the map
    again = proposal_map(points, run.tree, run.tree.children(parent.id)[0].id, limit=limit)
    assert [list(t.x) for t in again.data] == [list(t.x) for t in figure.data]  # the same sample on every rerun


def test_a_box_or_lasso_selects_every_product_inside_it_drawn_or_not():
    points = pd.DataFrame({"product_id": ["a", "b", "c", "d"], "x": [0.5, 1.5, 0.2, 3.0], "y": [0.5, 0.5, 1.8, 3.0]})

    class Box:  # Plotly reported only the drawn point "a"
        selection = {"points": [{"customdata": ["a", "t"]}], "box": [{"x": [2, 0], "y": [0, 1]}], "lasso": []}

    class Lasso:  # a triangle around a and c, not b or d
        selection = {"points": [], "box": [], "lasso": [{"x": [0, 1, 0], "y": [0, 0, 3]}]}

    assert selected_products(Box(), points) == ["a", "b"]
    assert selected_products(Lasso(), points) == ["a", "c"]
    assert selected_products(Box()) == ["a"]  # without the category's points: what was drawn


@CHROMIUM
def test_click_a_point_to_open_its_product_and_lasso_products_to_move_them(workspace):
    from playwright.sync_api import sync_playwright

    ws, run_id = workspace
    run = RunData(ws, run_id)
    parent = max(run.tree.parents_with_proposals(), key=lambda n: (n.size, n.id))
    first = run.tree.children(parent.id)[0]  # the app opens on it
    product = first.exemplars[0]
    with explorer(ws) as port, sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        _open(page, port)
        page.get_by_role("heading", name=first.name, exact=True).wait_for(timeout=90_000)
        page.locator(".js-plotly-plot .nsewdrag").first.wait_for(timeout=30_000)
        x, y = page.evaluate(POINT_PIXEL, product)
        page.mouse.click(x, y)
        page.get_by_role("heading", name="Picked on the map", exact=True).wait_for(timeout=30_000)
        page.get_by_text(f"{product} · ").first.wait_for(timeout=30_000)  # its closer look: id and title

        page.locator('.js-plotly-plot .modebar-btn[data-title="Lasso Select"]').click()
        drag = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
        left, top, width, height = drag["x"], drag["y"], drag["width"], drag["height"]
        corners = [(0.05, 0.05), (0.6, 0.05), (0.6, 0.95), (0.05, 0.95), (0.05, 0.06)]
        page.mouse.move(left + width * corners[0][0], top + height * corners[0][1])
        page.mouse.down()
        for fx, fy in corners[1:]:
            page.mouse.move(left + width * fx, top + height * fy, steps=8)
        page.mouse.up()
        heading = page.get_by_role("heading", name="products selected on the map")
        heading.wait_for(timeout=30_000)
        count = int(heading.inner_text().split()[0].replace(",", ""))
        page.get_by_role("button", name=f"Move {count:,} products").click()
        page.get_by_text(f"Moved {count:,} products to “{parent.name}”").wait_for(timeout=30_000)
        browser.close()
    (move,) = CurationStore(ws.curation_path).decisions(run_id)
    assert move.action == "move" and move.payload["target"] == parent.id
    moved = set(move.payload["products"])
    assert len(moved) == count > 1
    in_category = set(run.assignments.loc[run.assignments["parent_id"] == parent.id, "product_id"])
    assert moved <= in_category  # the lasso picks from the category on screen
    _, curated, _ = apply_decisions(run.tree, run.assignments, [move])
    assert set(curated.loc[curated["product_id"].isin(moved), "leaf_id"]) == {parent.id}
