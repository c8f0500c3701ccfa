"""Helpers for the course "Freezing Layers in PyTorch".

They hide boilerplate (data, training loops, timing, plots, widgets), never the freezing
line being taught: the notebooks write that out themselves.
"""

from .batchnorm import from_frozen_batchnorm2d, keep_frozen_bn_eval, set_bn_eval, to_frozen_batchnorm2d
from .changes import changed_since, snapshot, weight_change_by_block
from .data import SOURCE_CLASSES, TARGET_CLASSES, Task, apply_shift, load_digits, make_task
from .freezing import freeze, freeze_to, trainable_summary, unfreeze
from .layers import BATCHNORM_TYPES, OWN, LayerNameError, block_names
from .models import (
    COURSE_CNN_BACKBONE,
    COURSE_CNN_BLOCKS,
    CourseCNN,
    build_head,
    load_pretrained,
    pretrained_with_new_head,
    replace_head,
)
from .optim_groups import NothingTrainableError, audit, param_groups, trainable_parameters, unfreeze_next
from .paths import ChecksumError
from .training import (
    History,
    eval_mode,
    evaluate,
    get_device,
    make_optimizer,
    predict,
    seed_everything,
    train,
    train_mode,
    train_step,
)

__version__ = "1.0.0"  # the one version source: pyproject.toml reads it

__all__ = [
    "COURSE_CNN_BACKBONE",
    "BATCHNORM_TYPES",
    "COURSE_CNN_BLOCKS",
    "OWN",
    "SOURCE_CLASSES",
    "TARGET_CLASSES",
    "ChecksumError",
    "CourseCNN",
    "History",
    "LayerNameError",
    "NothingTrainableError",
    "Task",
    "apply_shift",
    "audit",
    "block_names",
    "changed_since",
    "eval_mode",
    "evaluate",
    "freeze",
    "freeze_to",
    "from_frozen_batchnorm2d",
    "get_device",
    "keep_frozen_bn_eval",
    "load_digits",
    "load_pretrained",
    "build_head",
    "make_optimizer",
    "make_task",
    "replace_head",
    "param_groups",
    "predict",
    "pretrained_with_new_head",
    "seed_everything",
    "set_bn_eval",
    "snapshot",
    "to_frozen_batchnorm2d",
    "train",
    "train_mode",
    "train_step",
    "trainable_parameters",
    "trainable_summary",
    "unfreeze",
    "unfreeze_next",
    "weight_change_by_block",
]
