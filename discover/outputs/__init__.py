"""What a run leaves behind and how it is read back: `run_data` loads a finished run's
files, `export` writes the (curated) tree and product paths as JSON or CSV with a taxonomy
diff, `report` renders the self-contained report.html.
"""
