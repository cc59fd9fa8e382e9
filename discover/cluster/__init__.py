"""From vectors to proposed subcategories: reduce, cluster, merge, recurse, name.

Works on arrays whatever made them (it never imports :mod:`discover.embed`).
`CascadeClusterer` is a scikit-learn estimator that clusters inside every existing
category and recursively inside each cluster, with swappable `reducer` (default: PCA is
fitted once per node, then :class:`~discover.cluster.reduce.UmapReducer`) and `clusterer`
(default: HDBSCAN). `merge` joins fragments of one type by PAGA connectivity, `noise` gives
noise products their most likely leaf, `naming` and `exemplars` describe each proposal, and
`stage` runs all of it on a catalog for the pipeline.
"""

from discover.cluster.cascade import CascadeClusterer
from discover.cluster.reduce import UmapReducer

__all__ = ["CascadeClusterer", "UmapReducer"]
