"""Scoring proposals: cluster metrics as plain functions over arrays (`metrics`), and
scoring a run against its hidden truth column and every attribute column (`scoring`).

A parent qualifies for the headline figures when it holds two or more truth classes of
20+ products; `metrics.json` reports the weighted mean over those parents.
"""
