"""Train a tiny Llama with RaSA for a few steps, plainly or under DeepSpeed ZeRO-3 on CPU (gloo), and dump the losses.

    python tests/adapters/zero3_rasa.py --plain OUT.json
    torchrun --nproc_per_node 2 tests/adapters/zero3_rasa.py --zero3 [--eager] OUT.json

Every step uses the same global batch in both modes: under ZeRO-3 rank i takes rows [i*b, (i+1)*b) of it, and DeepSpeed
averages the two ranks' gradients, which equals the plain run's mean over the whole batch (all sequences have the same
length and every token is labelled). ``stage3_param_persistence_threshold = 0`` makes ZeRO-3 partition even the
smallest tensors, so the shared pools are really absent outside the forward that gathers them. ``--eager`` declares
the ZeRO-3 config to transformers before wrapping (``HfDeepSpeedConfig``), so RasaModel registers the external
parameters at injection; without it the layers register them lazily on first use. Rank 0 also saves the adapter
(gathered) and records the merged model's logits.
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))

STEPS, MICRO, WORLD, SEQ, LR = 6, 2, 2, 12, 1e-2


def build():
    from peft import get_peft_model

    from rasa.adapters import RasaConfig

    from adapter_models import LLAMA_TARGETS, tiny_llama

    base = tiny_llama(num_layers=3, hidden=32, seed=0).train()
    torch.manual_seed(1)
    model = get_peft_model(base, RasaConfig(r=4, k=1, alpha=8.0, target_modules=LLAMA_TARGETS, init_weights=False))
    return model


def batches():
    g = torch.Generator().manual_seed(2)
    return [torch.randint(0, 97, (WORLD * MICRO, SEQ), generator=g) for _ in range(STEPS)]


def probe():
    return torch.randint(0, 97, (2, SEQ), generator=torch.Generator().manual_seed(3))


def ds_config():
    return {
        "train_micro_batch_size_per_gpu": MICRO,
        "gradient_accumulation_steps": 1,
        "train_batch_size": MICRO * WORLD,
        "zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 0,
                              "stage3_max_live_parameters": 0, "stage3_prefetch_bucket_size": 0},
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def run_plain(out):
    model = build()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)
    losses = []
    for x in batches():
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=probe()).logits
    json.dump({"losses": losses, "probe_logits": logits.flatten()[:200].tolist()}, open(out, "w"))


def run_zero3(out, eager):
    import deepspeed

    deepspeed.init_distributed(dist_backend="gloo")
    rank = torch.distributed.get_rank()
    cfg = ds_config()
    keep = None
    if eager:
        from transformers.integrations import HfDeepSpeedConfig

        keep = HfDeepSpeedConfig(cfg)  # noqa: F841  (transformers now reports ZeRO-3 as enabled)
    model = build()
    registered = sum(len(getattr(m, "_external_params", {})) for m in model.modules())
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=opt, config=cfg)
    pool = model.base_model.rasa_shared_A["default"]["self_attn__q_proj"]
    partitioned = bool(hasattr(pool, "ds_id") and pool.data.numel() == 0)
    losses = []
    for x in batches():
        mine = x[rank * MICRO:(rank + 1) * MICRO]
        loss = engine(input_ids=mine, labels=mine).loss
        engine.backward(loss)
        engine.step()
        t = loss.detach().clone()
        torch.distributed.all_reduce(t)
        losses.append(t.item() / WORLD)
    engine.eval()
    with torch.no_grad():
        logits = engine(input_ids=probe()).logits
    registered_after = sum(len(getattr(m, "_external_params", {})) for m in model.modules()
                           if type(m).__name__ == "Linear" and hasattr(m, "rasa_d"))
    save_dir = out + ".adapter"
    params = [p for n, p in model.named_parameters() if "rasa_" in n]
    with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
        if rank == 0:
            model.save_pretrained(save_dir)
    if rank == 0:
        json.dump({"losses": losses, "probe_logits": logits.flatten()[:200].tolist(), "partitioned": partitioned,
                   "registered_at_injection": registered, "registered_after": registered_after,
                   "adapter_dir": save_dir}, open(out, "w"))
    torch.distributed.barrier()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--plain", action="store_true")
    mode.add_argument("--zero3", action="store_true")
    ap.add_argument("--eager", action="store_true")
    args = ap.parse_args()
    if args.plain:
        run_plain(args.out)
    else:
        run_zero3(args.out, args.eager)
