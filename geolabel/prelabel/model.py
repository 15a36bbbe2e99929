"""Segmentation models and their checkpoints: a directory of weights plus a JSON model card.

The card holds what it takes to reproduce a model and to refuse misuse: the class list and the
taxonomy (name, version, sha256) it was trained on, input bands and their normalisation, a hash of
the training item ids, architecture and encoder, epochs, validation metrics, the calibration
temperature and the versions of the libraries. ``load_checkpoint`` refuses a model whose taxonomy
differs from the project's, with a message that says to retrain.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import pickle
import platform
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import nn

from geolabel import __version__
from geolabel.errors import GeolabelError, InputFileError, ModelMismatchError

__all__ = [
    "CARD_FILE",
    "WEIGHTS_FILE",
    "Architecture",
    "ModelCard",
    "ModelConfig",
    "ModelMismatchError",
    "build_model",
    "check_model_config",
    "fold_batchnorm",
    "hash_ids",
    "load_card",
    "load_checkpoint",
    "save_checkpoint",
]

Architecture = Literal["unet", "unetplusplus", "fpn", "deeplabv3plus"]
WEIGHTS_FILE = "weights.pt"
CARD_FILE = "model_card.json"


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Architecture of a segmentation model.

    Attributes:
        arch: segmentation-models-pytorch architecture.
        encoder: Encoder name (``resnet18``, ``mobilenet_v2``, ``efficientnet-b0``...).
        encoder_depth: Encoder stages (3–5); fewer stages are faster and see less context.
        decoder_channels: Decoder widths, one per stage (Unet family only).
        weights: Optional local weights file (a ``state_dict``) to start from; nothing is ever
            downloaded (``encoder_weights=None``).
    """

    arch: Architecture = "unet"
    encoder: str = "resnet18"
    encoder_depth: int = 4
    decoder_channels: tuple[int, ...] = (128, 64, 32, 16, 16)
    weights: str | None = None

    def __post_init__(self) -> None:
        if self.arch not in get_args(Architecture):
            names = ", ".join(get_args(Architecture))
            raise GeolabelError(f"Unknown architecture {self.arch!r}; choose one of {names}.")
        if not 3 <= self.encoder_depth <= 5:
            raise GeolabelError(f"encoder_depth must be 3, 4 or 5, got {self.encoder_depth}.")


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to reproduce a checkpoint and to refuse a mismatched use of it."""

    model_version: str
    classes: tuple[str, ...]
    taxonomy_name: str
    taxonomy_version: str
    taxonomy_sha256: str
    bands: tuple[int, ...]
    band_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    config: dict[str, Any]
    tile_size: int
    epochs: int
    training_items_sha256: str
    n_training_items: int
    val_metrics: dict[str, Any] = field(default_factory=dict)
    temperature: float = 1.0
    input_scale: int = 1
    seed: int = 0
    train_config: dict[str, Any] = field(default_factory=dict)
    dtype: str = ""
    label_source: str = ""
    created_at: str = ""
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def model_config(self) -> ModelConfig:
        """The architecture as a :class:`ModelConfig`."""
        cfg = dict(self.config)
        cfg["decoder_channels"] = tuple(cfg.get("decoder_channels", ()))
        return ModelConfig(**cfg)

    def check_taxonomy(self, name: str, version: str | int, sha256: str | None = None) -> None:
        """Refuse a taxonomy other than the one the model was trained on.

        Raises:
            ModelMismatchError: Name, version or content differ.
        """
        same = self.taxonomy_name == name and str(self.taxonomy_version) == str(version)
        if same and sha256 is not None and sha256 != self.taxonomy_sha256:
            same = False
        if not same:
            raise ModelMismatchError(
                f"Model {self.model_version} was trained on taxonomy {self.taxonomy_name}"
                f" v{self.taxonomy_version}, but the project uses {name} v{version}. Retrain it on"
                " the current labels: `geolabel train PROJECT`."
            )


def library_versions() -> dict[str, str]:
    """Versions of what shapes a model's numbers."""
    import rasterio
    import segmentation_models_pytorch as smp

    return {
        "geolabel": __version__,
        "torch": torch.__version__,
        "segmentation_models_pytorch": smp.__version__,
        "numpy": np.__version__,
        "rasterio": rasterio.__version__,
        "python": platform.python_version(),
    }


def hash_ids(ids: Sequence[str]) -> str:
    """Order-independent SHA-256 of a set of item ids."""
    h = hashlib.sha256()
    for i in sorted(set(map(str, ids))):
        h.update(i.encode())
        h.update(b"\n")
    return h.hexdigest()


def check_model_config(config: ModelConfig) -> None:
    """Refuse an unknown encoder before any pixel is read.

    Raises:
        GeolabelError: The encoder is not one segmentation-models-pytorch knows (the message
            lists the light ones and where to find the rest).
    """
    import segmentation_models_pytorch as smp

    name = config.encoder
    if name.startswith("tu-"):
        import timm

        if name[3:] in timm.list_models():
            return
    elif name in smp.encoders.get_encoder_names():
        return
    raise GeolabelError(
        f"Unknown encoder {name!r}. Light ones that run well on a CPU: resnet18, mobilenet_v2,"
        " efficientnet-b0, tu-mobilenetv3_small_100; all names:"
        " segmentation_models_pytorch.encoders.get_encoder_names(), or tu-<timm model>."
    )


def build_model(config: ModelConfig, in_channels: int, n_classes: int) -> nn.Module:
    """Build a segmentation model from scratch (or from a local weights file).

    Args:
        config: Architecture.
        in_channels: Input bands.
        n_classes: Output classes.

    Returns:
        The model (CPU, float32).

    Raises:
        GeolabelError: The encoder is unknown, or the weights file is missing or does not fit.
    """
    import segmentation_models_pytorch as smp

    kwargs: dict[str, Any] = {
        "encoder_name": config.encoder,
        "encoder_weights": None,
        "encoder_depth": config.encoder_depth,
        "in_channels": in_channels,
        "classes": n_classes,
    }
    if config.arch in ("unet", "unetplusplus"):
        kwargs["decoder_channels"] = tuple(config.decoder_channels[: config.encoder_depth])
    makers = {
        "unet": smp.Unet,
        "unetplusplus": smp.UnetPlusPlus,
        "fpn": smp.FPN,
        "deeplabv3plus": smp.DeepLabV3Plus,
    }
    check_model_config(config)
    try:
        model: nn.Module = makers[config.arch](**kwargs)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise GeolabelError(
            f"Cannot build a {config.arch} with encoder {config.encoder!r} (depth"
            f" {config.encoder_depth}, {in_channels} bands, {n_classes} classes): {exc}"
        ) from exc
    if config.weights:
        path = Path(config.weights)
        if not path.exists():
            raise InputFileError(f"Weights file {path} does not exist.")
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            model.load_state_dict(state, strict=False)
        except RuntimeError as exc:
            raise ModelMismatchError(
                f"Weights in {path} do not fit a {config.arch}/{config.encoder} with"
                f" {in_channels} bands and {n_classes} classes: {exc}"
            ) from exc
    return model


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of an eval-mode model with every batch norm folded into the convolution before it.

    In eval mode a batch norm is an affine map per channel, so ``bn(conv(x))`` is one
    convolution with rescaled weights and a shifted bias: the same outputs (to float rounding)
    for one pass over the activations less. Each top-level part is traced with ``torch.fx``,
    which finds conv → batch-norm pairs anywhere in its graph; a part that cannot be traced
    (smp's Unet decoder) has the pairs folded inside its ``nn.Sequential`` blocks, whose order
    is their forward pass.

    Args:
        model: The model (left unchanged).

    Returns:
        The folded copy, in eval mode.
    """
    from torch.fx.experimental.optimization import fuse
    from torch.fx.proxy import TraceError
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    def fold_sequentials(module: nn.Module) -> None:
        for child in module.children():
            if isinstance(child, nn.Sequential):
                for i in range(len(child) - 1):
                    conv, bn = child[i], child[i + 1]
                    if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                        child[i] = fuse_conv_bn_eval(conv, bn)
                        child[i + 1] = nn.Identity()
            fold_sequentials(child)

    out = copy.deepcopy(model).eval()
    for name, child in list(out.named_children()):
        try:
            setattr(out, name, fuse(child))
        except (TraceError, TypeError, RuntimeError, NotImplementedError, AttributeError):
            fold_sequentials(child)
    return out


def _model_version(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().numpy().tobytes())
    return "m-" + h.hexdigest()[:12]


def save_checkpoint(
    directory: str | os.PathLike[str], model: nn.Module, card: ModelCard
) -> ModelCard:
    """Write weights and the model card into ``directory``; the version is the weights' hash.

    Returns:
        The card as written (with ``model_version``, ``created_at`` and ``versions`` filled in).
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / WEIGHTS_FILE)
    values = asdict(card)
    values["model_version"] = _model_version(model)
    values["created_at"] = values["created_at"] or datetime.now(UTC).isoformat(timespec="seconds")
    values["versions"] = values["versions"] or library_versions()
    written = ModelCard(**{k: _tupled(k, v) for k, v in values.items()})
    (out / CARD_FILE).write_text(json.dumps(asdict(written), indent=1, sort_keys=True) + "\n")
    return written


def _tupled(key: str, value: Any) -> Any:
    if key in ("classes", "bands", "band_names", "mean", "std") and isinstance(value, list):
        return tuple(value)
    return value


def load_card(directory: str | os.PathLike[str]) -> ModelCard:
    """The model card of a checkpoint directory, without loading the weights.

    Raises:
        InputFileError: The directory, its card or its weights file is missing, or the card
            is unreadable.
    """
    d = Path(directory)
    if not d.is_dir():
        raise InputFileError(
            f"Model directory {d} does not exist. Give the directory that `geolabel train`"
            " wrote (<project>_models/<model_version>)."
        )
    card_path, weights_path = d / CARD_FILE, d / WEIGHTS_FILE
    for p in (card_path, weights_path):
        if not p.exists():
            raise InputFileError(
                f"{d} is not a geolabel model: {p.name} is missing. Give the directory that"
                " `geolabel train` wrote."
            )
    try:
        raw = json.loads(card_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(
            f"{card_path} is not a readable model card ({exc}); retrain with `geolabel train`."
        ) from exc
    known = {f.name: f for f in fields(ModelCard)}
    required = [
        n for n, f in known.items() if f.default is MISSING and f.default_factory is MISSING
    ]
    absent = [n for n in required if n not in raw] if isinstance(raw, dict) else required
    if absent:
        raise InputFileError(
            f"{card_path} lacks {', '.join(absent)}; it was not written by `geolabel train`"
            " or is damaged. Retrain the model."
        )
    return ModelCard(**{k: _tupled(k, v) for k, v in raw.items() if k in known})


def load_checkpoint(directory: str | os.PathLike[str]) -> tuple[nn.Module, ModelCard]:
    """Load a checkpoint directory written by :func:`save_checkpoint`.

    Raises:
        InputFileError: The directory or one of its files is missing, unreadable or corrupt.
        ModelMismatchError: The weights do not fit the architecture the card describes.
    """
    card = load_card(directory)
    weights_path = Path(directory) / WEIGHTS_FILE
    model = build_model(card.model_config, len(card.bands), len(card.classes))
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise InputFileError(
            f"{weights_path} cannot be read ({exc}); the file is damaged. Retrain the model."
        ) from exc
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ModelMismatchError(
            f"The weights in {weights_path} do not fit the {card.model_config.arch}/"
            f"{card.model_config.encoder} the card describes; retrain the model."
        ) from exc
    model.eval()
    return model, card
