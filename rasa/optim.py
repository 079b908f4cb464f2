"""The paper's optimizer: decoupled LionW (Chen et al. 2023) with β = (0.9, 0.95).

``lion_pytorch.Lion(decoupled_weight_decay=True)`` performs exactly the update of the authors'
``DecoupledLionW``: p ← p·(1 − (lr_t/lr_0)·wd); u = sign(β1·m + (1−β1)·g); p ← p − lr_t·u;
m ← β2·m + (1−β2)·g (checked in tests/test_train.py against that formula).
"""

from __future__ import annotations

from lion_pytorch import Lion
from transformers import Trainer


class LionTrainer(Trainer):
    """A Trainer whose optimizer is decoupled LionW over every trainable parameter.

    Under DeepSpeed the Trainer hands this optimizer to the engine as a client optimizer; the
    DeepSpeed configs in ``configs/deepspeed/`` set ``zero_force_ds_cpu_optimizer: false`` so that
    ZeRO-Offload keeps it instead of silently swapping in DeepSpeedCPUAdam.
    """

    def __init__(self, *args, lion_betas=(0.9, 0.95), **kwargs):
        self.lion_betas = tuple(lion_betas)
        super().__init__(*args, **kwargs)

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            params = [p for p in (model or self.model).parameters() if p.requires_grad]
            self.optimizer = Lion(params, lr=self.args.learning_rate, betas=self.lion_betas,
                                  weight_decay=self.args.weight_decay, decoupled_weight_decay=True)
        return self.optimizer
