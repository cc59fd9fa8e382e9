"""What curators do to a run: decisions stored in SQLite (`store`), applied to a copy of the
run's tree (`apply`), split previews (`split_preview`), and everything the explorer shows
(`views`), so the Streamlit app holds layout only.

Applying is pure: a run's own files never change; the curated tree is computed from the
run and its active decisions, and re-attaches after a re-run of the same config.
"""
