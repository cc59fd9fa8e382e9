"""The neighbour-graph merge that joins fragments of one type."""

import numpy as np

from discover.cluster.merge import merge_connected


def test_halves_of_one_blob_merge_but_separate_blobs_do_not():
    rng = np.random.default_rng(0)
    blob = rng.normal(size=(200, 8))
    other = rng.normal(size=(200, 8)) + 12
    X = np.vstack([blob, other]).astype(np.float32)
    # HDBSCAN-like fragments: the first blob cut in two along one axis, the second intact, some noise
    labels = np.full(400, 2)
    labels[:200] = (X[:200, 0] > 0).astype(int)
    labels[[5, 250]] = -1
    merged = merge_connected(X, labels, threshold=0.2, k=15, metric="euclidean")
    assert merged[5] == -1 and merged[250] == -1
    assert len(set(merged[:200]) - {-1}) == 1
    assert set(merged[200:]) - {-1} != set(merged[:200]) - {-1}
    assert sorted(set(merged) - {-1}) == [0, 1]


def test_zero_threshold_or_one_cluster_changes_nothing():
    X = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    labels = np.repeat([0, 1], 25)
    np.testing.assert_array_equal(merge_connected(X, labels, threshold=0), labels)
    np.testing.assert_array_equal(merge_connected(X, np.zeros(50, int), threshold=0.2), np.zeros(50, int))
