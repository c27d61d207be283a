"""The benchmarks are registered in code: every name resolves without a repository file, the
settings take eval.py's overrides, and what the runner checks up front comes from the definitions."""
from __future__ import annotations

import pytest

from allava.evaluation.benchmarks.generic import SCORER as GENERIC
from allava.evaluation.formats.vlmevalkit_tsv import load_tsv_benchmark
from allava.evaluation.pipeline import benchmark_resolver
from allava.evaluation.registry import BenchmarkDefinition, known_benchmarks, register, tsv_reader
from tests.helpers.configs import compose_config

SUITE = ["gqa", "llava_bench", "mmbench_cn", "mmbench_en", "mme", "mmmu_val", "mmstar", "mmvet", "pope",
         "scienceqa_img", "seed_img", "textvqa_val", "vizwiz_val"]


def test_every_benchmark_is_registered_and_resolves(tmp_path):
    assert known_benchmarks() == sorted([*SUITE, "toy_mcq", "toy_pope"])
    resolve = benchmark_resolver(compose_config("eval", [f"benchmark_data_dir={tmp_path}"], tmp_path / "out"))
    specs = {name: resolve(name) for name in known_benchmarks()}
    assert {name for name, spec in specs.items() if spec.judged} == {"mmvet", "llava_bench"}
    assert specs["mme"].files == {"path": tmp_path / "MME.tsv"}
    assert specs["mme"].header == ("index", "image", "question", "answer", "category")
    assert specs["toy_pope"].header == ("index", "image", "question", "answer")
    assert all(spec.report for spec in specs.values())


def test_layouts_and_overrides_change_the_settings(tmp_path):
    cfg = compose_config("eval", [f"benchmark_data_dir={tmp_path}", "benchmark_layouts.pope=llava",
                                  "+benchmark_overrides={mme: {sources: {tsv: {path: /x/MME.tsv}}, "
                                  "max_new_tokens: 16}}"], tmp_path / "out")
    resolve = benchmark_resolver(cfg)
    pope, mme = resolve("pope"), resolve("mme")
    assert (pope.layout, pope.header) == ("llava", None)
    assert set(pope.files) == {"question_file", "annotation_dir", "image_folder"}
    assert (str(mme.files["path"]), mme.max_new_tokens) == ("/x/MME.tsv", 16)
    assert resolve("gqa").max_new_tokens == 128  # untouched by the other benchmark's override


def test_an_unknown_name_lists_the_known_ones(tmp_path):
    resolve = benchmark_resolver(compose_config("eval", [], tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match=r"unknown benchmark 'nonesuch'.*Known: \[.*'mme'.*TSV file"):
        resolve("nonesuch")


def test_a_definition_is_registered_once_and_with_a_reader_per_source():
    reader = {"tsv": tsv_reader(load_tsv_benchmark)}
    with pytest.raises(ValueError, match="'mme' is registered twice"):
        register(BenchmarkDefinition("mme", reader, {"scorer": GENERIC.name, "layout": "tsv",
                                                     "sources": {"tsv": {"path": "x.tsv"}}}))
    with pytest.raises(ValueError, match="sources \\['llava', 'tsv'\\] and layout must match its readers"):
        register(BenchmarkDefinition("new_one", reader, {
            "scorer": GENERIC.name, "layout": "tsv", "sources": {"tsv": {"path": "x.tsv"}, "llava": {}}}))
    assert "new_one" not in known_benchmarks()
