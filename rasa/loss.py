"""How the training loss is averaged over a global batch (``training.loss_averaging``).

``micro_batch`` (default; the authors' transformers 4.43 + accelerate 0.33): each micro-batch's
loss is the mean over its own label tokens; it is divided by the configured number of
accumulation steps (a constant, so the short last step of an epoch counts less, as theirs did)
and the processes' gradients are averaged. A micro-batch with few label tokens thus weighs as much
as one with many.

``tokens`` (transformers ≥ 4.46, our alternative): the sum of token losses over the whole global
batch (all micro-batches and processes) divided by its number of label tokens: every token
weighs the same.

The paper's numbers were made with ``micro_batch``; on the same data the two give different
gradients wherever micro-batches differ in their number of label tokens.
"""

from __future__ import annotations

from rasa.optim import LionTrainer

AVERAGING = ("micro_batch", "tokens")


class RecipeTrainer(LionTrainer):
    """The paper's LionW trainer with a choice of loss averaging (see the module docstring)."""

    def __init__(self, *args, loss_averaging: str = "micro_batch", **kwargs):
        if loss_averaging not in AVERAGING:
            raise ValueError(f"training.loss_averaging must be one of {list(AVERAGING)}, got {loss_averaging!r}")
        self.loss_averaging = loss_averaging
        super().__init__(*args, **kwargs)
        if loss_averaging == "micro_batch":
            # compute_loss below returns a loss already divided by the accumulation steps
            self.loss_is_scaled_for_ga = True

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.loss_averaging == "tokens":
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        # Without num_items_in_batch the model returns the mean over this micro-batch's tokens.
        loss, outputs = super().compute_loss(model, inputs, True, None)
        if model.training:
            loss = loss / self.args.gradient_accumulation_steps
        return (loss, outputs) if return_outputs else loss
