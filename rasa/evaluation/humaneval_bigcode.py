"""The ``bigcode`` scorer: a HumanEval+ sample checked the way the authors' harness checks it.

The authors scored their generations with the bigcode-evaluation-harness task ``humanevalplus``.
It runs ONE program per sample, ``program + "\\n" + "\\n" + test + "\\n" + "check(ENTRY_POINT)"``,
under one time limit for the whole program (20 s), and the sample passes when that program
ends without an exception. ``test`` is a field of the Hugging Face ``evalplus/humanevalplus``
dataset, made by evalplus's converter to the original HumanEval format. :func:`check_code`
rebuilds that field from a problem record and the canonical outputs, the same way:

* ``inputs`` = base then plus inputs, ``results`` = their canonical outputs; inputs whose ``str``
  repeats an earlier one are dropped;
* each output is checked by ``assertion(out, exp, atol)``: exact equality, otherwise
  ``numpy.allclose(out, exp, rtol=1e-07, atol=atol)`` when atol is not 0; atol is the problem's,
  or 1e-6 when it is 0 and the expected output is a float or a list/tuple of floats (evalplus's
  ``is_floats``);
* the six problems with huge outputs (``LARGE_OUTPUT_ENTRY_POINTS``) store no results: the test
  carries the canonical solution, renamed ``ref_func``, and compares against it at run time;
* ``find_zero`` (HumanEval/32) is checked by ``assert _poly(*candidate(*inp), inp) <= atol``,
  which raises ``TypeError`` for every float answer: under the authors' harness this problem
  never passes. evalplus fixed the line in its repository (issue #125) but the dataset the
  harness downloads kept it (issue #253). Reproduced on purpose, as the faithful reading; the
  ``plus`` scorer is the corrected one.

Not reproduced: bigcode's in-process ``reliability_guard`` (which disables ``os``/``shutil``
functions inside the sample); here the sample runs in the project's sandbox instead.
"""

from __future__ import annotations

import inspect

LARGE_OUTPUT_ENTRY_POINTS = ("tri", "string_sequence", "starts_one_ends", "make_a_pile",
                             "special_factorial", "all_prefixes")


def _assertion_source() -> str:
    from evalplus.eval import is_floats

    return (
        "import numpy as np\n\n"
        f"{inspect.getsource(is_floats)}\n\n"
        "def assertion(out, exp, atol):\n"
        "    exact_match = out == exp\n\n"
        "    if atol == 0 and is_floats(exp):\n"
        "        atol = 1e-6\n"
        "    if not exact_match and atol != 0:\n"
        "        assert np.allclose(out, exp, rtol=1e-07, atol=atol)\n"
        "    else:\n"
        "        assert exact_match\n"
    )


def _unique(inputs: list, results: list) -> tuple[list, list]:
    """Drop inputs whose ``str`` repeats an earlier input's (first kept), with their results."""
    seen, kept_inputs, kept_results = set(), [], []
    for inp, res in zip(inputs, results, strict=True):
        if f"{inp}" not in seen:
            seen.add(f"{inp}")
            kept_inputs.append(inp)
            kept_results.append(res)
    return kept_inputs, kept_results


def _signature_lines(prompt: str) -> str:
    """The prompt's non-empty lines up to the first docstring line (imports and ``def``)."""
    kept = ""
    for line in prompt.split("\n"):
        if not line:
            continue
        if '"""' in line or "'''" in line:
            break
        kept += line + "\n"
    return kept


def check_code(problem: dict, expected: dict) -> str:
    """The dataset's ``test`` field for ``problem``, given its canonical outputs ``expected``
    (``{"base": [...], "plus": [...]}``, as :func:`rasa.evaluation.humaneval.compute_expected`)."""
    entry, atol = problem["entry_point"], problem.get("atol", 0)
    inputs, results = _unique(problem["base_input"] + problem["plus_input"],
                              list(expected["base"]) + list(expected["plus"]))
    if entry in LARGE_OUTPUT_ENTRY_POINTS:
        reference = (_signature_lines(problem["prompt"]) + problem["canonical_solution"]).replace(
            f" {entry}(", " ref_func(")
        return (f"{_assertion_source()}\n\n{reference}\n\ndef check(candidate):\n"
                f"    inputs = {inputs}\n"
                f"    for i, inp in enumerate(inputs):\n"
                f"        assertion(candidate(*inp), ref_func(*inp), {atol})\n")
    imports, helpers = "", _assertion_source()
    assertion = f"assertion(candidate(*inp), exp, {atol})"
    if entry == "find_zero":
        from evalplus.eval._special_oracle import _poly

        imports, helpers = "import math", inspect.getsource(_poly) + "\n"
        assertion = f"assert _poly(*candidate(*inp), inp) <= {atol}"
    return (f"{imports}\n\n{helpers}\n\ndef check(candidate):\n"
            f"    inputs = {inputs}\n"
            f"    results = {results}\n"
            f"    for i, (inp, exp) in enumerate(zip(inputs, results)):\n"
            f"        {assertion}\n")


def program(solution: str, problem: dict, test: str) -> str:
    """What the harness runs: the sample, then its reference (``"\\n" + test + "\\n" + check(...)``)."""
    return solution + "\n" + "\n" + test + "\n" + f"check({problem['entry_point']})"
