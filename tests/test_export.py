"""Every export format parses back, in the structure its trainer reads, to the same mixture."""

from __future__ import annotations

import json

import pytest
import yaml

from optuna_adso.export import FORMATS, export_mixture, normalized_weights

MIXTURE = {"web": 0.5123456789, "code": 0.3, "books": 0.1876543211, "arxiv": 0.0}
PATHS = {"web": "/data/web_text_document", "code": "/data/code_text_document",
         "books": "/data/books_text_document", "arxiv": "/data/arxiv_text_document"}


def _pairs(blend: list) -> dict[str, float]:
    """A Megatron/NeMo blend list [w1, p1, w2, p2, ...] -> {path: weight}."""
    assert len(blend) % 2 == 0
    return {str(blend[i + 1]): float(blend[i]) for i in range(0, len(blend), 2)}


def parse_back(fmt: str, text: str) -> dict[str, float]:
    """Read a written file the way its trainer would: {path (or name): weight}."""
    if fmt == "megatron":
        data = json.loads(text)
        assert set(data) == {"train", "valid", "test"}
        assert data["train"] == data["valid"] == data["test"]
        return _pairs(data["train"])
    if fmt == "megatron-args":
        return _pairs(text.split())
    if fmt == "nemo":
        return _pairs(yaml.safe_load(text)["model"]["data"]["data_prefix"])
    if fmt == "olmo-core":
        sources = yaml.safe_load(text)["source_mixture_config"]["source_configs"]
        return {s["paths"][0]: s["target_ratio"] for s in sources}
    if fmt == "nanotron":
        ds = yaml.safe_load(text)["data_stages"][0]["data"]["dataset"]
        assert len(ds["dataset_folder"]) == len(ds["dataset_weights"])
        return dict(zip(ds["dataset_folder"], ds["dataset_weights"]))
    if fmt == "litgpt":
        data = json.loads(text)
        assert data["iterate_over_all"] is False
        return {d["input_dir"]: w for d, w in zip(data["datasets"], data["weights"])}
    if fmt == "regmix":
        data = yaml.safe_load(text)
        assert data["valid"] == data["train"]
        return data["train"]
    if fmt == "json":
        return json.loads(text)
    if fmt == "yaml":
        return yaml.safe_load(text)
    raise AssertionError(fmt)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_parses_back_to_the_mixture(fmt: str) -> None:
    plain = fmt in ("json", "yaml")
    text = export_mixture(MIXTURE, fmt, paths=None if plain else PATHS)
    got = parse_back(fmt, text)
    expect_keys = list(MIXTURE) if plain else [PATHS[d] for d in MIXTURE]
    assert list(got) == expect_keys  # names/paths, in the mixture's order
    assert sum(got.values()) == pytest.approx(1.0, abs=1e-9)
    for d, key in zip(MIXTURE, expect_keys):
        assert got[key] == pytest.approx(MIXTURE[d], abs=1e-6)
        assert got[key] >= 0


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_domain_names_stand_in_for_paths_and_zeros_can_be_dropped(fmt: str) -> None:
    got = parse_back(fmt, export_mixture(MIXTURE, fmt, drop_below=1e-9))
    assert list(got) == ["web", "code", "books"]
    assert sum(got.values()) == pytest.approx(1.0, abs=1e-9)


def test_weights_are_renormalized_and_rounded_exactly() -> None:
    w = normalized_weights({"a": 1.0, "b": 1.0, "c": 1.0}, digits=4)
    assert w == {"a": 0.3334, "b": 0.3333, "c": 0.3333}  # the residue goes to the largest


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mixture": {"a": -0.1, "b": 1.1}, "fmt": "json"}, "mixture['a'] must be >= 0"),
        ({"mixture": {"a": float("nan"), "b": 1.0}, "fmt": "json"}, "mixture['a'] must be a finite number"),
        ({"mixture": {"a": "x", "b": 1.0}, "fmt": "json"}, "mixture['a'] must be a finite number"),
        ({"mixture": {}, "fmt": "json"}, "mixture must be a non-empty dict"),
        ({"mixture": {"a": 0.0, "b": 0.0}, "fmt": "json"}, "no weight above"),
        ({"mixture": {"a": 1.0}, "fmt": "parquet"}, "fmt must be one of"),
        ({"mixture": {"a": 0.5, "b": 0.5}, "fmt": "nemo", "paths": {"a": "/x"}}, "no entry for domains ['b']"),
        ({"mixture": {"a": 0.5, "b": 0.5}, "fmt": "json", "digits": 0}, "digits must be"),
    ],
)
def test_bad_input_names_the_problem(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        export_mixture(**kwargs)
    assert message in str(info.value)
