"""Training options: the reference defaults per family and their validation.

Every option has a default (the reference hyper-parameters: Adam 2e-4, betas (0.5, 0.999), constant learning
rate for the first half of training then linear decay to zero, L1 weight 100, cycle weight 10, identity 0.5,
image pool 50, discriminator loss halved); ``None`` passed by a caller means "use the default", which is how
``--resume`` tells options the user gave from options the user left alone.
"""

from __future__ import annotations

import math
from typing import Any

from ganrt.families import FAMILIES, GAN_MODES, NORMS, REGISTRY

# Options every family takes (steps / epochs / data handled separately).
COMMON: dict[str, Any] = {
    "batch_size": 1,
    "lr": 2e-4,
    "beta1": 0.5,
    "beta2": 0.999,
    # Fraction of the run with a constant learning rate before the linear decay to zero (reference: 100 + 100
    # epochs).
    "decay_start": 0.5,
    "seed": 0,
    "channels": None,  # 3, or 1 for the gray built-ins (faces, digits)
}

# The dataset layout each family reads.
DATA_KIND = {name: fam.data_kind for name, fam in REGISTRY.items()}
GRAY_BUILTINS = ("builtin:faces", "builtin:digits")


class TrainError(ValueError):
    """A training request that cannot run as given (bad option, run-directory conflict, ...)."""


def defaults(family: str) -> dict[str, Any]:
    if family not in FAMILIES:
        raise TrainError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    return {**COMMON, **REGISTRY[family].train_defaults}


def _positive(options: dict[str, Any], name: str, kind: type, minimum: float = 1) -> None:
    value = options[name]
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise TrainError(f"{name} must be {'a number' if kind is float else 'an integer'}, got {value!r}")
    if not math.isfinite(value):
        raise TrainError(f"{name} must be a finite number, got {value}")
    if value < minimum:
        raise TrainError(f"{name} must be >= {minimum}, got {value}")


def resolve(family: str, given: dict[str, Any], data: str) -> dict[str, Any]:
    """Merge the caller's options (``None`` = default) into the family defaults and validate them."""
    options = defaults(family)
    unknown = sorted(set(given) - set(options))
    if unknown:
        raise TrainError(f"unknown option(s) for {family}: {', '.join(unknown)}; {family} takes "
                         f"{', '.join(sorted(options))}")
    options.update({k: v for k, v in given.items() if v is not None})
    if options["channels"] is None:
        options["channels"] = 1 if data in GRAY_BUILTINS else 3
    if options["channels"] not in (1, 3):
        raise TrainError(f"channels must be 1 or 3, got {options['channels']!r}")
    for name in ("batch_size", "image_size", "ngf", "ndf", "latent_dim", "n_layers_D"):
        if name in options:
            _positive(options, name, int)
    for name in ("lr", "lambda_l1", "lambda_cycle", "lambda_identity", "lambda_gp", "beta"):
        if name in options:
            _positive(options, name, float, 0)
    if "pool_size" in options:
        _positive(options, "pool_size", int, 0)
    if not (0 <= options["beta1"] < 1 and 0 <= options["beta2"] < 1):
        raise TrainError(f"Adam betas must lie in [0, 1), got ({options['beta1']}, {options['beta2']})")
    if not 0 <= options["decay_start"] <= 1:
        raise TrainError(f"decay_start must lie in [0, 1], got {options['decay_start']}")
    if "gan_mode" in options and options["gan_mode"] not in GAN_MODES:
        raise TrainError(f"gan_mode must be one of {', '.join(GAN_MODES)}, got {options['gan_mode']!r}")
    if "norm" in options and options["norm"] not in NORMS:
        raise TrainError(f"norm must be one of {', '.join(NORMS)}, got {options['norm']!r}")
    if family == "pix2pix":
        if options["netG"] is None:
            options["netG"] = f"unet_{options['image_size']}"
        if options["direction"] not in ("AtoB", "BtoA"):
            raise TrainError(f"direction must be AtoB or BtoA, got {options['direction']!r}")
    if not isinstance(options["seed"], int) or options["seed"] < 0:
        raise TrainError(f"seed must be a non-negative integer, got {options['seed']!r}")
    return options


def lr_factor(step: int, total: int, decay_start: float) -> float:
    """Learning-rate multiplier for (0-based) ``step`` of ``total``: 1 until ``decay_start * total`` steps,
    then linear towards 0 (the reference's ``1 - max(0, epoch - n_epochs) / (n_epochs_decay + 1)`` per step)."""
    constant = int(total * decay_start)
    return 1.0 - max(0, step - constant) / float(total - constant + 1)
