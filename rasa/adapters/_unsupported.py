"""PEFT features that RaSA and MoRA refuse with a clear error instead of failing obscurely.

- Mixed-adapter batches (``model(x, adapter_names=[...])``): ``PeftModel`` strips ``adapter_names``
  before the layers run and hands it only to the tuner's ``_enable_peft_forward_hooks``; without
  this refusal every row would silently run the active adapter.
- ``add_weighted_adapter``: without this method PEFT falls through to the base model and raises an
  ``AttributeError`` about it.
"""

from __future__ import annotations

from contextlib import contextmanager


class UnsupportedFeatures:
    """Mixin for a ``BaseTuner``; ``method_name`` names the method in the messages."""

    method_name = "this adapter"

    @contextmanager
    def _enable_peft_forward_hooks(self, *args, **kwargs):
        if kwargs.get("adapter_names") is not None:
            raise ValueError(
                f"{self.method_name} does not support mixed-adapter batches (adapter_names="
                f"{kwargs['adapter_names']!r}): run one batch per adapter after "
                "model.set_adapter(name), or use model.disable_adapter() for base-model rows."
            )
        yield

    def add_weighted_adapter(self, *args, **kwargs):
        raise NotImplementedError(
            f"add_weighted_adapter is not supported for {self.method_name}. Load the adapters side by "
            "side and switch with set_adapter(name), or merge them one after another into the base "
            "weights (merge_adapter / merge_and_unload)."
        )
