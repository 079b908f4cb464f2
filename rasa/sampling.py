"""A length-grouped training order that a resumed run reproduces exactly, at any world size.

The HF Trainer's ``group_by_length`` sampler draws each epoch's permutation from the global RNG when
the epoch's iterator is created. A run resumed in the middle of epoch e ≥ 2 creates that iterator
before the Trainer restores the checkpoint's RNG, so it walks another order than the uninterrupted
run did; and the sampler's mega-batch size is the per-process batch, so the order also depends on
the number of processes. Here the same grouping (``get_length_grouped_indices``) is drawn from a
generator seeded with ``(seed, epoch)``, in mega-batches of the global batch.
"""

from __future__ import annotations

import torch
from transformers.trainer_pt_utils import LengthGroupedSampler


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    def __init__(self, global_batch: int, dataset, seed: int):
        super().__init__(global_batch, dataset=dataset)
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.generator = torch.Generator().manual_seed(self.seed * 1000 + int(epoch))


class EpochSeededSamplerMixin:
    """For a Trainer subclass: ``group_by_length`` draws from :class:`EpochSeededLengthGroupedSampler`."""

    def _get_train_sampler(self, train_dataset=None):
        if self.args.train_sampling_strategy != "group_by_length":
            return super()._get_train_sampler(train_dataset)
        global_batch = (self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps
                        * self.args.world_size)
        return EpochSeededLengthGroupedSampler(global_batch, train_dataset or self.train_dataset,
                                               self.args.data_seed or self.args.seed)
