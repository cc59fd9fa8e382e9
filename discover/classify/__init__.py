"""The supervised side: a multimodal hierarchical classifier of the catalog's own categories.

Trained on the cached image and title embeddings (the *frozen* transfer strategy: seconds
on a CPU). `labels` turns category paths into per-level classes; `data` makes grouped,
stratified splits and caps large classes; `fusion` holds one small module per way of
combining the two modalities (concatenation, sum, product, gated, cross-modal attention,
late); `heads` predicts one level after another with dynamic masking, so every prediction
is a valid path; `train` fits and scores a model; `mislabels` ranks products whose
registered category the classifier finds unlikely; `stage` is what `discover classify`
runs on a workspace.
"""
