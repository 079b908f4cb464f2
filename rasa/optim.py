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

    Under DeepSpeed with an ``optimizer`` block (``configs/deepspeed/``: ``"type": "Lion"``) this
    optimizer is not built: DeepSpeed steps with its own Lion, ``DeepSpeedCPULion`` on offloaded
    state (vectorised C++ over all the job's CPUs; ``lion_pytorch`` on the host ran one thread per
    rank) or ``FusedLion`` on GPUs. Same update for weight decay 0, the paper's setting (DeepSpeed
    decays by lr·wd, the authors by (lr_t/lr_0)·wd), with one difference: where β1·m + (1−β1)·g
    is exactly 0, DeepSpeed's CPU kernel steps by −lr (−copysign(lr, +0)) and ``torch.sign``
    by 0 — an embedding row no token of the batch touched (FFT), or LoRA's A in the first step
    while B = 0. The manifest's optimizer chain records which class stepped. Without such a block DeepSpeed would take this optimizer as a client optimizer
    and, under ZeRO-Offload, refuse it or swap in its CPU Adam.
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
