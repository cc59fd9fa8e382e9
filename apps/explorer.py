"""discover explorer: browse a run's proposals, curate them, export the curated tree.

Start with `discover explore --workspace DIR`. Layout only: data and logic live in
`discover/curate/` (decisions, applying them, split preview, what each view shows) and
`discover/outputs/` (reading the run, export, report figures).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st

from discover.classify import MISLABELS_CSV, placement
from discover.curate import lookup, mislabel_candidates, proposal_map, views
from discover.curate.apply import apply_decisions, taxonomy_diff
from discover.curate.background import DaemonExecutor
from discover.curate.split_preview import SplitPreview, preview_split, warm_up
from discover.curate.store import CurationStore
from discover.errors import DiscoverError
from discover.evaluate.scoring import evaluate
from discover.outputs.export import export_run
from discover.outputs.report import per_parent_frame
from discover.outputs.run_data import RunData
from discover.tree import Node, existing_id
from discover.workspace import Workspace

PAGE_SIZE = 25
st.set_page_config(page_title="discover explorer", layout="wide")


@st.cache_resource(show_spinner=False)
def compiler_warm_up(_after: Future, largest_node: int) -> Future:
    """Once per server: compile the clustering code in the background while the curator reads,
    once the first run's features are in (the two at once on 2 cores slowed the first pages);
    what a node of `largest_node` products needs, no more."""
    return background().submit(lambda: (wait([_after]), warm_up(largest_node)))


def workspace_root() -> str:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", default=os.environ.get("DISCOVER_WORKSPACE", "workspace"))
    return parser.parse_known_args()[0].workspace


@st.cache_resource(show_spinner="Loading run…")
def load_run(root: str, run_id: str, stamp: float) -> RunData:
    run = RunData(Workspace(root), run_id)
    for part in ("tree", "assignments", "coords", "catalog", "metrics", "placement_probabilities"):
        getattr(run, part)  # load every file once, here, not on first interaction
    return run


@st.cache_resource(show_spinner=False)
def background() -> DaemonExecutor:
    """The server's threads for work the curator should not wait for: features, then compiling
    (daemon threads: stopping the server never waits for them)."""
    return DaemonExecutor(max_workers=2)


@st.cache_resource(show_spinner=False, max_entries=4)
def features_loader(root: str, run_id: str, stamp: float) -> Future:
    """The run's fused features and its type view, loading from the moment the run opens: the
    first "why is this product here?" and split preview find them ready, not seconds away."""
    return background().submit(load_run(root, run_id, stamp).features_and_type_view)


def run_features(root: str, run_id: str, stamp: float):
    """The vectors the run clustered."""
    return features_loader(root, run_id, stamp).result()[0]  # an error loading them is raised here


@st.cache_resource(show_spinner="Applying decisions…", max_entries=16)
def curated_run(root: str, run_id: str, stamp: float, last_decision: int, _decisions: list):
    """The curated tree and assignments, recomputed only when the last active decision changes.

    Decisions form a stack (undo withdraws the newest), so the id of the last active one
    identifies the whole list.
    """
    run = load_run(root, run_id, stamp)
    tree, assignments, skipped = apply_decisions(run.tree, run.assignments, _decisions)
    run.place(tree, assignments)  # verdicts of the products each proposal holds after the decisions
    return tree, assignments, skipped


def thumbnail_uri(path: str) -> str | None:
    png = views.thumbnail_png(path)
    return "data:image/png;base64," + base64.b64encode(png).decode() if png else None


root = workspace_root()
workspace = Workspace(root)
runs = workspace.run_ids()
st.sidebar.title("discover")
if not runs:
    st.error(
        views.plain(f"No finished run in {workspace.root}. Start one with: discover run CONFIG --workspace {root}")
    )
    st.stop()
run_id = st.sidebar.selectbox("Run", runs, key="run")
stamp = (workspace.run_dir(run_id) / "tree.json").stat().st_mtime
run = load_run(root, run_id, stamp)
largest_parent = max((n.size for n in run.tree.parents_with_proposals()), default=0)  # a merge stays within it
compiler_warm_up(features_loader(root, run_id, stamp), largest_parent)  # both start while the curator reads
store = CurationStore(workspace.curation_path)
decisions = store.decisions(run_id)
tree, assignments, skipped = curated_run(root, run_id, stamp, decisions[-1].id if decisions else 0, decisions)
catalog = run.catalog
truth = catalog["truth"].astype(str) if "truth" in catalog.columns else None
attributes = run.config.catalog.columns.attributes
st.sidebar.text_input(
    "Find a product (id or title words)",
    key="find-query",
    on_change=lambda: st.session_state.update(view="Find a product"),  # from any view, in one rerun
)
view = st.sidebar.radio(
    "View", ["Proposals", "Find a product", "Compare", "Mislabels", "Metrics", "Export"], key="view"
)
st.sidebar.caption(
    f"{len(assignments):,} products · {len(tree.proposals()):,} proposals · "
    + (f"{len(decisions)} decision" + ("" if len(decisions) == 1 else "s"))
)
for message in skipped:
    st.sidebar.warning(views.plain(message))


def act(action: str, payload: dict, message: str, show: str | None = None) -> None:
    """Record a decision (a button callback, so it runs before the page is drawn again),
    say what happened, and show `show` (e.g. the proposal merged into) next."""
    store.record(run_id, action, payload, st.session_state.get("comment", ""))
    st.session_state["flash"] = message
    if show:
        st.session_state["selected_proposal"] = show


def rename(node_id: str) -> None:
    """Rename unless the name is already the current one. The current name comes from the store:
    a second submit (Enter, then the button) can arrive before the page shows the first."""
    name = st.session_state.get(f"rename-name:{node_id}", "").strip()
    renames = [d for d in store.decisions(run_id) if d.action == "rename" and d.payload["node"] == node_id]
    current = renames[-1].payload["name"] if renames else tree[node_id].name
    if name and name != current:
        act("rename", {"node": node_id, "name": name}, f"Renamed “{current}” to “{name}”")


def undo() -> None:
    undone = store.undo(run_id)
    st.session_state["flash"] = f"Undid: {views.history(decisions, run.tree)[-1]}" if undone else "Nothing to undo"


@st.cache_resource(show_spinner=False, max_entries=32)
def category_table(root: str, run_id: str, stamp: float, last_decision: int, parent_id: str, _tree, _assignments):
    """The proposal table of a category, computed once per curated state (a rerun redraws it)."""
    return views.proposal_table(_tree, _assignments, parent_id, truth, catalog["title"], run.known_words)


@st.cache_resource(show_spinner=False, max_entries=32)
def category_map(root: str, run_id: str, stamp: float, last_decision: int, parent_id: str, chosen, _tree, _assignments):
    """The category's map with `chosen` highlighted, and all its points (a lasso selects from
    them, drawn or not), built once per curated state and choice."""
    points = proposal_map.category_points(_tree, parent_id, _assignments, run.coords, catalog["title"])
    return proposal_map.proposal_map(points, _tree, chosen), points


def photo_table(frame: pd.DataFrame, columns: list[str], height: int | str = "auto") -> None:
    """Products with photos a curator can see (rows 72 px high) and their text as plain cells."""
    shown = frame.assign(photo=[thumbnail_uri(p) for p in frame["image_path"]])
    photo = {"photo": st.column_config.ImageColumn("photo", width="small")}
    st.dataframe(shown[["photo", *columns]], hide_index=True, column_config=photo, row_height=72, height=height)


def page_number(rows: int, size: int, key: str) -> int:
    """The page picker of a list of `rows`. When a move takes the last page's products away,
    it shows the page before it: Streamlit drops a value beyond the new bounds and showed
    page 1, throwing a curator who works from the end back to the start."""
    pages = views.page_count(rows, size)
    st.session_state[key] = min(st.session_state.get(key, 1), pages)
    number = int(st.number_input("Page", min_value=1, max_value=pages, key=key))
    st.caption(f"Page {number} of {pages}")
    return number


def products_table(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """One page of `frame`, searchable; `key` names the proposal, so no state crosses proposals."""
    query = st.text_input("Search titles or ids", key=f"search-{key}")
    found = views.search_products(frame, query)
    number = page_number(len(found), PAGE_SIZE, f"page-{key}:{query.strip()}")  # a new search starts on page 1
    shown = views.page(found, number, PAGE_SIZE).copy()
    columns = ["product_id", "title", "probability"] + [c for c in ("noise", "most_likely", "truth") if c in shown]
    photo_table(shown, columns)
    closer = st.selectbox(
        "Look closer at a product of this page",
        [None, *shown["product_id"].tolist()],
        format_func=lambda pid: "–" if pid is None else f"{pid} · {shown.set_index('product_id').loc[pid, 'title']}",
        key=f"closer-{key}",
    )
    if closer is not None:
        product_panel(closer)
    return shown


def product_panel(product_id: str) -> None:
    """A product's photo at full size, where it sits, and why: its nearest neighbours and exemplars."""
    item = catalog.set_index("product_id").loc[product_id]
    where = assignments.set_index("product_id").loc[product_id]
    photo, facts = st.columns([1, 2])
    png = views.thumbnail_png(item["image_path"], 320)
    if png:
        photo.image(png)
    facts.text(f"{product_id} · {item['title']}")  # st.text shows text as written: never Markdown
    facts.text("Sits in: " + " > ".join(tree[where["leaf_id"]].path))
    noise = "left unassigned by HDBSCAN; this is its most likely proposal" if where["is_noise"] else "clustered"
    facts.caption(f"Membership probability {where['probability']:.2f} ({noise}).")
    why = lookup.why_here(run_features(root, run_id, stamp), catalog, assignments, tree, product_id)
    agreeing = int(why.neighbours["same"].sum())
    facts.metric(
        "Nearest products in the same proposal",
        f"{agreeing} of {len(why.neighbours)}",
        help="Its most similar products (cosine on the features the run clustered) inside its category: "
        "when few of them sit in its proposal, it may belong elsewhere.",
    )
    st.caption("Its nearest products in this category, and where they sit")
    photo_table(why.neighbours, ["product_id", "title", "place", "similarity", "same"])
    st.caption("Its proposal's exemplars, by similarity to it")
    photo_table(why.exemplars, ["product_id", "title", "similarity"])


def proposal_card(node_id: str, members: pd.DataFrame) -> None:
    node = tree[node_id]
    sibling = views.nearest_sibling(tree, run.coords, assignments, node_id)
    purity = views.node_purity(assignments, truth, node_id)
    titles_agree = None  # purity's stand-in where there is no truth column
    if truth is None:
        titles_agree = views.title_agreement(assignments, catalog["title"], run.known_words, node_id)
    st.subheader(views.plain(node.name))
    for flag in node.flags:  # e.g. brand-dominated: named by type, but its products share one brand
        st.warning(views.plain(views.flag_text(flag)), icon="⚠️")
    values = {
        "Products": f"{node.size:,}",
        "Stability": f"{node.stability:.3f}" if node.stability is not None else "–",
        **(
            {"Purity": f"{purity:.2f}" if purity is not None else "–"}
            if truth is not None
            else {"Titles agree": f"{titles_agree:.2f}" if titles_agree is not None else "–"}
        ),
        "Nearest sibling": tree[sibling].name if sibling else "–",  # a metric value is plain text
    }
    for col, (label, value) in zip(st.columns(4), values.items(), strict=True):
        col.metric(label, value, help=views.CARD_HELP[label])
    trivial = views.trivial_purity(assignments, truth, node_id)
    if trivial:
        st.info(views.plain(trivial))
    if node.placement:  # new subtype or mislabelled? (discover classify place-proposals)
        own = " > ".join(tree.existing_parent(node_id).path)
        mislabelled = node.placement["verdict"] == placement.MISLABELLED
        verdict = placement.describe(node.placement, own)
        if run.placement_probabilities is None:  # placed before the scores were kept: it cannot be said again
            found = run.tree.nodes.get(node_id)
            if found is None or found.size != node.size:  # a merge, split or move changed what it holds
                verdict += " " + placement.STALE
        (st.warning if mislabelled else st.info)(views.plain(verdict))
        if mislabelled:
            move_placed(node)
    st.caption("Keywords: " + views.plain(", ".join(node.keywords)))
    st.caption("Shared by its products: " + views.plain(" · ".join(views.concentration(members, attributes))))
    if node.split.startswith("not split"):
        st.caption(views.plain(node.split.replace("not split", "Not split further", 1)))
    by_id = catalog.set_index("product_id")
    exemplars = [e for e in node.exemplars if e in by_id.index][:12]
    grid = st.columns(6)
    for i, product_id in enumerate(exemplars):
        png = views.thumbnail_png(by_id.loc[product_id, "image_path"], 128)
        with grid[i % 6]:
            if png:
                st.image(png, width="stretch")
            st.caption(views.plain(by_id.loc[product_id, "title"]))


def confirmed(
    label: str,
    action: str,
    node_id: str,
    question: str,
    on_confirm: Callable[..., None],
    args: tuple,
    disabled: bool = False,
    choices: Callable[[], None] = lambda: None,
) -> None:
    """A destructive action behind a question: the button opens it in the browser (no rerun),
    `choices` (e.g. the merge target) are picked inside it (a form: no rerun either), "Confirm"
    acts (one rerun), a click anywhere else cancels. Keyed by the proposal, so the question
    never stays open over another proposal after it acted."""
    with (
        st.popover(label, key=f"{action}-popover:{node_id}", disabled=disabled, width="stretch"),
        st.form(key=f"{action}-form:{node_id}", border=False),
    ):
        st.markdown(views.plain(question))  # catalog text, escaped: shown as written
        choices()
        st.form_submit_button(
            f"Confirm {action}", key=f"confirm-{action}:{node_id}", type="primary", on_click=on_confirm, args=args
        )
        st.caption("Click anywhere outside to cancel.")


def merge(node_id: str) -> None:
    """Merge into the target picked in the question (read at submit, so picking costs no rerun)."""
    into = st.session_state.get(f"merge-into:{node_id}")
    if into in tree:
        name, target = views.proposal_label(tree, node_id), views.proposal_label(tree, into)
        act("merge", {"into": into, "node": node_id}, f"Merged “{name}” into “{target}”", show=into)


def curation_panel(parent_id: str, node_id: str, shown: pd.DataFrame) -> None:
    """Every widget is keyed by the proposal it acts on, so nothing carries over to another one."""
    node = tree[node_id]
    st.text_input("Comment (optional, stored with the decision)", key="comment")
    # keyed: the tabs keep one identity in the browser, so a script run cut short by the next
    # change (a slider dragged) never draws them anew on their first tab
    rename_tab, merge_tab, split_tab, reject_tab, move_tab = st.tabs(
        ["Rename", "Merge", "Split", "Reject", "Move products"], key=f"card-tabs:{node_id}"
    )
    with rename_tab:
        st.text_input("New name", value=node.name, key=f"rename-name:{node_id}")
        st.button("Rename", key=f"rename-button:{node_id}", on_click=rename, args=(node_id,))
    with merge_tab:
        others = views.merge_targets(tree, parent_id, node_id)
        confirmed(
            "Merge",
            "merge",
            node_id,
            f"Merge “{node.name}” ({node.size:,} products) into:",
            merge,
            (node_id,),
            disabled=not others,
            choices=lambda: st.selectbox(
                "Merge this proposal into",
                others,
                format_func=lambda i: views.proposal_label(tree, i),
                key=f"merge-into:{node_id}",
            ),
        )
        if not others:
            st.caption("No other proposal in this category to merge into.")
    with split_tab:
        split_panel(node_id)
    with reject_tab:
        st.write(f"Rejecting returns its {node.size:,} products to **{views.plain(tree[node.parent].name)}**.")
        home = tree[node.parent].name
        confirmed(
            "Reject proposal",
            "reject",
            node_id,
            f"Reject “{node.name}”? Its {node.size:,} products return to “{home}”.",
            act,
            ("reject", {"node": node_id}, f"Rejected “{node.name}”; its products returned to “{home}”"),
        )
    with move_tab:
        chosen = st.multiselect(
            "Products (from the page shown above)", shown["product_id"].tolist(), key=f"move-products:{node_id}"
        )
        targets = views.move_targets(tree, parent_id, node_id)
        target = st.selectbox(
            "Move to", targets, format_func=lambda i: " > ".join(tree[i].path), key=f"move-target:{node_id}"
        )
        st.button(
            f"Move {len(chosen)} products" if chosen else "Move",  # what the click will do, as the server has it
            key=f"move-button:{node_id}",
            disabled=not chosen,
            on_click=act,
            args=(
                "move",
                {"products": chosen, "target": target},
                f"Moved {len(chosen)} products to “{tree[target].name}”",
            ),
        )


def split_panel(node_id: str) -> None:
    strictness = st.slider(
        "Strictness (smaller clusters allowed)", 1.0, 8.0, 2.0, 0.5, key=f"split-strictness:{node_id}"
    )
    by_type = st.checkbox(
        "Merge the clusters that name one type, as discovery does",
        value=True,
        key=f"split-by-type:{node_id}",
        help="The photos part a category by colour first: without this a split of Belts proposes "
        "“Black Belt”, “Brown Belt”… Untick it to see the clusters as found.",
    )
    if st.button("Preview split", key=f"split-preview:{node_id}"):
        started, refused = time.perf_counter(), None
        with st.status("Previewing the split…", expanded=True) as status:
            try:
                status.write("Loading the run's features")
                features, type_view = features_loader(root, run_id, stamp).result()  # and the words block
                preview = preview_split(
                    run, node_id, strictness, features, assignments, status.write, type_view, by_type
                )
                st.session_state["split"] = preview
                status.update(label=f"Split preview ready in {time.perf_counter() - started:.1f} s", state="complete")
            except DiscoverError as error:
                status.update(label="No split", state="error")
                refused = error
        if refused is not None:  # outside the status, which folds away: why, where the curator looks
            st.warning(views.plain(str(refused).replace(node_id, f"“{tree[node_id].name}”", 1)))  # its name, not its id
    preview = st.session_state.get("split")
    if preview is not None and preview.node == node_id:
        flags = [views.flag_kinds(child) for child in preview.flags]  # still mixed? a stricter split
        shown = {"new proposal": preview.names, "products": preview.sizes, "flags": flags}
        st.dataframe(pd.DataFrame(shown), hide_index=True)
        message = f"Split “{tree[node_id].name}” into {len(preview.names)}: " + ", ".join(preview.names)
        st.button("Accept split", key=f"split-accept:{node_id}", on_click=accept_split, args=(preview, message))


def accept_split(preview: SplitPreview, message: str) -> None:
    """Record the split and put its preview away: once recorded, it is not offered again."""
    st.session_state.pop("split", None)
    act("split", preview.payload(), message)


def sidebar_box(label: str, choices: list[str], labels: list[str], state: str) -> str | None:
    """A sidebar selectbox keyed by the labels it shows, so it is drawn anew when they change
    (a rename, a move's new size, a split): the browser keeps a box's old text otherwise. The
    selection itself lives in ``st.session_state[state]`` and survives that."""
    current = st.session_state.get(state)
    version = hashlib.sha1("\n".join(choices + labels).encode()).hexdigest()[:10]
    chosen = st.sidebar.selectbox(
        label,
        choices,
        index=choices.index(current) if current in choices else 0,
        key=f"{state}:{version}",
        format_func=dict(zip(choices, labels, strict=True)).get,
    )
    st.session_state[state] = chosen
    return chosen


def category_picker(parents: list[str], whole: list[str]) -> str:
    """The sidebar's category box: the categories with proposals, then those with none (with
    the flags discovery gave them: "mixed titles" says where a split helps); the selection
    lives in ``parent``."""
    labels = [views.category_label(tree[i], whole=i in whole) for i in parents + whole]
    return sidebar_box("Category", parents + whole, labels, "parent")


def proposal_picker(choices: list[str]) -> str | None:
    """The sidebar's proposal box; the selection lives in ``selected_proposal``."""
    return sidebar_box("Proposal", choices, [views.proposal_label(tree, i) for i in choices], "selected_proposal")


def map_selection(parent_id: str, picked: list[str]) -> None:
    """What the curator picked on the map: one product looked at closely, or several to move at once."""
    if len(picked) == 1:
        st.markdown("#### Picked on the map")
        product_panel(picked[0])
        return
    st.markdown(f"#### {len(picked):,} products selected on the map")
    chosen = lookup.locate_ids(catalog, assignments, tree, picked)
    photo_table(chosen.head(200), ["product_id", "title", "place", "noise"], height=320)
    targets = views.move_targets(tree, parent_id, "")
    target = st.selectbox(
        "Move the selected products to",
        targets,
        format_func=lambda i: " > ".join(tree[i].path),
        key=f"map-target:{parent_id}",
    )
    message = f"Moved {len(picked):,} products to “{tree[target].name}”"
    st.button(
        f"Move {len(picked):,} products",
        key=f"map-move:{parent_id}",
        on_click=act,
        args=("move", {"products": picked, "target": target}, message),
    )


def whole_category(parent_id: str) -> None:
    """A category holding no proposal: why, what its titles name, its products, and a split
    of the category itself (a curated split of an existing category, like any other)."""
    node = tree[parent_id]
    st.header(views.plain(" > ".join(node.path)))
    if "flash" in st.session_state:
        st.success(views.plain(st.session_state.pop("flash")))
    st.info(views.plain(views.whole_reason(node)))
    members = views.member_products(catalog, assignments, parent_id)
    smallest = run.config.discovery.hdbscan.min_cluster_size_floor  # the rule discovery flagged it by
    for flag in views.title_flags(members, run.known_words, smallest):
        st.warning(views.plain(views.flag_text(flag, "A split can part them.")), icon="⚠️")
    st.markdown("#### Products")
    products_table(members, f"members:{parent_id}")
    st.markdown("#### Split this category")
    split_panel(parent_id)
    st.button("Undo last decision", key="undo", disabled=not decisions, on_click=undo)


def proposals_view() -> None:
    parents, whole = views.parent_options(tree), views.whole_categories(tree, assignments)
    if not parents and not whole:
        st.info("This run has no proposals.")
        return

    parent_id = category_picker(parents, whole)
    if parent_id in whole:
        whole_category(parent_id)
        return
    last = decisions[-1].id if decisions else 0
    moved = max((d.id for d in decisions if d.action != "rename"), default=0)  # the last that moved products
    table = category_table(root, run_id, stamp, last, parent_id, tree, assignments)
    st.header(views.plain(" > ".join(tree[parent_id].path)))
    left, right = st.columns([6, 5])
    with left:
        styled = table.drop(columns=["id"]).style
        if "quality" in table.columns:  # the catalog has a truth column
            styled = styled.map(views.quality_style, subset=["quality"])
        if "verdict" in table.columns:  # the run is placed
            styled = styled.map(views.verdict_style, subset=["verdict"])
        st.dataframe(
            styled,
            column_config={
                "purity": st.column_config.NumberColumn(format="%.2f"),  # as the card shows it
                "titles agree": st.column_config.NumberColumn(format="%.2f"),
                "verdict": st.column_config.TextColumn(width="medium"),  # "mislabelled: 82% Watches"
            },
            hide_index=True,
            height=460,
            width="stretch",
        )
    chosen = proposal_picker(table["id"].tolist())
    figure, points = category_map(root, run_id, stamp, last, parent_id, chosen, tree, assignments)
    with right:
        event = st.plotly_chart(
            figure,
            width="stretch",
            on_select="rerun",
            selection_mode=("points", "box", "lasso"),
            key=f"map:{parent_id}:{moved}",  # products moved: a fresh selection; a rename keeps the map
        )
        drawn = sum(len(trace.x) for trace in figure.data)
        sample = (
            ""
            if drawn == len(points)
            else f"{drawn:,} of its {len(points):,} products drawn (each proposal's share and its exemplars). "
        )
        st.caption(
            f"{sample}Click a product to look at it. To move several, pick the lasso or box in the map's toolbar: "
            "they select every product inside them."
        )
    if not chosen:
        return
    flash = st.empty()  # always here, so the widgets below keep their place (and the open tab) on every rerun
    if "flash" in st.session_state:
        flash.success(views.plain(st.session_state.pop("flash")))
    picked = proposal_map.selected_products(event, points)
    if picked:
        map_selection(parent_id, picked)
    members = views.member_products(catalog, assignments, chosen)
    proposal_card(chosen, members)
    st.markdown("#### Products")
    shown = products_table(members, f"members:{chosen}")
    st.markdown("#### Curate")
    curation_panel(parent_id, chosen, shown)
    st.button("Undo last decision", key="undo", disabled=not decisions, on_click=undo)
    unplaced = views.unplaced_products(catalog, assignments, parent_id)
    with st.expander(f"Products of this category in no proposal ({len(unplaced):,})"):
        noise = int(unplaced["noise"].sum())
        st.caption(
            f"{noise:,} HDBSCAN left unassigned (each has a most likely proposal); "
            f"{len(unplaced) - noise:,} sit in the category itself (a reject returns a proposal's products there)."
        )
        products_table(unplaced, f"unplaced:{parent_id}")


@st.cache_resource(show_spinner="Scoring the curated tree…", max_entries=16)
def curated_metrics(root: str, run_id: str, stamp: float, last_decision: int, _assignments: pd.DataFrame):
    return evaluate(_assignments, load_run(root, run_id, stamp).catalog, attributes)


def metrics_view() -> None:
    if not run.metrics:
        st.info("This run has no truth column, so there are no metrics.")
        return
    last = decisions[-1].id if decisions else 0
    metrics = curated_metrics(root, run_id, stamp, last, assignments) if decisions else run.metrics
    st.header("Against the hidden truth" + (f", after {len(decisions)} curation decisions" if decisions else ""))
    weighted, produced = metrics["weighted"], run.metrics["weighted"]
    cols = st.columns(5)
    for col, key in zip(cols, ["purity", "coverage", "nmi", "ari", "hungarian_accuracy"], strict=True):
        delta = f"{weighted[key] - produced[key]:+.3f} by curation" if decisions else None
        col.metric(key.replace("_", " "), f"{weighted[key]:.3f}", delta=delta)
    st.caption(views.METRIC_HELP)
    st.subheader("The same proposals scored against each attribute")
    st.caption(
        "If proposals are as pure against an attribute (gender, colour) as against the product type, "
        "they follow that attribute rather than the type."
    )
    st.dataframe(views.attribute_table(metrics), width="stretch")
    frame = per_parent_frame(metrics)
    st.subheader("Per category")
    st.dataframe(frame.drop(columns=["qualifies"]), width="stretch")
    melted = frame[frame["qualifies"].astype(bool)][["purity", "coverage", "nmi", "ari", "hungarian_accuracy"]]
    long = melted.reset_index(names="parent").melt(id_vars="parent", var_name="metric")
    st.plotly_chart(px.bar(long, x="parent", y="value", color="metric", barmode="group", height=420), width="stretch")


def export_view() -> None:
    st.header("Export the curated tree")
    if decisions:
        latest = "; ".join(views.history(decisions, run.tree)[-10:])
        st.write(
            f"{len(decisions)} decisions applied"
            + (", the last ten: " if len(decisions) > 10 else ": ")
            + views.plain(latest)
        )
    else:
        st.write("No decisions yet: the export holds the proposals as discovered.")
    diff = taxonomy_diff(run.tree, tree, decisions)
    st.caption("The export holds: " + views.export_summary(diff))
    st.dataframe(views.export_table(diff), hide_index=True)
    with st.expander("The decisions as the taxonomy diff records them"):
        st.json({k: v for k, v in diff.items() if k != "new"})
    if st.button("Export curated tree", key="export"):
        paths = export_run(workspace, run_id, fmt="json", curated=True, also=("csv",), run=run)
        st.session_state["exported"] = [str(p) for p in paths]
    exported = [Path(p) for p in st.session_state.get("exported", []) if Path(p).exists()]
    if exported:  # outside the button: downloading reruns the page, and the buttons must stay
        st.success("Exported: " + views.plain(", ".join(str(p) for p in exported)))
        for path in exported:
            st.download_button(f"Download {path.name}", path.read_bytes(), file_name=path.name, key=f"dl-{path.name}")


def open_proposal(parent_id: str, node_id: str) -> None:
    st.session_state.update(view="Proposals", parent=parent_id, selected_proposal=node_id)


def open_category(parent_id: str) -> None:
    st.session_state.update(view="Proposals", parent=parent_id)


def find_view() -> None:
    """Search the whole catalog by id or title words: where each product sits now, and why."""
    st.header("Find a product")
    query = st.session_state.get("find-query", "")
    if not query.strip():
        st.caption("Type a product id or words of its title in the sidebar's Find box, then Enter.")
        return
    found = lookup.locate(catalog, assignments, tree, query)
    st.caption(views.plain(f"Results for “{query.strip()}”"))
    st.caption(f"{len(found):,} products match" + (" (the first 200 shown)" if len(found) == 200 else ""))
    if found.empty:
        return
    photo_table(found, ["product_id", "title", "place", "noise", "probability"], height=320)
    labels = dict(zip(found["product_id"], found["product_id"] + " · " + found["title"], strict=True))
    chosen = st.selectbox("Product", found["product_id"].tolist(), format_func=labels.get, key=f"found:{query}")
    where = assignments.set_index("product_id").loc[chosen]
    parent_id, leaf_id = where["parent_id"], where["leaf_id"]
    if leaf_id == parent_id:  # in no proposal: its category's page lists it (or is all of it)
        st.button("Open its category", key=f"open:{chosen}", on_click=open_category, args=(parent_id,))
    else:
        st.button("Open its proposal", key=f"open:{chosen}", on_click=open_proposal, args=(parent_id, leaf_id))
    product_panel(chosen)


def compact_card(node_id: str) -> None:
    node, members = tree[node_id], views.member_products(catalog, assignments, node_id)
    purity = views.node_purity(assignments, truth, node_id)
    st.subheader(views.plain(" > ".join(node.path[1:])))
    for flag in node.flags:  # as the proposal's own card says them, less the Split tab it has not here
        st.warning(views.plain(views.flag_text(flag, "A split can part them.")), icon="⚠️")
    stability = f"{node.stability:.3f}" if node.stability is not None else "–"
    facts = f"{node.size:,} products · stability {stability}"
    if purity is not None:
        facts += f" · purity {purity:.2f}"
    elif truth is None:  # purity's stand-in, as on the proposal's card
        agree = views.title_agreement(assignments, catalog["title"], run.known_words, node_id)
        facts += f" · titles agree {agree:.2f}" if agree is not None else ""
    st.text(facts + (f" · {placement.short(node.placement)}" if node.placement else ""))  # new subtype or mislabelled?
    st.caption("Keywords: " + views.plain(", ".join(node.keywords)))
    st.caption("Shared by its products: " + views.plain(" · ".join(views.concentration(members, attributes))))
    by_id = catalog.set_index("product_id")
    exemplars = [e for e in node.exemplars if e in by_id.index][:6]
    images = [views.thumbnail_png(by_id.loc[e, "image_path"], 160) for e in exemplars]
    st.image([i for i in images if i], width=120)


def compare_view() -> None:
    """Two proposals side by side, from any categories: before a merge or a move."""
    st.header("Two proposals side by side")
    choices = [n.id for n in tree.proposals()]
    if len(choices) < 2:
        st.info("This run has fewer than two proposals.")
        return
    label = {n: " > ".join(tree[n].path[1:]) for n in choices}.get
    for column, key, default in zip(st.columns(2), ("compare-a", "compare-b"), (0, 1), strict=True):
        with column:
            node_id = st.selectbox("Proposal", choices, index=default, format_func=label, key=key)
            compact_card(node_id)


@st.cache_data(show_spinner=False, max_entries=4)
def finder_output(path: str, stamp: float) -> pd.DataFrame:
    return mislabel_candidates.load_mislabels(Path(path))


def misplaced_proposals() -> None:
    """The proposals the classifier places in another category (``discover classify
    place-proposals``), judged by the products they hold now; one click opens each."""
    proposals = tree.proposals()
    if not any(n.placement for n in proposals):
        return
    flagged = [n for n in proposals if n.placement and n.placement["verdict"] == placement.MISLABELLED]
    st.subheader(f"Proposals probably mislabelled into their category ({len(flagged)})")
    for node in flagged:
        parent = tree.existing_parent(node.id)
        text, action = st.columns([6, 2])
        text.text(f"{' > '.join(node.path)} · {node.size:,} products")  # plain text: names are catalog text
        text.caption(views.plain(placement.describe(node.placement, " > ".join(parent.path))))
        opens = {"on_click": open_proposal, "args": (parent.id, node.id)}
        action.button("Open its proposal", key=f"open-misplaced:{node.id}", **opens)
        with action:
            move_placed(node)
    st.subheader("Products")


def move_placed(node: Node) -> None:
    """Move the products of a probably mislabelled proposal that the classifier places in
    the other category there, and (unless the curator unticks it) reject the proposal, its
    other products returning to its category: one decision (undo takes it back), behind a
    question."""
    if run.placement_probabilities is None:  # placed before the scores were kept: which products is unknown
        return
    category = node.placement["category"]
    target = existing_id(category.split(" > "))
    confidence = run.tree.meta["placement"]["confidence"]
    products = placement.placed_in(assignments, run.placement_probabilities, node.id, category, confidence)
    if target not in tree or not products:
        return
    rest, home = node.size - len(products), tree[node.parent].name
    question = f"Move the {len(products):,} products of “{node.name}” that the classifier places in {category} there?"
    label = f"Move {len(products):,} to {tree[target].name}"

    def choices() -> None:
        if rest > 0:
            also = f"Also reject “{node.name}”: its other {rest:,} products return to “{home}”"
            st.checkbox(views.plain(also), value=True, key=f"move-reject:{node.id}")

    confirmed(label, "move", node.id, question, move_and_reject, (node.id, products, target, category), choices=choices)


def move_and_reject(node_id: str, products: list[str], target: str, category: str) -> None:
    """The move of :func:`move_placed`, rejecting the proposal too where its box is ticked (read
    at submit) or where no product stays in it."""
    node = tree[node_id]
    rejects = st.session_state.get(f"move-reject:{node_id}", True) or len(products) >= node.size
    moved = f"Moved {len(products):,} products of “{node.name}” to {category}"
    payload = {"products": products, "target": target}
    if rejects:
        payload["reject"] = node_id
        moved += f" and rejected it; {node.size - len(products):,} returned to “{tree[node.parent].name}”"
    act("move", payload, moved)


def mislabels_view() -> None:
    """The mislabel finder's candidates with photos; one click moves a product to its suggested category."""
    st.header("Mislabels: products whose registered category looks wrong")
    if "flash" in st.session_state:
        st.success(views.plain(st.session_state.pop("flash")))
    misplaced_proposals()
    path = workspace.root / MISLABELS_CSV
    if not path.exists():
        st.info(views.plain(f"No finder output yet. Run: discover classify find-mislabels CONFIG --workspace {root}"))
        return
    found = finder_output(str(path), path.stat().st_mtime)
    level = run.config.discovery.level
    shown, inside = mislabel_candidates.candidates(found, catalog, assignments, tree, level)
    st.caption(
        f"{len(shown):,} flagged products the classifier would put in another category (least likely first); "
        f"{inside:,} more are flagged inside their own category. Scores are out of fold: no model saw the product."
    )
    if shown.empty:
        return
    page = views.page(shown, page_number(len(shown), 10, "mislabels-page"), 10)
    for row in page.itertuples(index=False):
        photo, text, action = st.columns([1, 5, 2])
        png = views.thumbnail_png(row.image_path, 96)
        if png:
            photo.image(png)
        text.text(f"{row.product_id} · {row.title}")
        text.caption(views.plain(f"Registered {row.registered} (p {row.p_registered:.2f}) · sits in {row.place}"))
        text.caption(views.plain(f"Suggested {row.suggested} (p {row.p_suggested:.2f})"))
        moved = f"Moved {row.product_id} to {row.move_to}"
        action.button(
            f"Move to {tree[row.target].name}",
            key=f"mislabel-move:{row.product_id}",
            on_click=act,
            args=("move", {"products": [row.product_id], "target": row.target}, moved),
        )


views_by_name = {
    "Proposals": proposals_view,
    "Find a product": find_view,
    "Compare": compare_view,
    "Mislabels": mislabels_view,
    "Metrics": metrics_view,
    "Export": export_view,
}
views_by_name[view]()
