"""The in-process transformers backend: a tiny random-weight model and a character tokenizer,
both built here (no weights are downloaded). Plumbing only: no claim about reply quality."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch")

from stepstone.llm import BudgetExhausted, Settings  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    chars = [chr(i) for i in range(32, 127)] + ["\n"]
    vocab = {c: i for i, c in enumerate(["<pad>", "<eos>", *chars])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(vocab), n_positions=512, n_embd=32, n_layer=1, n_head=2,
        bos_token_id=1, eos_token_id=1, pad_token_id=0,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("tiny-char-gpt")
    GPT2LMHeadModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_local_model_answers_caches_and_counts(model_dir, tmp_path):
    settings = Settings(f"local:{model_dir}", budget=2, cache=tmp_path / "llm.sqlite")
    settings.check()
    model = settings.connect()
    ask = [{"role": "user", "content": "Possible actions:\n1. go north\n2. look"}]
    reply = model.chat(ask, temperature=0, max_tokens=8)
    assert isinstance(reply, str)
    assert model.chat(ask, temperature=0, max_tokens=8) == reply  # from the cache
    assert model.usage.calls == 1 and model.usage.cached == 1
    assert model.usage.completion_tokens == 8  # greedy, no end token in a random model
    assert model.usage.prompt_tokens > len("Possible actions")  # characters, roughly
    model.chat([{"role": "user", "content": "other"}], max_tokens=4)
    with pytest.raises(BudgetExhausted):
        model.chat([{"role": "user", "content": "third"}])
    again = Settings(f"local:{model_dir}", cache=tmp_path / "llm.sqlite").connect()
    assert again.chat(ask, temperature=0, max_tokens=8) == reply and again.usage.calls == 0
    assert again.totals()["llm_calls"] == 2


def test_local_model_drives_an_exploration(model_dir, tmp_path, capsys):
    """The llm explorer and the ige selector on Game of 24 with the local backend, end to end
    through the command line (the replies are noise; only the plumbing is checked)."""
    import json

    from stepstone.cli import main

    run = tmp_path / "run"
    argv = ["explore", "game24:4,7,8,8", "--selector", "ige", "--explorer", "llm",
            "--llm-url", f"local:{model_dir}", "--llm-model", "tiny-char", "--frames", "12",
            "--explore-steps", "3", "--workers", "1", "--run-dir", str(run),
            "--no-progress", "--llm-max-tokens", "12"]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["report", str(run), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["llm_model"] == "tiny-char" and s["explorer"] == "llm"
    assert s["frames"] >= 12 and s["cells"] > 1
    assert s["llm_calls"] > 0 and s["llm_tokens"] > 0
    assert main(["replay", str(run), "--cell", "all"]) == 0  # model-chosen actions replay


def test_export_labels_trajectories_with_a_local_model(model_dir, tmp_path):
    """``export --llm-url local:PATH`` connects through Settings, as the runs do."""
    import json

    from stepstone.cli import main
    from stepstone.llm import Cache

    run = tmp_path / "run"
    explore = ["explore", "game24:4,7,8,8", "--frames", "300", "--workers", "1"]
    assert main([*explore, "--run-dir", str(run), "--no-progress"]) == 0
    out = tmp_path / "labelled.jsonl"
    argv = ["export", str(run), "--format", "jsonl", "--select", "top-k", "--k", "2",
            "--out", str(out), "--llm-url", f"local:{model_dir}"]  # fmt: skip
    assert main(argv) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 2 and all(r["label"] for r in rows)
    assert Cache(run / "llm_cache.sqlite").totals()["llm_calls"] == 2
