"""Helpers for the course "Freezing Layers in PyTorch".

They hide boilerplate (data, training loops, timing, plots, widgets), never the freezing
line being taught: the notebooks write that out themselves.
"""
from .data import SOURCE_CLASSES, TARGET_CLASSES, Task, apply_shift, load_digits, make_task
from .freezing import (
    LayerNameError,
    NothingTrainableError,
    audit,
    block_names,
    changed_since,
    freeze,
    freeze_to,
    keep_frozen_bn_eval,
    param_groups,
    set_bn_eval,
    snapshot,
    to_frozen_batchnorm,
    trainable_parameters,
    trainable_summary,
    unfreeze,
    unfreeze_next,
    weight_change_by_block,
)
from .models import BLOCK_NAMES, CourseCNN, load_pretrained, make_head, new_head, pretrained_with_new_head
from .paths import ChecksumError
from .training import History, evaluate, get_device, make_optimizer, predict, seed_everything, train

__version__ = "1.0.0"
