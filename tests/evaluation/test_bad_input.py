"""Bad input to the evaluator: torn or foreign prediction files, broken answer files, a config
that names what does not exist, MME pairs cut by `limit`. Each is a clear error or a counted
reject, never a silent loss."""
from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from allava.evaluation import evaluate_benchmarks
from allava.evaluation.pipeline import benchmark_resolver
from allava.evaluation.predictions_file import PredictionsFile, read_predictions
from allava.evaluation.registry import get_definition, spec_from_config
from tests.helpers.configs import compose_config
from tests.helpers.eval_suite_files import write_suite

IDENTITY = {"benchmark": "x", "max_new_tokens": 8}


def test_a_resumed_file_drops_an_unterminated_last_line_even_if_it_parses(tmp_path):
    store = PredictionsFile(tmp_path, IDENTITY)
    assert store.load() == {}
    with store:
        store.append([(1, "yes"), (2, "no")])
    with store.path.open("a") as handle:  # killed between the record and its newline
        handle.write('{"index": 3, "prediction": "yes"}')
    again = PredictionsFile(tmp_path, IDENTITY)
    assert again.load() == {"1": "yes", "2": "no"}
    with again:
        again.append([(3, "no")])
    assert [json.loads(line)["index"] for line in store.path.read_text().splitlines()] == [1, 2, 3]


def test_a_predictions_file_from_elsewhere_is_not_resumed_into(tmp_path):
    (tmp_path / "predictions.jsonl").write_text('{"index": 1, "prediction": "yes"}\n')
    with pytest.raises(FileExistsError, match="without run.json.*predictions_dir="):
        PredictionsFile(tmp_path, IDENTITY).load()


@pytest.mark.parametrize("content, message", [
    ('{"index": 1, "prediction": "a"}\n{"index": 1, "prediction": "b"}\n', "index 1 is answered twice"),
    ('{"id": 1, "prediction": "a"}\n', "expected an object with `index`"),
    ('{"index": 1, "prediction": 5}\n', "a string `prediction`"),
    ('{"index": 1, "prediction": "a"}\nnot json\n', "1 line\\(s\\) are not JSON"),
])
def test_broken_answer_files_are_refused_with_the_line(tmp_path, content, message):
    path = tmp_path / "predictions.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_predictions(path)


def test_score_only_reads_a_last_line_without_newline_and_names_a_missing_file(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text('{"question_id": 7, "text": "Yes"}')  # hand-written: no final newline
    assert read_predictions(path) == {"7": "Yes"}
    with pytest.raises(FileNotFoundError, match="predictions_dir"):
        read_predictions(tmp_path / "absent.jsonl")


def test_mme_questions_cut_from_their_pair_are_left_out_and_counted(tmp_path):
    oracle = write_suite(tmp_path / "data")
    cfg = compose_config("eval", [f"benchmark_data_dir={tmp_path / 'data'}"], tmp_path / "out")
    results = evaluate_benchmarks(oracle, ["mme"], tmp_path / "out", resolve=benchmark_resolver(cfg),
                                  limit=3, progress=False)
    mme = results["mme"]
    assert mme["unpaired"] == 1 and mme["num_items"] == 2  # the first image's pair only
    assert mme["perception"] == 200.0 and mme["cognition"] == 0.0
    assert any("without their image's second question" in note for note in mme["notes"])


@pytest.mark.parametrize("change, error", [
    ({"scorer": "nonesuch"}, "unknown scorer 'nonesuch'"),
    ({"layout": "llava"}, "has no 'llava' layout; it has \\['tsv'\\]"),
    ({"prompt": {"sufix": "!"}}, "unknown prompt setting"),
    ({"sources": None}, "has no `sources`"),
])
def test_a_broken_benchmark_config_fails_when_resolved(change, error):
    node = OmegaConf.create({"scorer": "gqa", "layout": "tsv", "prompt": {},
                             "sources": {"tsv": {"path": "/nowhere/GQA.tsv"}}})
    node = OmegaConf.merge(node, change)
    with pytest.raises(ValueError, match=error):
        spec_from_config(get_definition("gqa"), node)


def test_eval_py_without_a_model_or_predictions_says_what_to_give(tmp_path):
    from allava.evaluation.pipeline import run_eval

    cfg = compose_config("eval", [], tmp_path / "out")
    with pytest.raises(ValueError, match="model_dir=.*or predictions_dir="):
        run_eval(cfg)
