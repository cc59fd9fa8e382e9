"""Evaluation protocols that decide what a method may know (../shared/docs/papers.md).

Protocol A: only the existing levels are known; the truth column is hidden everywhere.
Protocol B (generalized category discovery): the taxonomy is fine in some branches and
coarse in others. :func:`leave_parent_out` makes such a catalog from one with a truth
column: every product's truth becomes its ``known_leaf`` except under one parent, whose
own types are hidden and are what discovery must find.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from discover.tree import category_paths, existing_id


def leave_parent_out(catalog: pd.DataFrame, parent_id: str, level: int) -> pd.DataFrame:
    """A copy of `catalog` whose ``known_leaf`` is the truth outside `parent_id` and empty inside it."""
    inside = np.array([existing_id(path) == parent_id for path in category_paths(catalog, level)])
    hidden = catalog.copy()
    hidden["known_leaf"] = np.where(inside, "", catalog["truth"].astype(str).to_numpy())
    return hidden
