"""Curator decisions, stored in SQLite per run id and node id.

A run id is derived from the config, features and catalog (see
:func:`discover.pipeline.default_run_id`) and node ids are paths, so a re-run of the same
config finds the same nodes and the decisions re-attach (:mod:`discover.curate.apply`).

Actions (payload fields):
- ``rename`` (node, name)
- ``merge`` (into, node): `node`'s products join `into`; `node` and its subtree go away
- ``split`` (node, members: {product_id: child index}, names): new children ``<node>/s<k>``,
  in place of the proposals the node had below it
- ``reject`` (node): the node and its subtree go away; its products return to the parent
- ``move`` (products, target): products become members of `target`
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from discover.errors import DiscoverError

ACTIONS = ("rename", "merge", "split", "reject", "move")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    action TEXT NOT NULL,
    payload TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    undone INTEGER NOT NULL DEFAULT 0
)
"""


@dataclass(frozen=True)
class Decision:
    id: int
    run_id: str
    action: str
    payload: dict[str, Any]
    comment: str
    created_at: float


class CurationStore:
    """The decisions of every run in one SQLite file (``workspace/curation.sqlite``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            connection.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def record(self, run_id: str, action: str, payload: dict[str, Any], comment: str = "") -> Decision:
        if action not in ACTIONS:
            raise DiscoverError(f"unknown curation action {action!r}; one of {', '.join(ACTIONS)}")
        created = time.time()
        with self._connect() as connection:
            cursor = connection.execute(
                "INSERT INTO decisions (run_id, action, payload, comment, created_at) VALUES (?, ?, ?, ?, ?)",
                (run_id, action, json.dumps(payload, sort_keys=True), comment, created),
            )
        return Decision(int(cursor.lastrowid), run_id, action, payload, comment, created)

    def decisions(self, run_id: str) -> list[Decision]:
        """Active (not undone) decisions of a run, oldest first."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT id, run_id, action, payload, comment, created_at FROM decisions "
                "WHERE run_id = ? AND undone = 0 ORDER BY id",
                (run_id,),
            ).fetchall()
        return [Decision(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]

    def undo(self, run_id: str) -> Decision | None:
        """Withdraw the last active decision of a run; return it (None if there was none)."""
        active = self.decisions(run_id)
        if not active:
            return None
        with self._connect() as connection:
            connection.execute("UPDATE decisions SET undone = 1 WHERE id = ?", (active[-1].id,))
        return active[-1]
