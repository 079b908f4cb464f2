"""A length-grouped training order that a resumed run reproduces exactly.

The HF Trainer's ``group_by_length`` sampler (the authors' setting) draws each epoch's permutation
from the global RNG when the epoch's iterator is created. A run resumed in the middle of epoch
e ≥ 2 creates that iterator before the Trainer restores the checkpoint's RNG, so it walks another
order than the uninterrupted run did. Here the same grouping (``get_length_grouped_indices``, with
the Trainer's own mega-batch unit: the per-process batch of one optimizer step) is drawn from a
generator seeded with ``(seed, epoch)`` instead.

As in the Trainer, that unit depends on the number of processes, so once the mega-batch cap of 50
units binds (large datasets), a run resumed at another world size groups its remaining epochs
differently from an uninterrupted run; it still sees every example once per epoch.
"""

from __future__ import annotations

import torch
from transformers.trainer_pt_utils import LengthGroupedSampler


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    def __init__(self, batch_size: int, dataset, seed: int):
        super().__init__(batch_size, dataset=dataset)
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.generator = torch.Generator().manual_seed(self.seed * 1000 + int(epoch))


class EpochSeededSamplerMixin:
    """For a Trainer subclass: ``group_by_length`` draws from :class:`EpochSeededLengthGroupedSampler`."""

    def _get_train_sampler(self, train_dataset=None):
        if self.args.train_sampling_strategy != "group_by_length":
            return super()._get_train_sampler(train_dataset)
        return EpochSeededLengthGroupedSampler(
            self.args.train_batch_size * self.args.gradient_accumulation_steps,
            train_dataset or self.train_dataset, self.args.data_seed or self.args.seed)
