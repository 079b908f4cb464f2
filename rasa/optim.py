"""The paper's optimizer: decoupled LionW (Chen et al. 2023) with β = (0.9, 0.95).

``lion_pytorch.Lion(decoupled_weight_decay=True)`` performs exactly the update of the authors'
``DecoupledLionW``: p ← p·(1 − (lr_t/lr_0)·wd); u = sign(β1·m + (1−β1)·g); p ← p − lr_t·u;
m ← β2·m + (1−β2)·g (checked in tests/test_train.py against that formula).

Under ZeRO-Offload the step runs on the host over fp32 copies of the trainable parameters. There
``lion_pytorch`` is a chain of torch ops on one thread per rank (torchrun sets
``OMP_NUM_THREADS=1``): about 10 s per step per 10⁹ parameters, hours per epoch for full
fine-tuning. DeepSpeed's own ``DeepSpeedCPULion`` (vectorised C++, OpenMP) takes that step instead,
with the node's CPUs shared among its processes. Same update for weight decay 0 (the paper's
setting; DeepSpeed decays by lr·wd rather than (lr_t/lr_0)·wd), with one difference: where
β1·m + (1−β1)·g is exactly 0 its kernel steps by −lr (−copysign(lr, +0)) where ``torch.sign``
gives 0 — an embedding row no token of the batch touched (FFT), or LoRA's A in the first step while
B = 0. The manifest's optimizer chain records which class stepped.
"""

from __future__ import annotations

import os

import torch
from lion_pytorch import Lion
from transformers import Trainer


def threads_per_process() -> int:
    """This node's CPUs (as the job's affinity allows) shared among its training processes."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    return max(1, len(os.sched_getaffinity(0)) // local)


class LionTrainer(Trainer):
    """A Trainer whose optimizer is decoupled LionW over every trainable parameter.

    Under DeepSpeed the Trainer hands this optimizer to the engine as a client optimizer; the
    DeepSpeed configs in ``configs/deepspeed/`` set ``zero_force_ds_cpu_optimizer: false`` so that
    ZeRO-Offload keeps it instead of silently swapping in DeepSpeedCPUAdam. With the optimizer
    offloaded it is DeepSpeed's CPU Lion (module docstring).
    """

    def __init__(self, *args, lion_betas=(0.9, 0.95), **kwargs):
        self.lion_betas = tuple(lion_betas)
        super().__init__(*args, **kwargs)

    def _offloaded(self) -> bool:
        config = getattr(self.args, "hf_deepspeed_config", None)
        return self.is_deepspeed_enabled and config is not None and config.is_offload()

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            params = [p for p in (model or self.model).parameters() if p.requires_grad]
            if self._offloaded():
                from deepspeed.ops.lion import DeepSpeedCPULion

                torch.set_num_threads(threads_per_process())
                self.optimizer = DeepSpeedCPULion(params, lr=self.args.learning_rate,
                                                  betas=self.lion_betas,
                                                  weight_decay=self.args.weight_decay)
            else:
                self.optimizer = Lion(params, lr=self.args.learning_rate, betas=self.lion_betas,
                                      weight_decay=self.args.weight_decay,
                                      decoupled_weight_decay=True)
        return self.optimizer
