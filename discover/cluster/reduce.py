"""Dimension reduction before clustering: optional PCA, then seeded UMAP."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA


class UmapReducer(BaseEstimator, TransformerMixin):
    """PCA (optional) followed by UMAP (McInnes et al., 2018), deterministic for a seed.

    Small inputs are handled rather than failing: `n_neighbors` is capped at n - 1, and
    with fewer than `n_components + 2` rows the PCA-reduced (or raw) data is returned.

    Attributes:
        embedding_: the reduced training data (n × n_components), float32.

    Example:
        >>> X = np.random.default_rng(0).normal(size=(200, 20)).astype("float32")
        >>> UmapReducer(n_components=2, random_state=0).fit_transform(X).shape
        (200, 2)
    """

    def __init__(
        self,
        n_components: int = 5,
        n_neighbors: int = 15,
        min_dist: float = 0.0,
        metric: str = "cosine",
        pca_components: int | None = None,
        n_epochs: int | None = None,
        random_state: int = 0,
        force_approximation: bool = False,
    ) -> None:
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.pca_components = pca_components
        self.n_epochs = n_epochs
        self.random_state = random_state
        self.force_approximation = force_approximation  # NN-descent even below 4,096 rows (to compile it early)

    def fit(self, X: np.ndarray, y: object = None) -> UmapReducer:
        X = np.asarray(X, dtype=np.float32)
        if self.pca_components and self.pca_components < min(X.shape):
            X = PCA(self.pca_components, random_state=self.random_state).fit_transform(X)
        if X.shape[0] < self.n_components + 2:
            self.embedding_ = X[:, : self.n_components].astype(np.float32)
            return self
        import umap

        from discover.numba_cache import cache_kernels

        cache_kernels("umap")  # compiled once per installation, not once per process
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # n_jobs=1 with a seed is the point; umap warns about it
            model = umap.UMAP(
                n_components=self.n_components,
                n_neighbors=max(2, min(self.n_neighbors, X.shape[0] - 1)),
                min_dist=self.min_dist,
                metric=self.metric,
                n_epochs=self.n_epochs,
                random_state=self.random_state,
                n_jobs=1,
                init="spectral" if X.shape[0] > self.n_components + 10 else "random",
                force_approximation_algorithm=self.force_approximation,
            )
            self.embedding_ = model.fit_transform(X).astype(np.float32)
        return self

    def fit_transform(self, X: np.ndarray, y: object = None, **_: object) -> np.ndarray:
        return self.fit(X).embedding_
