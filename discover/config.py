"""Run configs: pydantic models loaded from YAML. Unknown or misspelt keys are errors."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from discover.errors import ConfigError

DATA_ENV = "DISCOVER_DATA"


def is_file_reference(value: str) -> bool:
    """Whether a `pretrained`/`checkpoint` value names a file (not a tag such as
    ``laion2b_s34b_b79k`` or a hub id such as ``hf-hub:org/model``).

    Example:
        >>> [is_file_reference(v) for v in ("ckpt/model.pt", "laion2b_s34b_b79k", "hf-hub:org/model")]
        [True, False, False]
    """
    return not value.startswith("hf-hub:") and bool(Path(value).suffix or "/" in value)


def _not_zero(value: int) -> int:
    if value == 0:
        raise ValueError("n_jobs is a number of processes (1, 2, …) or -1 for every core, not 0")
    return value


Processes = Annotated[int, Field(ge=-1), AfterValidator(_not_zero)]  # -1: one per core


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ColumnMap(_Strict):
    """Maps the user's columns onto the canonical ones.

    Category levels come either as separate columns (`levels`) or as one path column
    (`category`) split on `separator`, e.g. ``Apparel > Topwear``.
    """

    product_id: str
    title: str
    image: str
    levels: list[str] | None = None
    category: str | None = None
    separator: str = ">"
    group: str | None = None
    truth: str | None = None
    known_leaf: str | None = None  # protocol B: the finer leaf where the taxonomy already has one, else empty
    attributes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_category_source(self) -> ColumnMap:
        if bool(self.levels) == bool(self.category):
            raise ValueError("give exactly one of `levels` (a list of columns) or `category`")
        return self


class CatalogConfig(_Strict):
    """Where the catalog is and how to validate it."""

    data_dir: str = "."
    file: str
    format: Literal["auto", "csv", "parquet", "jsonl"] = "auto"
    columns: ColumnMap
    on_invalid: Literal["drop", "keep"] = "drop"
    min_image_size: int = Field(16, ge=1)
    max_image_pixels: int = Field(40_000_000, ge=1)  # larger photos are reported as image_too_large
    allow_outside_paths: bool = False
    check_images: bool = True
    # Categories ("Footwear > Shoes") whose `known_leaf` is not trusted (too coarse, or to be
    # rediscovered): it is emptied there on ingest, and the words are learnt from the others.
    known_leaf_ignored_in: list[str] = Field(default_factory=list)

    def resolved_path(self, base_dir: Path) -> Path:
        """The catalog file; `$DISCOVER_DATA` replaces `data_dir` when set."""
        data_dir = os.environ.get(DATA_ENV) or self.data_dir
        root = Path(data_dir).expanduser()
        if not root.is_absolute():
            root = base_dir / root
        return (root / self.file).resolve()


class EmbedderSpec(_Strict):
    """One embedder by registry name, with its parameters and its weight in the fusion."""

    name: str
    weight: float = Field(1.0, ge=0)
    image_size: int = Field(128, ge=16)
    arch: str | None = None
    pretrained: str | None = None
    checkpoint: str | None = None
    # Cross-fitted encoders (`discover classify tune-image --folds N`): each photo is embedded
    # by the one that never trained on it (chosen from the photo's bytes).
    checkpoints: list[str] | None = None
    components: int = Field(256, ge=2)
    power: float = Field(2.0, gt=0)  # known-level-words: concentration ** power sharpens type words

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str) -> str:
        """Caught when the config loads, not after an hour of embedding the other modality."""
        from discover.embed import available

        if name not in available():
            close = difflib.get_close_matches(name, available(), n=1)
            hint = f"did you mean `{close[0]}`? " if close else ""
            raise ValueError(f"unknown embedder `{name}`; {hint}available: {', '.join(available())}")
        return name

    @model_validator(mode="after")
    def _one_way_to_name_weights(self) -> EmbedderSpec:
        if self.checkpoints is not None:
            if self.checkpoint:
                raise ValueError("name `checkpoint` (one weights file) or `checkpoints` (cross-fitted), not both")
            if self.name != "efficientnet-lite0" or len(self.checkpoints) < 2:
                raise ValueError("`checkpoints` takes two or more cross-fitted efficientnet-lite0 weights files")
        return self


class DirectionsSpec(_Strict):
    """Photo and title directions that separate known sibling leaves (needs ``known_leaf``)."""

    components: int = Field(64, ge=1)
    shrinkage: float = Field(0.1, gt=0, le=1)  # within-leaf scatter shrunk towards the identity
    weight: float = Field(1.0, ge=0)


class EmbedConfig(_Strict):
    image: EmbedderSpec | None = Field(default_factory=lambda: EmbedderSpec(name="efficientnet-lite0"))
    text: EmbedderSpec | None = Field(default_factory=lambda: EmbedderSpec(name="minilm"))
    words: EmbedderSpec | None = None  # a second title view, e.g. known-level-words
    directions: DirectionsSpec | None = None  # protocol B: what separates sibling leaves where they are known
    pca_components: int | None = Field(None, ge=2)
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(1, ge=0)
    # Processes that embed on this machine (-1: one per core), each with its own model and
    # `torch_threads` threads (default: the cores shared out); 1 embeds in this process.
    n_jobs: Processes = 1
    # Missing items from which those processes start: starting them (imports and a model
    # each) costs about 12 s on 2 cores, which Lite0 won back at 8,000 photos (benchmarks/embed.py).
    workers_from: int = Field(16384, ge=1)
    torch_threads: int | None = Field(None, ge=1)
    chunk_size: int = Field(2048, ge=1)


class UmapConfig(_Strict):
    n_components: int = Field(5, ge=1)
    n_neighbors: int = Field(15, ge=2)
    min_dist: float = Field(0.0, ge=0)
    metric: str = "cosine"
    pca_components: int | None = Field(64, ge=2)


class HdbscanConfig(_Strict):
    min_cluster_fraction: float = Field(0.02, gt=0, lt=1)
    min_cluster_size_floor: int = Field(10, ge=2)
    min_samples: int | None = Field(3, ge=1)
    selection: Literal["eom", "leaf"] = "eom"


class CascadeConfig(_Strict):
    max_depth: int = Field(2, ge=1)
    min_split_size: int = Field(60, ge=4)
    max_noise_fraction: float = Field(0.5, gt=0, le=1)
    min_silhouette: float = Field(0.05, ge=-1, le=1)
    merge_threshold: float = Field(0.2, ge=0, le=1)
    merge_neighbors: int = Field(15, ge=1)
    task_min_size: int = Field(20_000, ge=2)  # engine ray: proposals this large are split in tasks of their own


class DiscoveryConfig(_Strict):
    level: int = Field(2, ge=1)
    min_parent_size: int = Field(20, ge=2)
    umap: UmapConfig = Field(default_factory=UmapConfig)
    hdbscan: HdbscanConfig = Field(default_factory=HdbscanConfig)
    cascade: CascadeConfig = Field(default_factory=CascadeConfig)
    exemplars: int = Field(8, ge=5, le=12)
    keywords: int = Field(8, ge=1)
    ignore: list[str] = Field(default_factory=list)  # attribute columns that are not types (e.g. gender)
    type_merge: float = Field(0.7, ge=0, le=1)  # merge leaves whose title-type profiles agree this much (0: off)
    # merge leaves whose names say one type: the stems of their words of known-level weight ≥ this (null: off)
    name_merge: float | None = Field(0.5, gt=0, le=1)
    n_jobs: Processes = 1  # parents clustered in parallel processes; -1: every core; same result


class RayConfig(_Strict):
    """Where and how the Ray engine runs (``engine: ray``)."""

    address: str | None = None  # a running cluster ("ray://host:10001", "auto"); None starts a local one
    num_cpus: int | None = Field(None, ge=1)  # CPUs of the local cluster (default: every core)
    actors: int = Field(2, ge=1)  # embedding workers per embedder; each loads its model once
    cpus_per_actor: float = Field(1.0, gt=0)
    gpus_per_actor: float = Field(0.0, ge=0)


class PretrainConfig(_Strict):
    init: Literal["imagenet", "scratch"] = "imagenet"
    image_size: int = Field(64, ge=16)
    batch_size: int = Field(128, ge=4)
    epochs: int = Field(10, ge=1)
    minutes: float | None = Field(None, gt=0)
    learning_rate: float = Field(0.05, gt=0)
    temperature: float = Field(0.2, gt=0)
    freeze_blocks: int = Field(10, ge=0)
    min_crop_scale: float = Field(0.35, gt=0, le=1)
    hue_jitter: float = Field(0.1, ge=0, le=0.5)
    saturation_jitter: float = Field(0.4, ge=0)
    grayscale_probability: float = Field(0.2, ge=0, le=1)
    samples_per_epoch: int | None = Field(None, ge=8)
    validation_size: int = Field(1000, ge=10)


class FineTuneConfig(_Strict):
    """End-to-end training: the encoders learn with the heads from photos and titles
    (``discover classify train`` fine-tunes when this is set; see discover.classify.finetune)."""

    image_encoder: Literal["efficientnet-lite0", "resnet18-scratch", "clip"] = "efficientnet-lite0"
    text_encoder: Literal["minilm", "clip"] = "minilm"
    clip_arch: str | None = None  # the clip towers' open_clip architecture, e.g. ViT-B-32
    clip_pretrained: str | None = None  # their checkpoint file (a tag asks for the network)
    image_strategy: Literal["frozen", "partial", "full"] = "partial"
    text_strategy: Literal["frozen", "partial", "full"] = "partial"
    top_blocks: int = Field(2, ge=1)  # blocks (image) and transformer layers (text) that train under "partial"
    staged: bool = False  # the heads alone in the first epoch, then the encoders with them
    image_size: int = Field(64, ge=16)
    epochs: int = Field(4, ge=1)
    minutes: float = Field(10.0, gt=0)  # the time budget; the best validation epoch so far is kept
    batch_size: int = Field(64, ge=1)
    encoder_learning_rate: float = Field(1e-4, gt=0)

    @model_validator(mode="after")
    def _clip_needs_an_arch(self) -> FineTuneConfig:
        if "clip" in (self.image_encoder, self.text_encoder) and not self.clip_arch:
            raise ValueError("classify.fine_tune: a clip encoder needs clip_arch (e.g. ViT-B-32) and clip_pretrained")
        return self


class ClassifyConfig(_Strict):
    """The supervised classifier (``discover classify``): what it learns and how it trains."""

    include_truth: bool = True  # the truth column, when mapped, is the finest level it learns
    fusion: Literal["image-only", "text-only", "concat", "sum", "product", "gated", "attention", "late"] = "gated"
    head: Literal["hierarchical", "flat"] = "hierarchical"
    title_ngrams: bool = True  # the titles' word and character n-grams vote beside the fused vectors
    dim: int = Field(256, ge=4)
    dropout: float = Field(0.2, ge=0, lt=1)
    epochs: int = Field(40, ge=1)
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    teacher_forcing: bool = True
    # path: the leaf whose whole path is most probable (p(parent) · p(child | parent) ...);
    # greedy: the best class level by level, each masked by the one chosen above it
    decoding: Literal["path", "greedy"] = "path"
    class_weights: bool = False  # inverse-frequency loss weights; off: logit adjustment serves the rare classes
    logit_adjustment: float = Field(0.5, ge=0)  # τ: predictions subtract τ·log(class prior); 0 turns it off
    patience: int = Field(6, ge=1)
    # the saved model is this many trained alike from seeds seed, seed + 1, ..., their leaf
    # probabilities averaged (discover.classify.ensemble); out-of-fold models (mislabels,
    # placements, cross-group) and fine-tuned ones are one each
    members: int = Field(5, ge=1)
    # members after the first take, in turn, gated/flat, sum, attention and late fusion (the
    # first is fusion/head above); off, or with an image- or text-only fusion: all alike
    mix: bool = True
    # two-stage inference (discover.classify.two_stage): a text-only model, trained beside the
    # multimodal one, predicts every product; those whose path probability is below this go on
    # to the multimodal model, and only their photos are embedded. None: every product goes on
    two_stage_threshold: float | None = Field(0.9, gt=0, le=1)
    max_per_class: int | None = Field(None, ge=1)  # under-sampling cap on training rows per leaf class
    test_size: float = Field(0.2, gt=0, lt=1)
    validation_size: float = Field(0.1, gt=0, lt=1)
    folds: int = Field(5, ge=2)  # out-of-fold probabilities for the mislabel finder and placements
    placement_confidence: float = Field(0.8, gt=0, le=1)  # a product is placed where p ≥ this
    placement_majority: float = Field(0.5, gt=0, le=1)  # this share placed elsewhere: mislabelled
    fine_tune: FineTuneConfig | None = None  # None: train on the cached (frozen) embeddings, in seconds

    @model_validator(mode="after")
    def _members_decode_whole_paths(self) -> ClassifyConfig:
        if self.members > 1 and self.decoding == "greedy":
            raise ValueError(
                "classify: members > 1 average the members' leaf probabilities and decode the most probable "
                "path; greedy decoding is for one model (set members: 1)"
            )
        return self


class Config(_Strict):
    """A whole run: catalog → embed → discover → evaluate → export."""

    name: str = "run"
    seed: int = 0
    engine: Literal["local", "ray"] = "local"
    ray: RayConfig = Field(default_factory=RayConfig)
    catalog: CatalogConfig
    embed: EmbedConfig = Field(default_factory=EmbedConfig)
    discovery: DiscoveryConfig = Field(default_factory=DiscoveryConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    classify: ClassifyConfig = Field(default_factory=ClassifyConfig)
    base_dir: Path = Field(default=Path("."), exclude=True)

    @property
    def catalog_path(self) -> Path:
        return self.catalog.resolved_path(self.base_dir)

    def resolve(self, value: str | None) -> Path | None:
        """A path from the config, relative to the config file's directory."""
        if value is None:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    def to_yaml(self) -> str:
        """The resolved config: the catalog directory and model files as absolute paths."""
        resolved = self.model_dump(mode="json")
        resolved["catalog"]["data_dir"] = str(self.catalog_path.parent)
        for modality in ("image", "text"):
            spec = resolved["embed"].get(modality)
            for key in ("checkpoint", "pretrained"):
                if spec and spec.get(key) and is_file_reference(spec[key]):
                    spec[key] = str(self.resolve(spec[key]))
            if spec and spec.get("checkpoints"):
                spec["checkpoints"] = [str(self.resolve(c)) for c in spec["checkpoints"]]
        return yaml.safe_dump(resolved, sort_keys=False)

    @model_validator(mode="after")
    def _ignored_attributes_mapped(self) -> Config:
        unmapped = [c for c in self.discovery.ignore if c not in self.catalog.columns.attributes]
        if unmapped:
            raise ValueError(
                f"discovery.ignore names {', '.join(unmapped)}, which catalog.columns.attributes does not list"
            )
        return self


def _valid_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names valid at `loc` inside `model` (for 'did you mean')."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if hasattr(current, "model_fields") else None
        if field is None:
            return []
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return []
    return list(current.model_fields) if current is not None else []


def _explain(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors():
        loc = tuple(item["loc"])
        dotted = ".".join(str(p) for p in loc)
        if item["type"] == "extra_forbidden":
            options = [k for k in _valid_keys(Config, loc) if k != "base_dir"]
            close = difflib.get_close_matches(str(loc[-1]), options, n=1, cutoff=0.5)
            hint = f"; did you mean `{close[0]}`?" if close else f"; valid keys: {', '.join(options)}"
            lines.append(f"unknown key `{dotted}`{hint}")
        else:
            lines.append(f"`{dotted}`: {item['msg']}")
    return f"{source}: " + "; ".join(lines)


def config_from_dict(raw: dict[str, Any], base_dir: Path, source: str = "<config>") -> Config:
    try:
        config = Config.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_explain(error, source)) from None
    config.base_dir = Path(base_dir).resolve()
    return config


def load_config(path: str | os.PathLike[str]) -> Config:
    """Load and validate a YAML config; relative paths in it are relative to the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return config_from_dict(raw, path.parent, str(path))
