"""One VQ-VAE training run, the core every layer above uses (no ray).

    python -m tune_vqvae.train --loss gmsd --weight 0.5 --epochs 2 --data builtin

Inside (private modules behind this public surface):

    _trainer   TrainConfig, Trainer (epochs, eval, TensorBoard, checkpoints), load_state,
               pick_device, compile_own, check_image_size
    _fused     FusedTrainer: G weights of one loss as one grouped model
    _cli       the command line (flags -> TrainConfig, run directory, resume)
    faults     fault injection the trainables call before each epoch (tests' --faults)
"""

from ._fused import FusedTrainer, fuse_state_dicts, member_state_dict
from ._trainer import (
    COMPILE_MODES,
    TRAIN_STATS,
    TrainConfig,
    Trainer,
    check_image_size,
    compile_mode,
    compile_own,
    load_state,
    min_image_size,
    pick_device,
)

__all__ = ["COMPILE_MODES", "TRAIN_STATS", "TrainConfig", "Trainer", "check_image_size",
           "compile_mode", "compile_own", "load_state", "min_image_size", "pick_device",
           "FusedTrainer", "fuse_state_dicts", "member_state_dict"]
