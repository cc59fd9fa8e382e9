"""Exceptions of our own: the CLI turns each into one clear line and exit code 2."""

from __future__ import annotations


class DiscoverError(Exception):
    """Base class for every error a user can fix (bad config, bad catalog, bad weights)."""


class ConfigError(DiscoverError):
    """A config file is missing, malformed or holds an unknown key."""


class CatalogError(DiscoverError):
    """A catalog cannot be read: missing column, duplicate id, bad encoding."""


class EmbedError(DiscoverError):
    """An embedder cannot be built, e.g. weights that are not available offline."""


class WorkspaceError(DiscoverError):
    """A workspace is missing a stage's output (run ingest or embed first)."""
