"""The classifier beside discovery on fashion-small: proposals placed, and domains held out.

- New subtype or mislabelled? 5 % of each of the largest product types (articleType) are
  moved into the largest sibling category (same masterCategory), as a seller would misfile
  them. Discovery runs on the receiving categories (the run's own fused features and
  settings), the classifier scores every product out of fold over the existing
  categories, and each proposal is placed. Counted: moved products that sit in a proposal
  called mislabelled with their true category suggested (recall); proposals called
  mislabelled that are mostly moved products (precision); the verdict at two confidences.
- Leave one group out: fashion-small has no shop column, so `gender` is the domain. Each
  gender with ≥ 50 products is held out in turn; the same model on a random grouped split
  (every domain in training) runs beside it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.common import REPO, WORKSPACE, markdown_table, write_section
from discover.classify.crossgroup import leave_one_group_out
from discover.classify.data import grouped_splits
from discover.classify.mislabels import out_of_fold_probabilities
from discover.classify.placement import MISLABELLED, place_proposals
from discover.classify.stage import catalog_titles, labelled_inputs, train_settings
from discover.classify.training import fit_classifier, predict, score_predictions
from discover.cluster.stage import propose_subcategories
from discover.config import load_config
from discover.data.ingest import ingest
from discover.outputs.run_data import RunData
from discover.workspace import Workspace

TYPES = 4  # the largest types that have a sibling category to be misfiled into
SHARE = 0.05


def misfile(catalog: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A copy with 5 % of each chosen type moved to the largest sibling category, and the moves."""
    sizes = catalog.groupby(["level_1", "level_2", "truth"]).size().sort_values(ascending=False)
    categories = catalog.groupby(["level_1", "level_2"]).size()
    rng, moves, used = np.random.default_rng(seed), [], set()
    for (top, source, kind), count in sizes.items():
        siblings = categories[top].drop(source).sort_values(ascending=False)
        if siblings.empty or source in used or len(moves) == TYPES:
            continue
        used.add(source)
        rows = catalog.index[(catalog["level_2"] == source) & (catalog["truth"] == kind)]
        chosen = rng.choice(rows, int(SHARE * count), replace=False)
        into = siblings.index[0]
        moves.append(pd.DataFrame({"row": chosen, "type": kind, "from": f"{top} > {source}", "into": into}))
    moved = pd.concat(moves, ignore_index=True)
    misfiled = catalog.copy()
    misfiled.loc[moved["row"], "level_2"] = moved["into"].to_numpy()
    return misfiled, moved


def placement_table(config, workspace: Workspace) -> tuple[pd.DataFrame, str]:
    run = RunData(workspace, workspace.run_ids()[0])
    catalog = workspace.load_catalog().set_index("product_id").loc[run.assignments["product_id"]].reset_index()
    misfiled, moved = misfile(catalog, config.seed)
    receiving = misfiled["level_2"].isin(moved["into"].unique()).to_numpy()
    rows = np.flatnonzero(receiving)
    proposals = propose_subcategories(
        run.discovery_inputs()[0][rows], misfiled.iloc[rows].reset_index(drop=True), config.discovery, config.seed
    )
    labelled = labelled_inputs(config, workspace, misfiled, True, levels=config.discovery.level)
    settings = train_settings(config)
    groups = labelled.catalog["group"].to_numpy()
    titles = catalog_titles(labelled.catalog)
    oof = out_of_fold_probabilities(
        labelled.inputs, labelled.tree, settings, groups, config.classify.folds, titles=titles
    )
    ids = labelled.catalog["product_id"].astype(str)
    probabilities = pd.DataFrame(oof, index=ids, columns=labelled.tree.classes[-1])
    moved_ids = catalog["product_id"].to_numpy()[moved["row"]].astype(str)
    truth_of_moved = pd.Series(moved["from"].to_numpy(), index=moved_ids)
    table = []
    for confidence in (0.8, 0.5):
        placed = place_proposals(proposals.tree, proposals.assignments, probabilities, confidence)
        table.append(score_placements(proposals, placed, truth_of_moved, confidence))
    note = (
        f"{len(moved):,} products moved: "
        + "; ".join(f"{len(g)} {t} ({g['from'].iat[0]} → {g['into'].iat[0]})" for t, g in moved.groupby("type"))
        + f". Discovery on the {len(rows):,} products of the receiving categories: "
        f"{len(proposals.tree.proposals()):,} proposals."
    )
    return pd.DataFrame(table), note


def score_placements(proposals, placed: dict, truth_of_moved: pd.Series, confidence: float) -> dict:
    assignments = proposals.assignments.assign(product_id=proposals.assignments["product_id"].astype(str))
    members = assignments[~assignments["is_noise"]].groupby("leaf_id")["product_id"].apply(list)
    flagged = {n: p for n, p in placed.items() if p["verdict"] == MISLABELLED and n in members}
    caught, right = set(), 0
    for node_id, placement in flagged.items():
        ids = pd.Index(members[node_id])
        inside = ids[ids.isin(truth_of_moved.index)]
        hits = inside[truth_of_moved[inside].to_numpy() == placement["category"]]
        caught.update(hits)
        right += len(inside) >= 0.5 * len(ids)
    return {
        "confidence": confidence,
        "proposals": len(placed),
        "called mislabelled": len(flagged),
        "of them mostly moved products (precision)": right / max(len(flagged), 1),
        "moved products caught, right category (recall)": len(caught) / len(truth_of_moved),
    }


def logo_table(config, workspace: Workspace) -> pd.DataFrame:
    labelled = labelled_inputs(config, workspace, workspace.load_catalog(), True)
    inputs, tree, catalog = labelled.inputs, labelled.tree, labelled.catalog
    groups, settings = catalog["group"].to_numpy(), train_settings(config)
    splits = grouped_splits(inputs.codes[:, -1], groups, seed=config.seed)
    titles = catalog_titles(catalog)
    inputs, _ = inputs.with_title_ngrams(titles, splits.train)
    model = fit_classifier(inputs.take(splits.train), tree, settings, inputs.take(splits.validation))
    scores = score_predictions(tree, inputs.codes[splits.test], predict(model, inputs.take(splits.test)))
    baseline = {
        "held-out domain": "none: random grouped split",
        "products": len(splits.test),
        "hF1": scores["hierarchical_f1"],
        "leaf acc": scores["leaf_accuracy"],
        "leaf macro-F1": scores["leaf_macro_f1"],
        "with a class unseen in training": 0.0,
    }
    held = leave_one_group_out(inputs, tree, settings, catalog["gender"].to_numpy(), groups, titles=titles)
    return pd.concat([pd.DataFrame([baseline]), held], ignore_index=True)


def main() -> None:
    config = load_config(REPO / "configs" / "fashion-small.yaml")
    workspace = Workspace(WORKSPACE)
    ingest(config, workspace, show_progress=False)
    placements, note = placement_table(config, workspace)
    print(placements)
    logo = logo_table(config, workspace)
    print(logo)
    settings = config.classify
    body = (
        f"**New subtype or mislabelled?** {note} Out-of-fold ({settings.folds} grouped folds, {settings.fusion} "
        f"fusion + title n-grams) over the existing categories at level {config.discovery.level}; a product is "
        f"placed where p ≥ confidence, a proposal is called mislabelled when ≥ {settings.placement_majority:.0%} "
        "of its clustered products are placed in one other category.\n\n"
        + markdown_table(placements, "{:.3f}")
        + "\n\n**Leave one group out** (domain: `gender`; fashion-small has no shop column), "
        f"{settings.fusion} fusion, hierarchical heads over the three levels, frozen cached vectors and the titles' "
        "n-grams (each model's vocabulary from its training domains):\n\n" + markdown_table(logo, "{:.4f}")
    )
    write_section("classify_review", "Classifier beside discovery: placements and held-out domains", body)


if __name__ == "__main__":
    main()
