"""Fine-tune one run of the study: the paper's recipe (App. C) on the HF Trainer.

One step, top to bottom: a micro-batch of alpaca-formatted, masked sequences (``rasa.data``)
goes through the base model with the method's adapter (``rasa.methods``); the loss is averaged
as ``training.loss_averaging`` says (``rasa.loss``) over the global batch (192 sequences in the
paper, gradient accumulation derived from the number of processes); decoupled LionW
(``rasa.optim``) steps with a cosine schedule after a 10 % warm-up.

Writes, under ``--out``: ``weights/epoch-<e>/`` (the weights after each epoch), ``losses.csv``
(loss per optimizer step) and ``manifest.json``. Resumable checkpoints go to ``--checkpoints``,
which Snakemake never deletes (it deletes a failed job's outputs); each epoch's weights are staged
there too and moved into ``--out`` only once the whole run has finished. A rerun continues from
the last complete checkpoint (``rasa.checkpointing``).

CLI: ``python -m rasa.train --settings JSON --data FILE --checkpoints DIR --out DIR``
(``--settings`` is the run's :class:`~rasa.run_settings.RunSettings` as JSON).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import shutil
import sys
from pathlib import Path

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, TrainingArguments, set_seed

from rasa import checkpointing, data, manifest, methods, preemption
from rasa.io import atomic_open
from rasa.loss import RecipeTrainer
from rasa.modeling import DTYPES, load_tokenizer
from rasa.run_settings import RunSettings
from rasa.sampling import EpochSeededSamplerMixin


class Trainer(EpochSeededSamplerMixin, RecipeTrainer):
    """The recipe's Trainer (LionW, ``training.loss_averaging``) with a resumable length-grouped
    data order (``rasa.sampling``)."""


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def check_world_size(s: RunSettings, processes: int) -> None:
    """The processes really started must be the run's nodes × processes per node."""
    expected = s.nodes * s.procs_per_node
    if processes != expected:
        raise ValueError(
            f"{s.run_id}: {processes} process(es) started, but the model's config asks for "
            f"nodes × procs_per_node = {s.nodes} × {s.procs_per_node} = {expected}; launch "
            "with `python -m rasa.launch --nodes N --procs-per-node P` inside a job of N nodes.")


def accumulation_steps(global_batch: int, micro_batch: int, processes: int) -> int:
    """Gradient accumulation that keeps the global batch fixed; refuses a batch that cannot split."""
    per_step = micro_batch * processes
    if global_batch % per_step:
        raise ValueError(
            f"training.global_batch={global_batch} is not divisible by micro_batch × processes = "
            f"{micro_batch} × {processes}; choose a global batch that is a multiple of {per_step}."
        )
    return global_batch // per_step


def build_dataset(records, tokenizer, s: RunSettings) -> Dataset:
    encoded = [data.encode(r[s.question], r[s.answer], tokenizer, s.max_length, s.mask)
               for r in records]
    return Dataset.from_list(encoded)


def optimizer_chain(optimizer) -> list[str]:
    """Classes from the Trainer's optimizer down to the one that really updates the weights
    (accelerate's wrapper, DeepSpeed's ZeRO optimizer, ...): under ZeRO-Offload DeepSpeed can
    silently swap the client's LionW for its CPU Adam, so the manifest records what stepped."""
    chain = [optimizer]
    while hasattr(chain[-1], "optimizer"):
        chain.append(chain[-1].optimizer)
    return [f"{type(o).__module__}.{type(o).__name__}" for o in chain]


def write_losses(log_history: list[dict], steps_per_epoch: int, path: Path, run_id: str) -> None:
    with atomic_open(path) as f:
        w = csv.writer(f)
        w.writerow(["run_id", "step", "epoch", "loss"])
        for entry in log_history:
            if "loss" in entry and "step" in entry:
                step = entry["step"]
                w.writerow([run_id, step, f"{step / steps_per_epoch:.6g}", f"{entry['loss']:.8g}"])


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Fine-tune one run of the study.")
    parser.add_argument("--settings", required=True, help="the run's RunSettings as JSON")
    parser.add_argument("--data", required=True, help="the sampled training set (.jsonl)")
    parser.add_argument("--checkpoints", required=True)
    parser.add_argument("--out", required=True)
    return parser.parse_args(argv)


def training_arguments(s: RunSettings, ckpt_dir: Path, grad_accum: int, on_gpu: bool) -> TrainingArguments:
    """The recipe as HF TrainingArguments (creating them joins the process group)."""
    return TrainingArguments(
        output_dir=str(ckpt_dir),
        num_train_epochs=s.epochs,
        per_device_train_batch_size=s.micro_batch,
        gradient_accumulation_steps=grad_accum,
        learning_rate=s.lr,
        weight_decay=s.weight_decay,
        lr_scheduler_type="cosine",
        warmup_steps=s.warmup_ratio,
        max_grad_norm=1.0,
        logging_steps=1,
        save_strategy="epoch",
        save_total_limit=2,  # resume needs only the latest; epoch weights are exported separately
        seed=s.seed,
        data_seed=s.seed,
        train_sampling_strategy="group_by_length" if s.group_by_length else "random",
        gradient_checkpointing=s.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if s.gradient_checkpointing else None,
        bf16=s.dtype == "bfloat16",
        use_cpu=not on_gpu,
        deepspeed=s.deepspeed,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )


def adapted_model(s: RunSettings, on_gpu: bool, total_steps: int):
    """The base model (float32 on CPU when bfloat16 is asked) with the method's adapter."""
    model = AutoModelForCausalLM.from_pretrained(
        s.model_path, revision=s.revision,
        dtype=DTYPES["float32" if s.dtype == "bfloat16" and not on_gpu else s.dtype])
    model.config.use_cache = False
    set_seed(s.seed)  # the adapter's initialisation depends on the seed alone
    model = methods.apply_method(model, s.method, s.r, k=s.k, alpha=s.alpha, dropout=s.dropout,
                                 target_modules=list(s.target_modules), total_steps=total_steps)
    if s.gradient_checkpointing and hasattr(model, "enable_input_require_grads"):
        model.enable_input_require_grads()
    return model


def write_run_manifest(path: Path, s: RunSettings, args, records, trainer, callback, counts: dict,
                       hosts: list, ckpt_dir: Path, tokens: int) -> None:
    """What the run was and what it cost: settings, provenance, data, hardware, time."""
    seconds = callback.elapsed_seconds()
    hw = manifest.hardware()
    gpus = hw.get("gpus_per_node", 0) * hw["nodes"]
    manifest.write_manifest(path, {
        "run_id": s.run_id,
        "settings": s.to_dict(),
        "model_source": manifest.model_source(s.model_path),
        "git_commit": manifest.git_commit(Path(__file__).parent),
        "packages": manifest.package_versions(),
        "data": {"path": args.data, "records": len(records),
                 "sha256": data.content_hash(records), "sampling": data.SAMPLING_RULE},
        "hardware": hw,
        "hosts": hosts,  # one per rank
        "resumes": checkpointing.resume_history(ckpt_dir),
        "trainable_params": counts["trainable"],
        "extra_params": counts["extra"],
        "optimizer_steps": trainer.state.global_step,
        "optimizer": optimizer_chain(trainer.optimizer),
        "train_hours": seconds / 3600,
        "gpu_hours": seconds / 3600 * gpus,
        "peak_mem_gb": manifest.peak_memory_gb(),
        "tokens_per_s": tokens / seconds,
    })


def main(argv=None) -> int:
    args = parse_args(argv)
    s = RunSettings.from_json(args.settings)
    out, ckpt_dir = Path(args.out), Path(args.checkpoints)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    if not torch.cuda.is_available():
        torch.set_num_threads(int(os.environ.get("RASA_THREADS", "1")))

    # Everything that can be wrong is checked before the model is loaded.
    records = data.read_records(args.data)
    data.check_fields(records, [s.question, s.answer], args.data)
    check_world_size(s, world_size())
    grad_accum = accumulation_steps(s.global_batch, s.micro_batch, world_size())
    steps_per_epoch = math.ceil(len(records) / s.global_batch)

    on_gpu = torch.cuda.is_available()
    targs = training_arguments(s, ckpt_dir, grad_accum, on_gpu)
    resume = checkpointing.clean_for_resume(ckpt_dir, targs.process_index == 0)
    if resume and s.deepspeed:
        checkpointing.check_deepspeed_world_size(resume, world_size())
    hosts = manifest.rank_hosts()
    if resume and targs.process_index == 0:
        checkpointing.record_resume(ckpt_dir, resume, world_size(), hosts)
    policy = preemption.StopPolicy(s.checkpoint_minutes, s.deadline_margin_minutes,
                                   preemption.slurm_deadline() if targs.process_index == 0 else None)
    tokenizer = load_tokenizer(s.model_path, revision=s.revision)
    tokenizer.padding_side = "right"
    train_set = build_dataset(records, tokenizer, s)
    model = adapted_model(s, on_gpu, steps_per_epoch * s.epochs)
    counts = methods.parameter_counts(model, s.method)

    exports = ckpt_dir / "exports"
    callback = checkpointing.CheckpointCallback(exports, steps_per_epoch, policy, resumed_from=resume)
    trainer = Trainer(
        model=model,
        args=targs,
        train_dataset=train_set,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, pad_to_multiple_of=8,
                                             label_pad_token_id=data.IGNORE),
        callbacks=[callback, *methods.training_callbacks(model, s.method)],
        lion_betas=s.lion_betas,
        loss_averaging=s.loss_averaging,
    )
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    checkpointing.leave_process_group()
    if callback.preempted:
        print(f"{s.run_id}: stopped at step {trainer.state.global_step} (SIGTERM or deadline); "
              "rerun to continue from the saved checkpoint", file=sys.stderr)
        return 143
    if not trainer.is_world_process_zero():
        return 0

    missing = [e for e in range(1, s.epochs + 1) if not (exports / f"epoch-{e}").is_dir()]
    if missing:
        raise RuntimeError(f"{s.run_id}: no exported weights for epochs {missing}")
    write_losses(trainer.state.log_history, steps_per_epoch, out / "losses.csv", s.run_id)
    tokens = sum(len(x) for x in train_set["input_ids"]) * s.epochs
    write_run_manifest(out / "manifest.json", s, args, records, trainer, callback, counts, hosts,
                       ckpt_dir, tokens)
    shutil.rmtree(out / "weights", ignore_errors=True)
    exports.rename(out / "weights")
    shutil.rmtree(ckpt_dir)  # finished: a forced rerun trains afresh instead of resuming at the end
    return 0


if __name__ == "__main__":
    sys.exit(main())
