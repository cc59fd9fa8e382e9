"""Metrics against small examples computed by hand."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from discover.evaluate.metrics import cluster_scores, hierarchical_prf, macro_f1_by_support, weighted_mean

# 10 items, truth a×4, b×4, c×2; clusters 0:{a,a,a,b} 1:{b,b,b} 2:{c} and two noise (a, c).
LABELS = [0, 0, 0, 0, 1, 1, 1, 2, -1, -1]
TRUTH = ["a", "a", "a", "b", "b", "b", "b", "c", "a", "c"]


def test_purity_coverage_and_hungarian_with_noise():
    s = cluster_scores(LABELS, TRUTH)
    assert s.coverage == pytest.approx(8 / 10)
    assert s.purity == pytest.approx((3 + 3 + 1) / 8)
    assert s.inverse_purity == pytest.approx((3 + 3 + 1) / 8)
    assert s.hungarian_accuracy == pytest.approx(7 / 10)  # noise counts as wrong
    assert (s.leaf_clusters, s.true_classes) == (3, 3)


def test_hungarian_with_more_clusters_than_classes():
    # truth a×3, b×3; clusters split a in two: {a,a} {a} {b,b,b}: one-to-one matching keeps 2+3.
    s = cluster_scores([0, 0, 1, 2, 2, 2], ["a", "a", "a", "b", "b", "b"])
    assert s.hungarian_accuracy == pytest.approx(5 / 6)
    assert s.purity == 1.0 and s.leaf_clusters == 3


def test_hungarian_with_fewer_clusters_than_classes():
    s = cluster_scores([0, 0, 0, 0], ["a", "a", "b", "c"])
    assert s.hungarian_accuracy == pytest.approx(2 / 4)
    assert s.purity == pytest.approx(2 / 4) and s.inverse_purity == 1.0


def test_perfect_clustering_scores_one():
    s = cluster_scores([5, 5, 7, 7], ["x", "x", "y", "y"])
    assert (s.purity, s.nmi, s.ari, s.hungarian_accuracy) == (1.0, 1.0, 1.0, 1.0)


def test_weighted_mean_weights_by_products():
    big = cluster_scores([0] * 8, ["a"] * 8)
    small = cluster_scores([0, 0], ["a", "b"])
    weighted = weighted_mean([big, small])
    assert weighted["purity"] == pytest.approx((8 * 1.0 + 2 * 0.5) / 10)
    assert weighted["n"] == 10 and weighted["leaf_clusters"] == 2


def test_hierarchical_prf_by_hand():
    predicted = [("Footwear", "Shoes", "Heels"), ("Footwear", "Flats")]
    true = [("Footwear", "Shoes", "Flats"), ("Footwear", "Flats")]
    precision, recall, f1 = hierarchical_prf(predicted, true)
    assert precision == pytest.approx(4 / 5) and recall == pytest.approx(4 / 5)
    assert f1 == pytest.approx(4 / 5)
    assert np.isclose(hierarchical_prf(true, true)[2], 1.0)


def test_macro_f1_by_support_says_where_the_f1_is_lost():
    rng = np.random.default_rng(0)
    large = np.repeat(np.arange(10), 30)  # ten classes of 30 test products, 10 % of each missed
    guess = large.copy()
    guess[rng.choice(len(large), 30, replace=False)] = 10
    singles = np.arange(10, 15)  # five classes of one test product, all missed
    true, predicted = np.r_[large, singles], np.r_[guess, singles + 1]
    bands = {b["band"]: b for b in macro_f1_by_support(true, predicted)}
    assert set(bands) == {"1", "≥ 20"}
    assert bands["1"]["classes"] == 5 and bands["1"]["macro_f1"] == 0.0
    assert bands["1"]["cost"] == pytest.approx(5 / 15)  # five of fifteen classes at F1 0
    assert bands["≥ 20"]["classes"] == 10 and bands["≥ 20"]["products"] == 300
    macro = f1_score(true, predicted, labels=np.unique(true), average="macro", zero_division=0)
    assert sum(b["cost"] for b in bands.values()) == pytest.approx(1 - macro)
    assert bands["1"]["cost"] > bands["≥ 20"]["cost"]  # the five singles cost more than 30 misses
