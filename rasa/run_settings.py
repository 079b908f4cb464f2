"""The training contract: everything ``rasa.train`` needs to fine-tune one run, typed and checked.

:func:`build` resolves a run of the study (a :class:`~rasa.runs.RunSpec`) against the validated
config: the method's learning rate, the task's α, the model's micro batch, precision, DeepSpeed
config and process layout. The ``train`` rule passes the result to ``rasa.train`` as
``--settings JSON`` (:meth:`RunSettings.to_json`); training reads it back with
:meth:`RunSettings.from_json` and records it in the run's manifest. Changing a value changes the
rule's params, so Snakemake reruns exactly the runs it affects.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass

from rasa.resources import model_dtype
from rasa.runs import RunSpec, run_id


@dataclass(frozen=True)
class RunSettings:
    """One run's resolved training settings; field groups as in the config they come from."""

    # Identity (the run id and its parts, from rasa.runs).
    run_id: str
    model: str
    paper_model: str  # models.<m>.paper_name: the paper's column this model stands in for
    method: str
    r: int  # 0 for full fine-tuning
    k: int  # shared ranks per layer; RaSA only
    epochs: int
    fraction: float  # share of the training set sampled
    seed: int  # the config's seed: data order, adapter initialisation

    # The base model (models.<m>).
    model_path: str  # built or downloaded folder, or a local path
    revision: str | None  # hub revision; None for local and built models
    target_modules: tuple[str, ...]
    dtype: str  # models.<m>.dtype, else training.dtype

    # The data (datasets.<d> of the run's task, training.*).
    question: str  # the dataset's field holding the instruction
    answer: str  # ... and the response
    max_length: int
    mask: str  # which tokens the loss ignores (rasa.data.MASKS)

    # The recipe (methods.<method>.lr, tasks.<t>.alpha, training.*).
    lr: float
    alpha: float
    dropout: float
    warmup_ratio: float
    lion_betas: tuple[float, ...]
    weight_decay: float
    loss_averaging: str
    group_by_length: bool
    gradient_checkpointing: bool
    global_batch: int  # sequences per optimizer step, whatever the number of processes
    micro_batch: int  # per process (models.<m>.micro_batch.<task>[.<method>], else training's)

    # Processes (models.<m>.nodes, procs_per_node, deepspeed, else training.deepspeed).
    nodes: int
    procs_per_node: int
    deepspeed: str | None  # a DeepSpeed JSON config, or None for plain DDP

    # Preemption (training.*).
    checkpoint_minutes: float  # save a resumable checkpoint at least this often
    deadline_margin_minutes: float  # stop this long before the Slurm job's end

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """The ``--settings`` argument: sorted keys, so that equal settings are equal strings."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> RunSettings:
        """Checked: a missing, unknown or mistyped field is refused, naming it."""
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in values]
        unknown = sorted(set(values) - set(names))
        if missing or unknown:
            raise ValueError(f"run settings: missing fields {missing}, unknown fields {unknown}; they "
                             "are the config's training: keys (with the schema's defaults) plus what "
                             "rasa.run_settings.build resolves per run")
        hints = typing.get_type_hints(cls)
        for name in names:
            _check_type(name, values[name], hints[name])
        return cls(**{n: tuple(v) if isinstance(v, list) else v for n, v in values.items()})

    @classmethod
    def from_json(cls, text: str) -> RunSettings:
        return cls.from_dict(json.loads(text))


_SCALARS = {
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    str: lambda v: isinstance(v, str),
    bool: lambda v: isinstance(v, bool),
    type(None): lambda v: v is None,
}


def _matches(value, hint) -> bool:
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return isinstance(value, (list, tuple)) and all(_SCALARS[item](v) for v in value)
    if typing.get_origin(hint) in (typing.Union, type(str | None)):
        return any(_matches(value, h) for h in typing.get_args(hint))
    return _SCALARS[hint](value)


def _check_type(name: str, value, hint) -> None:
    if not _matches(value, hint):
        raise ValueError(f"run settings: {name}={value!r} is not of type {hint}")


def _entry(config: dict, *path: str):
    """``config[path[0]][path[1]]...``, or an error naming the missing key and the fix."""
    value = config
    for i, key in enumerate(path):
        if not isinstance(value, dict) or key not in value:
            where = ".".join(path[: i + 1])
            raise ValueError(f"config lacks {where}, needed to train a run; add it to the config "
                             "(workflow/schemas/config.schema.yaml describes it)")
        value = value[key]
    return value


def model_dir(config: dict, model: str) -> str:
    """Where the run's base model lives: its own path if local, else built or fetched into the workdir."""
    spec = _entry(config, "models", model)
    return spec["path"] if spec["source"] == "local" else f"{config['workdir']}/models/{model}"


def deepspeed_config(config: dict, model: str) -> str | None:
    """``models.<m>.deepspeed``, else ``training.deepspeed`` (None: plain data parallelism)."""
    return _entry(config, "models", model).get("deepspeed", config["training"].get("deepspeed"))


def micro_batch(config: dict, model: str, task: str, method: str) -> int:
    """Per-process micro batch: ``models.<m>.micro_batch.<task>`` (a number, or per method with a
    ``default``, as the authors' scripts differ per method), else ``training.micro_batch``."""
    value = _entry(config, "models", model).get("micro_batch", {}).get(
        task, _entry(config, "training", "micro_batch"))
    return value.get(method, value["default"]) if isinstance(value, dict) else value


def build(config: dict, spec: RunSpec) -> RunSettings:
    """The settings of run ``spec`` under the validated ``config``: ``training.*`` as given, with
    the run's, model's, task's and method's values resolved on top."""
    model = _entry(config, "models", spec.model)
    dataset = _entry(config, "tasks", spec.task, "dataset")
    return RunSettings.from_dict(dict(
        _entry(config, "training"),
        run_id=run_id(spec), model=spec.model, method=spec.method, r=spec.r, k=spec.k,
        epochs=spec.epochs, fraction=spec.fraction, seed=_entry(config, "seed"),
        paper_model=_entry(config, "models", spec.model, "paper_name"),
        model_path=model_dir(config, spec.model), revision=model.get("revision"),
        target_modules=_entry(config, "models", spec.model, "target_modules"),
        dtype=model_dtype(config, spec.model),
        question=_entry(config, "datasets", dataset, "question"),
        answer=_entry(config, "datasets", dataset, "answer"),
        lr=_entry(config, "methods", spec.method, "lr"),
        alpha=_entry(config, "tasks", spec.task, "alpha"),
        micro_batch=micro_batch(config, spec.model, spec.task, spec.method),
        nodes=model.get("nodes", 1), procs_per_node=model.get("procs_per_node", 1),
        deepspeed=deepspeed_config(config, spec.model),
    ))
