"""evalplus 0.3.1's output comparison, run by the trusted parent (never inside the sample).

evalplus compares inside ``unsafe_execute``, in the process that runs the program; here the
sandbox returns plain-data outputs (``_plaindata``) and :class:`OutputChecker` applies the same
rules, input by input, in the same order:

* ``out == exp``; the dataset's special oracles (MBPP's, and HumanEval/32 ``find_zero``:
  ``|poly(xs, out)| <= atol``);
* float outputs (``is_floats(exp)``) with ``atol == 0`` switch ``atol`` to 1e-6 for this and
  every later input of the same test set (evalplus's variable is reassigned in its loop);
* when not equal and ``atol != 0``: same type, same length for lists/tuples, and
  ``np.allclose(out, exp, rtol=1e-7, atol=atol)``; otherwise equality decides.
  Any exception while comparing is a failure, as evalplus's ``assert``\\ s are.

One deliberate difference, the corrected ``find_zero`` check: evalplus 0.3.1 ends that special
oracle with ``continue`` before recording the input as passed, so every program, the canonical
one included, fails HumanEval/32; here an input passes when its root is within ``atol``.
The oracle helpers (``_poly`` ...) and task lists are evalplus's own, imported, not copied.
"""

from __future__ import annotations

import numpy as np
from evalplus.eval import is_floats
from evalplus.eval._special_oracle import (
    MBPP_OUTPUT_NOT_NONE_TASKS,
    MBPP_OUTPUT_SET_EQ_TASKS,
    _digit_distance_nums,
    _poly,
    _surface_Area,
)


class OutputChecker:
    """Compares one test set's outputs in order; keeps evalplus's running ``atol``."""

    def __init__(self, dataset: str, entry_point: str, atol: float):
        self.dataset, self.entry_point, self.atol = dataset, entry_point, atol

    def __call__(self, inp, out, exp) -> bool:
        try:
            return self._check(inp, out, exp)
        except Exception:  # noqa: BLE001 - evalplus: any exception in the check is a failure
            return False

    def _check(self, inp, out, exp) -> bool:
        entry, atol = self.entry_point, self.atol
        exact_match = out == exp
        if self.dataset == "mbpp":
            if entry == "are_equivalent":  # Mbpp/164
                exact_match = True
            elif entry == "sum_div":  # Mbpp/295
                exact_match = exact_match or out == 0
            elif entry == "surface_Area":  # Mbpp/581
                exact_match = exact_match or abs(out - _surface_Area(*inp)) <= atol
            elif entry == "digit_distance_nums":  # Mbpp/558
                exact_match = exact_match or out == _digit_distance_nums(*inp)
            elif entry in MBPP_OUTPUT_SET_EQ_TASKS:
                exact_match = set(out) == set(exp)
            elif entry in MBPP_OUTPUT_NOT_NONE_TASKS:
                exact_match = out == exp if isinstance(out, bool) else exp == (out is not None)
        if self.dataset == "humaneval" and entry == "find_zero":  # HumanEval/32, corrected
            return bool(abs(_poly(*inp, out)) <= atol)
        if atol == 0 and is_floats(exp):
            atol = self.atol = 1e-6
        if not exact_match and atol != 0:
            if type(out) != type(exp):  # noqa: E721 - evalplus compares exact types
                return False
            if isinstance(exp, (list, tuple)) and len(out) != len(exp):
                return False
            return bool(np.allclose(out, exp, rtol=1e-07, atol=atol))
        return bool(exact_match)
