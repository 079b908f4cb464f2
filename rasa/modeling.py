"""Loading models, tokenizers and trained artefacts through one code path at every scale.

A *model directory* is anything ``from_pretrained`` accepts: a hub id on the cluster, or a local
folder (the tiny default builds its models into ``work/models/<name>``). A *trained artefact* is
the folder a training run writes per epoch: a PEFT adapter (``adapter_config.json``) on top of the
base model, or a full model (full fine-tuning).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def is_adapter_dir(path: str | Path) -> bool:
    return (Path(path) / "adapter_config.json").is_file()


def load_tokenizer(model_dir: str, revision: str | None = None):
    """Tokenizer with a pad token (EOS, as the authors' code) and left padding for generation.

    Llama's tokenizer puts BOS before every text; one that does not (SmolLM2's, the tiny models')
    is told to, so generation prompts start like the training sequences (:func:`rasa.data.encode`).
    """
    tok = AutoTokenizer.from_pretrained(model_dir, revision=revision)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if tok.bos_token is not None and tok("x").input_ids[:1] != [tok.bos_token_id]:
        tok.add_bos_token = True
    tok.padding_side = "left"
    return tok


def load_model(model_dir: str, trained: str | None = None, dtype: str = "float32",
               revision: str | None = None, merge: bool = False, device_map: str | None = None):
    """The base model, optionally with a trained artefact on top, in eval mode.

    ``trained`` is an adapter folder (loaded with ``PeftModel.from_pretrained``; RaSA and MoRA are
    registered with PEFT by importing :mod:`rasa.adapters`) or a full fine-tuned model folder.
    ``merge=True`` folds an adapter into the weights (``merge_and_unload``), as vLLM needs.
    ``device_map`` (e.g. ``auto``) places the layers over the visible GPUs while loading (a model
    larger than one GPU); without it the model is loaded on the CPU.
    """
    torch_dtype = DTYPES[dtype]
    if trained and not is_adapter_dir(trained):
        return AutoModelForCausalLM.from_pretrained(trained, dtype=torch_dtype,
                                                    device_map=device_map).eval()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype, revision=revision,
                                                 device_map=device_map)
    if trained:
        from peft import PeftModel

        import rasa.adapters  # noqa: F401  (registers RaSA and MoRA with PEFT)

        model = PeftModel.from_pretrained(model, trained)
        if merge:
            model = model.merge_and_unload()
    return model.eval()
