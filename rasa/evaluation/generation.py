"""Text generation for the benchmarks: Hugging Face ``generate`` (default) or vLLM.

``hf``
    Batched ``model.generate`` with left padding, on the base model, a PEFT adapter on top of it
    (unmerged, as the authors evaluated) or merged weights (``--merge``). Stop strings end a
    sequence early (``stop_strings``) and the text is cut at the first one. Sampling is seeded
    per batch (``seed + batch index``), so a run is reproducible for a given seed, batch size
    and device. Prompts are sorted by length (longest first) to waste less padding; outputs come
    back in the input order.
``vllm``
    For GPU clusters: vLLM on merged weights (an adapter is merged and saved to a temporary
    folder first; vLLM cannot run RaSA adapters). Same prompts, same decoding parameters. vLLM is
    imported only when chosen.

Every engine has a ``name`` that the benchmark CLIs write into their details files.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import dataclass

from tqdm import tqdm


@dataclass(frozen=True)
class DecodingConfig:
    max_new_tokens: int = 512
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = disabled (the bigcode harness default)
    n: int = 1  # completions per prompt
    batch_size: int = 8  # sequences per forward batch
    stop: tuple[str, ...] = ()
    seed: int = 0
    max_length: int | None = None  # cap on prompt + completion tokens (bigcode's max_length)
    # Return the whole decoded sequence (prompt + completion, special tokens skipped, nothing
    # cut), as the authors' math_eval.py decodes it, instead of the completion cut at EOS/stop.
    full_text: bool = False


def truncate_at_stop(text: str, stop: tuple[str, ...] | list[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any stop string."""
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if 0 <= i < cut:
                cut = i
    return text[:cut]


class HFEngine:
    name = "hf"

    def __init__(self, model, tokenizer, device: str | None = "cpu"):
        """``device=None``: the model is already placed (``device_map`` over several GPUs);
        inputs go to the device of its first layers."""
        self.model = model.to(device) if device is not None else model
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = device if device is not None else model.device

    def _eos_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        if ids is None:
            ids = self.tokenizer.eos_token_id
        ids = ids if isinstance(ids, (list, tuple)) else [ids]
        return {int(i) for i in ids if i is not None}

    def generate(self, prompts: list[str], cfg: DecodingConfig,
                 desc: str | None = "generating") -> list[list[str]]:
        """``cfg.n`` completions for each prompt (completion text cut at EOS and stop strings, or
        with ``cfg.full_text`` the whole decoded sequence)."""
        import torch

        lengths = [len(self.tokenizer(p).input_ids) for p in prompts]
        items = sorted(((i, j) for i in range(len(prompts)) for j in range(cfg.n)),
                       key=lambda ij: (-lengths[ij[0]], ij))
        batches = [items[k:k + cfg.batch_size] for k in range(0, len(items), cfg.batch_size)]
        outputs: list[list[str | None]] = [[None] * cfg.n for _ in prompts]
        eos = self._eos_ids()
        for b, batch in enumerate(tqdm(batches, desc=desc, disable=desc is None)):
            texts = [prompts[i] for i, _ in batch]
            enc = self.tokenizer(texts, return_tensors="pt", padding=True).to(self.device)
            width = enc.input_ids.shape[1]
            max_new = cfg.max_new_tokens
            if cfg.max_length is not None:
                max_new = max(1, min(max_new, cfg.max_length - max(lengths[i] for i, _ in batch)))
            kwargs = {"max_new_tokens": max_new, "pad_token_id": self.tokenizer.pad_token_id,
                      "do_sample": cfg.do_sample}
            if cfg.do_sample:
                kwargs.update(temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k)
            else:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            if cfg.stop:
                kwargs.update(stop_strings=list(cfg.stop), tokenizer=self.tokenizer)
            torch.manual_seed(cfg.seed + b)
            with torch.inference_mode():
                out = self.model.generate(**enc, **kwargs)
            for row, (i, j) in enumerate(batch):
                if cfg.full_text:
                    outputs[i][j] = self.tokenizer.decode(out[row].tolist(), skip_special_tokens=True)
                    continue
                ids = out[row, width:].tolist()
                for k, tok in enumerate(ids):
                    if tok in eos:
                        ids = ids[:k]
                        break
                text = self.tokenizer.decode(ids, skip_special_tokens=True)
                outputs[i][j] = truncate_at_stop(text, cfg.stop)
        return outputs  # type: ignore[return-value]

    def release(self) -> None:
        self.model = None


class VLLMEngine:
    name = "vllm"

    def __init__(self, model_dir: str, trained: str | None = None, dtype: str = "bfloat16",
                 seed: int = 0, tensor_parallel: int = 1):
        from vllm import LLM  # noqa: PLC0415 - optional dependency, GPU only

        from rasa.modeling import is_adapter_dir, load_model, load_tokenizer

        self._tmp = None
        path = model_dir
        if trained and not is_adapter_dir(trained):
            path = trained
        elif trained:
            self._tmp = tempfile.mkdtemp(prefix="rasa-merged-")
            load_model(model_dir, trained, dtype=dtype, merge=True).save_pretrained(self._tmp)
            load_tokenizer(model_dir).save_pretrained(self._tmp)
            path = self._tmp
        self.llm = LLM(model=path, dtype=dtype, seed=seed, tensor_parallel_size=tensor_parallel)

    @property
    def tokenizer(self):
        """The tokenizer vLLM encodes prompts with (as ``HFEngine.tokenizer``)."""
        return self.llm.get_tokenizer()

    def generate(self, prompts: list[str], cfg: DecodingConfig,
                 desc: str | None = "generating") -> list[list[str]]:
        from vllm import SamplingParams  # noqa: PLC0415

        tokenizer = self.llm.get_tokenizer()
        params = []
        for p in prompts:
            max_new = cfg.max_new_tokens
            if cfg.max_length is not None:
                max_new = max(1, min(max_new, cfg.max_length - len(tokenizer(p).input_ids)))
            params.append(SamplingParams(
                n=cfg.n, temperature=cfg.temperature if cfg.do_sample else 0.0,
                top_p=cfg.top_p if cfg.do_sample else 1.0,
                top_k=cfg.top_k if (cfg.do_sample and cfg.top_k > 0) else -1,
                max_tokens=max_new, stop=list(cfg.stop) or None, seed=cfg.seed))
        results = self.llm.generate(prompts, params, use_tqdm=desc is not None)
        if cfg.full_text:  # vLLM stops at EOS itself; prompt text + completion text
            return [[p + o.text for o in r.outputs] for p, r in zip(prompts, results)]
        return [[truncate_at_stop(o.text, cfg.stop) for o in r.outputs] for r in results]

    def release(self) -> None:
        self.llm = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)


def add_model_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--model", required=True, help="base model (hub id or folder)")
    g.add_argument("--trained", default=None,
                   help="adapter folder (PEFT/RaSA/MoRA) or full fine-tuned model; omit for the base model (epoch 0)")
    g.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    g.add_argument("--merge", action="store_true", help="hf backend: merge the adapter into the weights")
    g.add_argument("--backend", default="hf", choices=["hf", "vllm"])
    g.add_argument("--device", default="auto", help="hf backend: cpu, cuda, cuda:1, ... (auto: cuda if available)")
    g.add_argument("--device-map", default=None,
                   help="hf backend: spread the model over the visible GPUs while loading (`auto`; "
                        "for models larger than one GPU, e.g. 70B, Mixtral); overrides --device")
    g.add_argument("--seed", type=int, default=0, help="sampling seed (bigcode default 0)")
    g.add_argument("--tensor-parallel", type=int, default=1, help="vllm backend: GPUs per model")


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def engine_from_args(args: argparse.Namespace):
    if args.backend == "vllm":
        return VLLMEngine(args.model, args.trained, dtype=args.dtype, seed=args.seed,
                          tensor_parallel=args.tensor_parallel)
    from rasa.modeling import load_model, load_tokenizer

    model = load_model(args.model, args.trained, dtype=args.dtype, merge=args.merge,
                       device_map=args.device_map)
    device = None if args.device_map else _device(args.device)
    engine = HFEngine(model, load_tokenizer(args.model), device=device)
    if args.merge and args.trained:
        engine.name = "hf-merged"
    return engine
