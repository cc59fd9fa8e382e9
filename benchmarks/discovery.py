"""The rediscovery benchmark (../shared/docs/papers.md) with its baselines, side by side.

`articleType` is hidden; inside every `subCategory` holding two or more article types of
20+ products, proposals are scored against the hidden types, product-weighted over those
parents. Figures are reported on a held-out half of the catalog (split by `image_md5`, see
`benchmarks.common.held_out`) that settings are not tuned on, and on the whole catalog.
All methods run in this process on the same cached embeddings:

- discover: the full `discover` stage (cascade + linkage merge + names + 2-D coords) on
  every parent of the catalog, with configs/fashion-small.yaml;
- flat HDBSCAN: UMAP(5-d, cosine) + HDBSCAN(min_cluster_size = max(10, n/100)), fused;
- k-means with the true k (an oracle for the count), fused, full dimension;
- BERTopic-style text only: MiniLM titles, UMAP(5-d) + HDBSCAN, flat.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans

from benchmarks.common import REPO, WORKSPACE, held_out, markdown_table, peak_rss_mb, write_section
from discover.cluster.cascade import CascadeClusterer, default_clusterer
from discover.cluster.naming import name_from_keywords
from discover.cluster.stage import Proposals, name_tree, propose_subcategories
from discover.config import Config, DirectionsSpec, load_config
from discover.data.ingest import ingest
from discover.embed.directions import SiblingDirections, sibling_directions, stacked
from discover.embed.fuse import fuse
from discover.embed.stage import Features, embed_catalog
from discover.evaluate.flags import flag_scores
from discover.evaluate.metrics import cluster_scores, weighted_mean
from discover.evaluate.names import name_scores
from discover.evaluate.protocols import leave_parent_out
from discover.evaluate.scoring import evaluate, qualifies
from discover.tree import SubcategoryTree, category_paths, existing_id, known_labels
from discover.words import known_words
from discover.workspace import Workspace

COLUMNS = ["coverage", "purity", "hungarian_accuracy", "nmi", "ari", "leaf_clusters", "true_classes"]


def flat(X: np.ndarray, seed: int) -> np.ndarray:
    model = CascadeClusterer(
        clusterer=default_clusterer(min_samples=None),
        max_depth=1,
        min_cluster_fraction=0.01,
        pca_components=64,
        merge_threshold=0,
        min_silhouette=-1,
        random_state=seed,
    )
    model.fit(X, [("p",)] * len(X))
    codes = pd.factorize(model.labels_)[0]
    return np.where(model.is_noise_, -1, codes)


def kmeans_true_k(X: np.ndarray, k: int, seed: int) -> np.ndarray:
    return KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(X)


def score(
    products: str,
    method: str,
    labels_by_parent: dict[str, np.ndarray],
    truth_by_parent: dict[str, np.ndarray],
    seconds: float,
) -> dict:
    scores = [cluster_scores(labels_by_parent[p], truth_by_parent[p]) for p in truth_by_parent]
    weighted = weighted_mean(scores)
    return {
        "products": products,
        "method": method,
        **{k: weighted[k] for k in COLUMNS},
        "seconds": f"{seconds:.0f}",
        "peak RSS MB": f"{peak_rss_mb():.0f}",
    }


@dataclass
class Subset:
    """The fused vectors and per-modality blocks of some of the products."""

    features: Features
    mask: np.ndarray

    @property
    def vectors(self) -> np.ndarray:
        return self.features.vectors[self.mask]

    def block(self, modality: str) -> np.ndarray:
        return self.features.block(modality)[self.mask]


def run_baselines(features: Features | Subset, catalog: pd.DataFrame, config: Config, label: str) -> tuple[list, dict]:
    """Every baseline on one set of products; rows of the results table."""
    parents = np.array([existing_id(p) for p in category_paths(catalog, 2)], dtype=object)
    truth = catalog["truth"].to_numpy()
    qualifying = [p for p in sorted(set(parents)) if qualifies(pd.Series(truth[parents == p]))]
    rows_of = {p: np.flatnonzero(parents == p) for p in qualifying}
    truth_by_parent = {p: truth[r] for p, r in rows_of.items()}
    results = []
    for name, X in (
        ("flat UMAP+HDBSCAN, default features", features.vectors),
        (
            "flat UMAP+HDBSCAN, image + ½ MiniLM (before)",
            fuse([features.block("image"), features.block("text")], [1.0, 0.5]),
        ),
        ("BERTopic-style UMAP+HDBSCAN, MiniLM titles only", features.block("text")),
        ("flat UMAP+HDBSCAN, image only", features.block("image")),
    ):
        started = time.perf_counter()
        labels = {p: flat(X[r], config.seed) for p, r in rows_of.items()}
        results.append(score(label, name, labels, truth_by_parent, time.perf_counter() - started))
    started = time.perf_counter()
    labels = {
        p: kmeans_true_k(features.vectors[r], len(set(truth_by_parent[p])), config.seed) for p, r in rows_of.items()
    }
    results.append(
        score(
            label,
            "k-means with the true k (oracle), default features",
            labels,
            truth_by_parent,
            time.perf_counter() - started,
        )
    )
    summary = {
        "qualifying": qualifying,
        "products": sum(len(r) for r in rows_of.values()),
        "types": sum(len(set(t)) for t in truth_by_parent.values()),
    }
    return results, summary


def variant(config: Config, words: bool, tuned: bool, ignore: bool, merge: bool, names: bool) -> Config:
    """The default config with parts of taxonomy-aware discovery switched off (for the ablation)."""
    changed = config.model_copy(deep=True)
    changed.discovery.type_merge = config.discovery.type_merge if merge else 0.0
    changed.discovery.name_merge = config.discovery.name_merge if names else None
    if not words:
        changed.embed.words = None
    if not tuned:
        changed.discovery.cascade.merge_threshold = BEFORE_MERGE_THRESHOLD
    changed.discovery.ignore = ["gender"] if ignore else []
    return changed


BEFORE_MERGE_THRESHOLD = 0.2  # the cascade setting before issue 16's re-tuning
ABLATION = [  # (label, known-level words (1), re-tuned cascade (4), ignore gender (2), type merge, name merge)
    ("before: image + ½ MiniLM, cascade as it was", False, False, False, False, False),
    ("(1) known-level words", True, False, False, False, False),
    ("(4) re-tuned cascade", False, True, False, False, False),
    ("(1) + (4) without the merges", True, True, False, False, False),
    ("(1) + (4) with the type merge", True, True, False, True, False),
    ("(1) + (4) + type merge + name merge", True, True, False, True, True),
    ("(1) + (4) + both merges + (2) ignore gender", True, True, True, True, True),
]


def keyword_names(tree: SubcategoryTree) -> SubcategoryTree:
    """A copy of `tree` named the way proposals were named before issue 16: top c-TF-IDF keywords."""
    renamed = SubcategoryTree.from_json(tree.to_json())
    for node in list(renamed.nodes.values()):
        taken: set[str] = set()
        for child in (c for c in renamed.children(node.id) if c.kind == "proposed"):
            child.name = name_from_keywords(child.keywords, taken)
            taken.add(child.name)
    return renamed


def names_said_of_titles_only(proposals: Proposals, catalog: pd.DataFrame, config: Config) -> SubcategoryTree:
    """A copy of the proposals' tree named as before names had to say more than their
    category's name ("Watch" under Watches beside "Dial Watch")."""
    renamed = SubcategoryTree.from_json(proposals.tree.to_json())
    leaves = pd.Series(proposals.assignments["leaf_id"].to_numpy(), index=catalog.index)
    known = known_words(catalog, config.discovery.level)
    name_tree(renamed, leaves, catalog["title"].fillna(""), config.discovery.keywords, known, beyond_category=False)
    return renamed


def scored_row(label: str, proposals: Proposals, catalog: pd.DataFrame, seconds: float, tree=None) -> dict:
    metrics = evaluate(proposals.assignments, catalog, ["gender"])
    names = name_scores(tree or proposals.tree, proposals.assignments, catalog)
    weighted = metrics["weighted"]
    return {
        "variant": label,
        **{k: weighted[k] for k in COLUMNS},
        "gender purity": metrics["attributes"]["gender"]["purity"],
        "names with a type word": names["type_word"],
        "type word in ≥ ¼ of its titles": names["type_word_said"],
        "names in title order": names["title_order"],
        "sibling groups sharing a name": names["duplicate_siblings"],
        "names saying only their category's": names["repeats_category"],
        "“Other …” names": names["other"],
        "seconds": f"{seconds:.0f}",
    }


def protocol_a(config: Config, workspace: Workspace, catalog: pd.DataFrame, mask: np.ndarray) -> tuple[list, Proposals]:
    """Every ablation variant on the held-out half; the default's proposals."""
    half = catalog.loc[mask].reset_index(drop=True)
    rows, default = [], None
    for label, words, tuned, ignore, merge, names in ABLATION:
        chosen = variant(config, words, tuned, ignore, merge, names)
        features = embed_catalog(chosen, workspace, progress=False)
        view = features.type_view()
        started = time.perf_counter()
        ours = propose_subcategories(
            features.vectors[mask],
            half,
            chosen.discovery,
            chosen.seed,
            coordinates=False,
            type_view=None if view is None else view[mask],
        )
        rows.append(scored_row(label, ours, half, time.perf_counter() - started))
        default_flags = (
            bool(config.embed.words),
            True,
            bool(config.discovery.ignore),
            config.discovery.type_merge > 0,
            config.discovery.name_merge is not None,
        )
        if (words, tuned, ignore, merge, names) == default_flags:
            default = ours
            rows.append(
                scored_row("(5) off: the same proposals with keyword names", ours, half, 0, keyword_names(ours.tree))
            )
            before = names_said_of_titles_only(ours, half, chosen)
            label = "(5) the same proposals, names free to say only their category"
            rows.append(scored_row(label, ours, half, 0, before))
    assert default is not None, "the default config is one of the ablation variants"
    return rows, default


def protocol_a_directions(config: Config, workspace: Workspace, catalog: pd.DataFrame, mask: np.ndarray) -> dict:
    """The default with photo and title directions learnt from the known level alone (each
    subCategory against its masterCategory siblings): the protocol-A counterpart of
    ``embed.directions``, which needs known leaves and so is not in the default."""
    features = embed_catalog(config, workspace, progress=False)
    slots = [slot for slot in ("image", "words", "text") if getattr(config.embed, slot) is not None]
    X = stacked([features.block(slot) for slot in ("image", "text") if slot in slots])
    labels = known_labels(catalog, config.discovery.level)
    spec = DirectionsSpec()
    model = SiblingDirections(spec.components, spec.shrinkage, config.seed).fit(X, labels, np.ones(len(X), bool))
    blocks = [features.block(slot) for slot in slots] + [model.transform(X)]
    weights = [getattr(config.embed, slot).weight for slot in slots] + [spec.weight]
    fused = fuse(blocks, weights, config.embed.pca_components, config.seed)
    half = catalog.loc[mask].reset_index(drop=True)
    started = time.perf_counter()
    view = features.type_view()
    ours = propose_subcategories(
        fused[mask],
        half,
        config.discovery,
        config.seed,
        coordinates=False,
        type_view=None if view is None else view[mask],
    )
    label = "(1) + (4) + both merges + directions learnt from the known level (subCategory within masterCategory)"
    return scored_row(label, ours, half, time.perf_counter() - started)


PROTOCOL_B = "protocol B: (3) + (1) + (4) + both merges, types known in the other parents"


def protocol_b(
    config: Config, workspace: Workspace, catalog: pd.DataFrame, mask: np.ndarray, directions: DirectionsSpec | None
) -> dict:
    """Leave-one-parent-out on the held-out half: each parent's own types hidden, every other
    parent's types known (``known_leaf``), the known-level words learnt from both, and with
    `directions` the photo and title directions that separate the known sibling leaves."""
    from discover.embed.stage import build_embedder

    features = embed_catalog(config, workspace, progress=False)
    half = catalog.loc[mask].reset_index(drop=True)
    parents = np.array([existing_id(p) for p in category_paths(half, config.discovery.level)], dtype=object)
    qualifying = [p for p in sorted(set(parents)) if qualifies(half["truth"][parents == p])]
    seen = [features.block(slot) for slot in ("image", "text") if getattr(config.embed, slot) is not None]
    scored, started = [], time.perf_counter()
    for parent in qualifying:
        hidden = leave_parent_out(catalog, parent, config.discovery.level)
        embedder = build_embedder(config.embed.words, "text", config)
        embedder.fit(hidden["title"].fillna("").tolist(), parent, known_labels(hidden, config.discovery.level))
        rows = np.flatnonzero(mask)[parents == parent]
        titles = catalog["title"].iloc[rows].fillna("").tolist()
        words = embedder.embed_texts(titles).vectors
        slots = [("image", features.block("image")[rows]), ("words", words)]
        if config.embed.text is not None:
            slots.append(("text", features.block("text")[rows]))
        blocks = [b for _, b in slots]
        weights = [getattr(config.embed, slot).weight for slot, _ in slots]
        if directions is not None:
            level, seed = config.discovery.level, config.seed
            projected = sibling_directions(seen, hidden, level, directions.components, directions.shrinkage, seed)
            blocks.append(projected[rows])
            weights.append(directions.weight)
        X = fuse(blocks, weights, None, config.seed)
        part = hidden.iloc[rows].reset_index(drop=True)
        known = embedder.concentration_  # learnt from the whole catalog, this parent's types hidden
        proposals = propose_subcategories(
            X, part, config.discovery, config.seed, coordinates=False, known=known, type_view=words
        )
        scored.append((proposals, part))
    assignments = pd.concat([p.assignments for p, _ in scored], ignore_index=True)
    parts = pd.concat([part for _, part in scored], ignore_index=True)
    metrics = evaluate(assignments, parts, ["gender"])
    names = [name_scores(p.tree, p.assignments, part) for p, part in scored]
    proposals = max(sum(n["proposals"] for n in names), 1)
    label = PROTOCOL_B + (" + (3) sibling directions of photo and title" if directions else ", words only")
    return {
        "variant": label,
        **{k: metrics["weighted"][k] for k in COLUMNS},
        "gender purity": metrics["attributes"]["gender"]["purity"],
        "names with a type word": sum(n["type_word"] * n["proposals"] for n in names) / proposals,
        "type word in ≥ ¼ of its titles": sum(n["type_word_said"] * n["proposals"] for n in names) / proposals,
        "names in title order": sum(n["title_order"] * n["proposals"] for n in names) / proposals,
        "sibling groups sharing a name": sum(n["duplicate_siblings"] for n in names),
        "names saying only their category's": sum(n["repeats_category"] * n["proposals"] for n in names) / proposals,
        "“Other …” names": sum(n["other"] * n["proposals"] for n in names) / proposals,
        "seconds": f"{time.perf_counter() - started:.0f}",
    }


def main() -> None:
    config = load_config(REPO / "configs" / "fashion-small.yaml")
    workspace = Workspace(WORKSPACE)
    ingest(config, workspace, show_progress=False)
    catalog = workspace.load_catalog()
    mask = held_out(catalog["group"]).to_numpy()
    half = catalog.loc[mask].reset_index(drop=True)

    ablation, default = protocol_a(config, workspace, catalog, mask)
    ablation.append(protocol_a_directions(config, workspace, catalog, mask))
    directions = load_config(REPO / "configs" / "fashion-small-protocol-b.yaml").embed.directions
    ablation.append(protocol_b(config, workspace, catalog, mask, None))
    ablation.append(protocol_b(config, workspace, catalog, mask, directions))
    features = embed_catalog(config, workspace, progress=False)
    baselines, summary = run_baselines(Subset(features, mask), half, config, "held-out half")
    started = time.perf_counter()
    whole = propose_subcategories(
        features.vectors, catalog, config.discovery, config.seed, type_view=features.type_view()
    )
    whole_seconds = time.perf_counter() - started
    whole_row = scored_row(
        "default config, whole catalog (as `make demo`, with 2-D map)", whole, catalog, whole_seconds
    )

    level = config.discovery.level
    flag_rows = [
        {"products": "held-out half", **flag_scores(default.tree, default.assignments, half, known_words(half, level))},
        {
            "products": "whole catalog",
            **flag_scores(whole.tree, whole.assignments, catalog, known_words(catalog, level)),
        },
    ]
    metrics = evaluate(default.assignments, half)
    qualifying = summary["qualifying"]
    per_parent = pd.DataFrame(metrics["per_parent"]).T.loc[qualifying, ["n", *COLUMNS]]
    per_parent.insert(0, "parent", [p.removeprefix("root/") for p in per_parent.index])
    names = pd.DataFrame(
        [
            {"parent": default.tree[n.parent].name, "proposal": n.name, "size": n.size, "flags": "; ".join(n.flags)}
            for n in default.tree.nodes.values()
            if n.kind == "proposed" and default.tree[n.parent].kind == "existing"
        ]
    )
    body = (
        "Held-out half: the products whose `image_md5` hashes odd (benchmarks.common.held_out); every setting "
        "was chosen on the other half. Protocol A: only the existing levels (masterCategory, subCategory) are "
        "known. Protocol B: leave-one-parent-out, each parent's own article types hidden and every other "
        "parent's known (`catalog.columns.known_leaf`). "
        f"{len(qualifying)} qualifying parents, {summary['products']:,} products, {summary['types']} hidden "
        "article types; product-weighted means, leaves and true classes summed over parents.\n\n"
        'Names: "names with a type word" is the share of proposals whose name holds a word of their '
        'majority article type (stemmed); "type word in ≥ ¼ of its titles" the share whose own titles say '
        "such a word that often, so that a name taken from the titles could hold it: these titles call "
        'most Sarees "Sari", most Deodorants "Deo" and many Heels "Flats". "Names saying only their '
        'category\'s" is the share of proposals with siblings named nothing but their category ("Watch" under '
        'Watches beside "Dial Watch"); such a proposal is now named by a phrase that adds a type word, said '
        'in ≥ ¼ of its titles, or else "Other <category>" (its share in "“Other …” names").\n\n'
        "Ablation (each part of issue 16 on and off; (3) is protocol B, (5) the names):\n\n"
        + markdown_table(pd.DataFrame([*ablation, whole_row]))
        + "\n\nBaselines on the default features, same half:\n\n"
        + markdown_table(pd.DataFrame(baselines))
        + "\n\nWhich proposals to look at first, without labels (leaf proposals of the default config): "
        'a leaf is flagged "mixed titles" when no type word is said by half the titles that name one '
        "(`discover.cluster.title_types`); a leaf is mixed when its majority true type holds under half its "
        "products. Rank correlations with purity over the leaves: the titles' agreement (the commonest type "
        "word's share) and HDBSCAN's stability, the label-free signal the explorer showed before.\n\n"
        + markdown_table(pd.DataFrame(flag_rows))
        + "\n\nPer parent (default config, held-out half):\n\n"
        + markdown_table(per_parent.astype({"n": int, "leaf_clusters": int, "true_classes": int}))
        + "\n\nTop-level proposal names (default config, held-out half):\n\n"
        + markdown_table(names)
        + f"\n\nPeak RSS of the benchmark process: {peak_rss_mb():.0f} MB."
    )
    write_section("discovery", "Discovery: the rediscovery benchmark", body)


if __name__ == "__main__":
    main()
