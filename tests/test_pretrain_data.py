"""Data path of the pre-training objective: sources, token cache, mixing by token share, budgets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from optuna_adso.pretrain import DataBudgetError, Domain, PretrainObjective
from optuna_adso.pretrain.corpus import DOMAIN_NAMES, build_corpus
from optuna_adso.pretrain.data import HeldOutSplit, MixtureDataset, apportion, pack_domain, plan_mixture
from optuna_adso.pretrain.tokenizer import resolve_tokenizer

SEQ = 32


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return root, build_corpus(root, max_chars_per_domain=40_000)


@pytest.fixture(scope="module")
def prepared(corpus):
    root, domains = corpus
    return PretrainObjective(domains, ["tiny-32"], steps=10, batch_size=4, seq_len=SEQ, vocab_size=512,
                             cache_dir=root).prepare()


def test_corpus_is_real_text_in_jsonl_parquet_and_txt(corpus):
    root, domains = corpus
    assert [d.name for d in domains] == list(DOMAIN_NAMES)
    suffixes = {d.name: {s.rsplit(".", 1)[-1] for s in d.source} for d in domains}
    assert suffixes == {"code": {"jsonl"}, "docs": {"parquet"}, "docstrings": {"txt"}, "licenses": {"txt"}}
    code = "".join(domains[0].iter_texts())
    assert "def " in code and "import " in code
    assert "PERMISSION" in "".join(domains[3].iter_texts()).upper()
    by_glob = Domain.from_files("licenses", str(root / "*" / "licenses" / "*.txt"))
    assert by_glob.source == domains[3].source


def test_hf_datasets_in_memory_and_saved_to_disk_go_through_the_same_path(tmp_path, prepared):
    import datasets

    texts = [f"document number {i} talks about mixtures and tokens. " * 5 for i in range(40)]
    ds = datasets.Dataset.from_dict({"content": texts})
    ds.save_to_disk(str(tmp_path / "saved"))
    in_memory = Domain.from_dataset("mem", ds, text_field="content")
    on_disk = Domain.from_dataset("disk", tmp_path / "saved", text_field="content")
    assert list(in_memory.iter_texts()) == texts == list(on_disk.iter_texts())
    a = pack_domain(in_memory, prepared.tokenizer, tmp_path)
    b = pack_domain(on_disk, prepared.tokenizer, tmp_path)
    assert a.n_tokens == b.n_tokens > len(texts)
    assert np.array_equal(np.asarray(a.tokens), np.asarray(b.tokens))
    with pytest.raises(ValueError, match="column 'text' not in"):
        Domain.from_dataset("bad", ds)


def test_local_file_errors_name_the_domain(tmp_path):
    (tmp_path / "x.csv").write_text("a,b")
    with pytest.raises(ValueError, match="Domain 'web'.*x.csv"):
        Domain.from_files("web", tmp_path / "x.csv")
    with pytest.raises(FileNotFoundError, match="Domain 'web'"):
        Domain.from_files("web", tmp_path / "missing.jsonl")
    (tmp_path / "rows.jsonl").write_text(json.dumps({"body": "hello"}) + "\n")
    with pytest.raises(ValueError, match="no field 'text'"):
        list(Domain.from_files("web", tmp_path / "rows.jsonl").iter_texts())


def test_tokens_are_cached_and_reused_by_a_second_objective(corpus, prepared):
    root, domains = corpus
    assert all(p.path.exists() for p in prepared.packed)
    mtimes = [p.path.stat().st_mtime_ns for p in prepared.packed]
    again = PretrainObjective(domains, ["tiny-32"], steps=10, batch_size=4, seq_len=SEQ, vocab_size=512,
                              cache_dir=root).prepare()
    assert all(p.from_cache for p in again.packed)  # memory-mapped, not re-tokenized
    assert [p.path.stat().st_mtime_ns for p in again.packed] == mtimes
    assert again.tokenizer.fingerprint == prepared.tokenizer.fingerprint
    # a different tokenizer is a different cache entry
    other = resolve_tokenizer(None, domains, root, vocab_size=600)
    assert other.fingerprint != prepared.tokenizer.fingerprint
    assert not pack_domain(domains[0], other, root).from_cache


def test_sampled_batches_match_the_weights_by_token_share(prepared):
    weights = {"code": 0.5, "docs": 0.3, "docstrings": 0.2, "licenses": 0.0}
    n = 600
    plan = plan_mixture(prepared.train_blocks(), weights, n, max_epochs=4, seed=1)
    ds = MixtureDataset(prepared.packed, plan, SEQ, prepared.splits)
    loader = torch.utils.data.DataLoader(ds, batch_size=8, drop_last=True)
    tokens = np.zeros(4)
    for batch in loader:
        assert batch["input_ids"].shape[1] == SEQ
        tokens += np.bincount(batch["domain"].numpy(), minlength=4) * SEQ
    share = tokens / tokens.sum()
    assert np.allclose(share, [0.5, 0.3, 0.2, 0.0], atol=0.02), share
    # any prefix (a pruned run) is mixed too, not one domain after another
    first = np.bincount(plan.domain_index[:100], minlength=4) / 100
    assert np.allclose(first, [0.5, 0.3, 0.2, 0.0], atol=0.12), first
    # training reads only train blocks (the dataset offsets them past the held-out ones)
    have = list(prepared.train_blocks().values())
    assert all(int(b) < have[int(d)] for d, b in zip(plan.domain_index, plan.block_index))


def test_zero_weights_and_a_single_domain_never_deadlock(prepared):
    blocks = prepared.train_blocks()
    plan = plan_mixture(blocks, {"code": 0.0, "docs": 1.0, "docstrings": 0.0, "licenses": 0.0}, 50, 4, seed=0)
    assert set(plan.domain_index.tolist()) == {1}
    assert plan.counts == {"code": 0, "docs": 50, "docstrings": 0, "licenses": 0}
    assert apportion([0.0, 0.5, 0.5], 3) in ([0, 2, 1], [0, 1, 2])
    with pytest.raises(ValueError, match="not all zero"):
        plan_mixture(blocks, dict.fromkeys(blocks, 0.0), 10, 4, seed=0)


def test_too_few_tokens_is_a_clear_error_before_training(prepared):
    blocks = prepared.train_blocks()
    need = blocks["licenses"] * 2 + 10
    with pytest.raises(DataBudgetError, match=r"domain 'licenses' has \d+ training blocks.*2 repetitions"):
        plan_mixture(blocks, {"code": 0.0, "docs": 0.0, "docstrings": 0.0, "licenses": 1.0}, need, 2, seed=0)
    # through the objective: refused before any Trainer or model is built
    big = PretrainObjective(prepared.domains, ["tiny-32"], steps=10_000, batch_size=4, seq_len=SEQ,
                            vocab_size=512, cache_dir=prepared.cache_dir, max_epochs=1)
    with pytest.raises(DataBudgetError, match="max_epochs"):
        big.train(dict.fromkeys(prepared.names, 0.25), "tiny-32")
    tiny = Domain.from_texts("tiny", ["just a few words"])
    small = PretrainObjective([tiny, prepared.domains[0]], ["tiny-32"], steps=5, seq_len=SEQ, vocab_size=512,
                              cache_dir=prepared.cache_dir, tokenizer=prepared.tokenizer)
    with pytest.raises(DataBudgetError, match="domain 'tiny' has .* tokens: fewer than 2 blocks"):
        small.prepare()


def test_bad_objective_arguments_fail_fast(corpus):
    _, domains = corpus
    with pytest.raises(ValueError, match="at least two Domain"):
        PretrainObjective(domains[:1], ["tiny-32"], steps=10)
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        PretrainObjective(domains, ["huge"], steps=10)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        PretrainObjective(domains, ["tiny-32"], steps=0)
    with pytest.raises(ValueError, match="target names unknown domains \\['web'\\]"):
        PretrainObjective(domains, ["tiny-32"], steps=10, target=["web"])


def test_any_hugging_face_tokenizer_object_works_like_the_offline_one(prepared, tmp_path):
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(tokenizer_object=prepared.tokenizer.hf, eos_token="<|endoftext|>")
    wrapped = resolve_tokenizer(hf, prepared.domains, tmp_path)
    assert wrapped.eos_id == prepared.tokenizer.eos_id and wrapped.vocab_size == prepared.tokenizer.vocab_size
    text = ["def f(x):\n    return x  # licensed under the MIT License"]
    assert wrapped.encode_batch(text) == prepared.tokenizer.encode_batch(text)
    with pytest.raises(TypeError, match="tokenizer must be None"):
        resolve_tokenizer(42, prepared.domains, tmp_path)


def test_hf_load_dataset_streaming_from_local_files(tmp_path, prepared):
    path = tmp_path / "rows.jsonl"
    rows = [{"body": f"streamed row {i} about data mixtures"} for i in range(30)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    streamed = Domain.from_hf("web", "json", split="train", text_field="body", streaming=True,
                              max_documents=20, data_files=str(path))
    assert list(streamed.iter_texts()) == [r["body"] for r in rows[:20]]
    packed = pack_domain(streamed, prepared.tokenizer, tmp_path)
    assert not packed.from_cache and pack_domain(streamed, prepared.tokenizer, tmp_path).from_cache
    with pytest.raises(ValueError, match="max_documents must be None or a positive int"):
        Domain.from_hf("web", "json", max_documents=0)


@pytest.mark.parametrize("n_blocks,n_val", [(10, 3), (7, 1), (100, 64), (5, 4), (64, 64 // 2)])
def test_held_out_blocks_are_strided_and_disjoint_from_training(n_blocks, n_val):
    split = HeldOutSplit(n_blocks, n_val)
    val = [split.val_block(i) for i in range(n_val)]
    train = [split.train_block(t) for t in range(split.n_train)]
    assert sorted(val + train) == list(range(n_blocks))  # a partition: nothing trained is evaluated
    assert val[-1] >= (n_blocks - 1) // 2 or n_val == 1  # spread over the domain, not its first blocks
    with pytest.raises(DataBudgetError):
        HeldOutSplit(3, 3)
