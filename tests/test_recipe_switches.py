"""The recipe switches (``training.loss_averaging``, ``training.mask``, sampling): the default of
each is the authors' behaviour, checked against a hand computation or the library they used."""

from __future__ import annotations

import pytest
import torch

from rasa import data, prompts
from rasa.loss import RecipeTrainer

# --------------------------------------------------------------------------- sampling


def test_subsets_are_datasets_shuffle_seed_42_then_first_rows():
    import datasets

    records = [{"i": i, "text": f"row {i}"} for i in range(103)]
    shuffled = datasets.Dataset.from_list(records).shuffle(seed=42).to_list()
    subsets = {f: data.sample(records, f, seed=42) for f in (0.25, 0.5, 1.0)}
    for f, subset in subsets.items():
        assert subset == shuffled[: int(103 * f)]  # sft.py: select(range(int(len * train_ratio)))
    assert subsets[0.25] == subsets[0.5][:25] and subsets[0.5] == subsets[1.0][:51]
    assert data.sample(records, 0.5, seed=1) != subsets[0.5]
    with pytest.raises(ValueError, match="keeps none"):
        data.sample(records[:3], 0.25, seed=42)


# --------------------------------------------------------------------------- masking


def _masked_chars(tok, question, answer, mask):
    """Characters of the training text covered by masked tokens, and the text itself."""
    enc = data.encode(question, answer, tok, 1024, mask=mask)
    text = tok.bos_token + prompts.training_text(question, answer) + " " + tok.eos_token
    offsets = tok(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    covered = set()
    for label, (start, end) in zip(enc["labels"], offsets):
        if label == data.IGNORE:
            covered.update(range(start, end))
    return covered, text, enc


def test_masking_covers_every_instruction_span_also_inside_the_response(tiny_model_dir):
    from rasa.modeling import load_tokenizer

    tok = load_tokenizer(str(tiny_model_dir))
    question = "Write a prompt for a chat model."
    answer = ("Here is one:\n\n### Instruction:\nadd two numbers\n\n### Response:\n"
              "def add(a, b): return a + b")
    covered, text, enc = _masked_chars(tok, question, answer, "instruction")
    # the two spans, found by hand: strictly between each "### Instruction:\n" and the next "### Response:\n"
    first = text.index(question)
    inner = text.index("add two numbers")
    spans = [(first, first + len(question) + 2), (inner, inner + len("add two numbers") + 2)]
    expected = set().union(*(range(lo, hi) for lo, hi in spans))
    assert expected <= covered
    # nothing else beyond the token boundaries around the two spans: headers and code are trained on
    for kept in ("### Instruction:", "### Response:", "def add(a, b): return a + b", "Here is one:"):
        at = text.rindex(kept)
        assert not covered & set(range(at + 1, at + len(kept) - 1)), kept
    n_all = sum(label == data.IGNORE for label in enc["labels"])

    covered_first, _, enc_first = _masked_chars(tok, question, answer, "first_instruction")
    assert set(range(*spans[0])) <= covered_first and not covered_first & set(range(*spans[1]))
    n_first = sum(label == data.IGNORE for label in enc_first["labels"])
    inner_tokens = [(s, e) for s, e in tok(text, add_special_tokens=False, return_offsets_mapping=True)
                    ["offset_mapping"] if s < spans[1][1] and e > spans[1][0]]
    assert n_all == n_first + len(inner_tokens) and len(inner_tokens) > 0

    with pytest.raises(ValueError, match="training.mask must be one of"):
        data.encode(question, answer, tok, 1024, mask="everything")


# ----------------------------------------------------------------------- loss averaging


def _toy():
    """A tiny random Llama (large initial weights, so token losses vary) and four sequences with
    1, 2, 8 and 9 label tokens: micro-batches of 3 and 17 tokens."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1, vocab_size=50,
                                         max_position_embeddings=32, initializer_range=0.5))
    g = torch.Generator().manual_seed(1)
    rows = []
    for length, trained in ((8, 1), (9, 2), (9, 8), (10, 9)):
        ids = torch.randint(1, 50, (length,), generator=g).tolist()
        labels = [data.IGNORE] * (length - trained) + ids[length - trained:]
        rows.append({"input_ids": ids, "labels": labels})
    return model, rows


def _collate(rows):
    width = max(len(r["input_ids"]) for r in rows)
    pad = lambda xs, v: [x + [v] * (width - len(x)) for x in xs]  # noqa: E731
    return {"input_ids": torch.tensor(pad([r["input_ids"] for r in rows], 0)),
            "attention_mask": torch.tensor(pad([[1] * len(r["input_ids"]) for r in rows], 0)),
            "labels": torch.tensor(pad([r["labels"] for r in rows], data.IGNORE))}


def _sum_and_count(model, rows):
    batch = _collate(rows)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels.flatten(),
                                             ignore_index=data.IGNORE, reduction="sum")
    return loss, int((labels != data.IGNORE).sum())


class _Grads:
    """Trainer callback keeping the gradients the optimizer is about to apply."""

    def __init__(self):
        from transformers import TrainerCallback

        outer = self

        class _CB(TrainerCallback):
            def on_pre_optimizer_step(self, args, state, control, model=None, **kw):
                outer.grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}

        self.callback = _CB()


def _train(averaging, tmp_path, model, rows, max_steps=1, lr=1e-3):
    """Train with micro-batches of 2 and 2 accumulation steps; (logged losses, last gradients)."""
    from datasets import Dataset
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path / averaging), per_device_train_batch_size=2,
                             gradient_accumulation_steps=2, max_steps=max_steps, learning_rate=lr,
                             max_grad_norm=0.0, logging_steps=1, train_sampling_strategy="sequential",
                             use_cpu=True, report_to="none", disable_tqdm=True, save_strategy="no",
                             remove_unused_columns=False)
    grads = _Grads()
    trainer = RecipeTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                            data_collator=_collate, callbacks=[grads.callback], loss_averaging=averaging)
    trainer.train()
    return [e["loss"] for e in trainer.state.log_history if "loss" in e], grads.grads


@pytest.mark.parametrize("averaging", ["micro_batch", "tokens"])
def test_loss_on_two_micro_batches_equals_the_hand_computed_average(averaging, tmp_path):
    import copy

    model, rows = _toy()
    reference = copy.deepcopy(model)
    (logged,), grads = _train(averaging, tmp_path, model, rows)

    (s1, n1), (s2, n2) = _sum_and_count(reference, rows[:2]), _sum_and_count(reference, rows[2:])
    assert (n1, n2) == (3, 17)
    per_micro_batch = (s1 / n1 + s2 / n2) / 2  # transformers 4.43: mean per micro-batch, then over GA
    per_token = (s1 + s2) / (n1 + n2)
    assert abs(per_micro_batch.item() - per_token.item()) > 0.1  # the toy tells the two apart
    expected = per_micro_batch if averaging == "micro_batch" else per_token
    assert logged == pytest.approx(expected.item(), rel=1e-5)
    expected.backward()
    for name, p in reference.named_parameters():
        assert torch.allclose(grads[name], p.grad, rtol=1e-4, atol=1e-7), name


@pytest.mark.parametrize("averaging,divisor", [("micro_batch", 2), ("tokens", 1)])
def test_short_last_step_of_an_epoch(averaging, divisor, tmp_path):
    """Three micro-batches, two per step: the authors' constant divisor (the accumulation steps)
    halves the lone micro-batch of the last step; per-token averaging does not."""
    model, rows = _toy()
    (s3, n3) = _sum_and_count(model, rows[:2])
    logged, _ = _train(averaging, tmp_path, model, rows[2:] * 2 + rows[:2], max_steps=2, lr=1e-12)
    assert logged[1] == pytest.approx((s3 / n3).item() / divisor, rel=1e-5)


def test_unknown_loss_averaging_is_refused():
    with pytest.raises(ValueError, match="training.loss_averaging must be one of"):
        RecipeTrainer(model=torch.nn.Linear(1, 1), loss_averaging="sequence")



# ------------------------------------------------------------------ forgetting few-shot


def test_fewshot_on_the_local_forgetting_tasks_is_refused_before_loading(tmp_path):
    from rasa.evaluation import forgetting

    argv = ["--model", str(tmp_path / "no-model"), "--data-dir", "rasa/fixtures", "--run-id", "x",
            "--epoch", "0", "--num-fewshot", "3", "--out", str(tmp_path / "m.csv"),
            "--details", str(tmp_path / "d.csv")]
    with pytest.raises(ValueError, match="num_fewshot=3: the local forgetting tasks have no training split"):
        forgetting.main(argv)
    forgetting.check_fewshot("hub", 5)  # lm-eval's own tasks draw shots from their train splits
