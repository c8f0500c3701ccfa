"""Helpers for the course "Freezing Layers in PyTorch".

They hide boilerplate (data, training loops, timing, plots, widgets), never the freezing
line being taught: the notebooks write that out themselves.
"""

from .batchnorm import from_frozen_batchnorm2d, keep_frozen_bn_eval, set_bn_eval, to_frozen_batchnorm2d
from .changes import changed_since, snapshot, weight_change_by_block
from .data import SOURCE_CLASSES, TARGET_CLASSES, Task, apply_shift, batches, load_digits, low_contrast, make_task
from .experiment import NO_CLEAR_DIFFERENCE, Arm, Budget, Comparison, Paired, Run, compare, compare_each, merge
from .freezing import TrainableSummary, freeze, freeze_to, trainable_summary, unfreeze
from .layers import BATCHNORM_TYPES, OWN, STEM, LayerNameError, block_names, blocks
from .models import (
    COURSE_CNN_BACKBONE,
    COURSE_CNN_BLOCKS,
    CourseCNN,
    build_head,
    load_pretrained,
    pretrained_with_new_head,
    replace_head,
)
from .optim_groups import (
    AuditReport,
    NothingTrainableError,
    audit,
    param_groups,
    trainable_parameters,
    unfreeze_next,
)
from .paths import ChecksumError
from .training import (
    History,
    eval_mode,
    evaluate,
    extract_features,
    get_device,
    make_optimizer,
    predict,
    recalibrate_bn,
    seed_everything,
    train,
    train_mode,
    train_step,
)

__version__ = "1.0.0"  # the one version source: pyproject.toml reads it

__all__ = [
    "BATCHNORM_TYPES",
    "COURSE_CNN_BACKBONE",
    "COURSE_CNN_BLOCKS",
    "NO_CLEAR_DIFFERENCE",
    "OWN",
    "SOURCE_CLASSES",
    "STEM",
    "TARGET_CLASSES",
    "Arm",
    "AuditReport",
    "Budget",
    "ChecksumError",
    "Comparison",
    "CourseCNN",
    "History",
    "LayerNameError",
    "NothingTrainableError",
    "Paired",
    "Run",
    "Task",
    "TrainableSummary",
    "apply_shift",
    "audit",
    "batches",
    "block_names",
    "blocks",
    "build_head",
    "changed_since",
    "compare",
    "compare_each",
    "eval_mode",
    "evaluate",
    "extract_features",
    "freeze",
    "freeze_to",
    "from_frozen_batchnorm2d",
    "get_device",
    "keep_frozen_bn_eval",
    "load_digits",
    "load_pretrained",
    "low_contrast",
    "make_optimizer",
    "make_task",
    "merge",
    "param_groups",
    "predict",
    "pretrained_with_new_head",
    "recalibrate_bn",
    "replace_head",
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
