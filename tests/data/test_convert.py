"""The dataset converter (`allava-data convert`) on copies of the released layouts."""
from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from allava.data import convert as convert_module
from allava.data.convert import ConvertOptions, convert
from allava.data.cli import main as data_cli
from allava.data.samples import decode_sample
from allava.data.shard_writer import shard_paths
from allava.data.streaming import iter_tar_samples
from tests.helpers.convert_fixtures import (EXPECTED_RECORDS_IN, EXPECTED_REJECTS, EXPECTED_WRITTEN,
                                    VFLAN_NAME, write_datasets)


@pytest.fixture()
def datasets(tmp_path):
    return write_datasets(tmp_path / "released")


def _read_back(out: Path) -> dict[str, tuple[dict, object]]:
    samples = iter_tar_samples([str(p) for p in shard_paths(out)], None, resampled=False)
    return {record["id"]: (record, image) for record, image in map(decode_sample, samples)}


def _shard_bytes(out: Path) -> list[bytes]:
    return [p.read_bytes() for p in shard_paths(out)]


def test_every_record_is_written_or_rejected_with_its_reason(datasets, tmp_path):
    inputs, image_root = datasets
    out = tmp_path / "shards"
    manifest = convert(inputs, out, ConvertOptions(image_root=str(image_root),
                                                   samples_per_shard=4), progress=False)
    totals = manifest["totals"]
    assert totals["records_in"] == EXPECTED_RECORDS_IN
    assert totals["samples_written"] == EXPECTED_WRITTEN
    assert totals["rejected_by_reason"] == EXPECTED_REJECTS
    assert [s["samples"] for s in manifest["shards"]] == [4, 4, 4, 2]

    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == sum(EXPECTED_REJECTS.values())
    by_id = {(r["id"], r["reason"]): r["input"] for r in rejects}
    assert by_id[("allava_laion_cap_missing", "missing_image")] == "ALLaVA-Caption-LAION-4V.json"
    assert by_id[("allava_laion_cap_100277305", "duplicate_id")] == "ALLaVA-Caption-LAION-4V.json"
    assert by_id[("share-captioner_coco_lcs_sam_1246k_1107_2", "malformed_record")]
    assert ("text_with_tag", "image_tag_mismatch") in by_id

    samples = _read_back(out)
    assert len(samples) == EXPECTED_WRITTEN
    # The first of two records with one id is the one kept.
    assert samples["allava_laion_cap_100277305"][0]["conversations"][1]["value"] == "A red box."
    # Text-only records (Evol's `idx`, LLaVA-665K's ShareGPT turns) carry no image.
    assert samples["evol_0"][1] is None and samples["i6IyJda_0"][1] is None
    assert samples["evol_2"][0]["source"] == "Evol-Instruct-GPT4-Turbo-143K"
    # Odd VFLAN file names, every image mode, EXIF rotation: all read as upright RGB.
    assert samples["allava_vflan_inst_0"][0]["image"].endswith(VFLAN_NAME)
    for rid in ("allava_vflan_inst_1", "sa_545505", "sa_545506", "sa_545507", "19"):
        assert samples[rid][1].mode == "RGB"
    assert samples["allava_laion_cap_100277306"][1].size == (20, 60)  # orientation 6: turned
    assert samples["19"][0]["id"] == "19"  # a numeric id becomes a string


def test_original_bytes_are_kept_and_unsupported_formats_become_png(datasets, tmp_path):
    inputs, image_root = datasets
    out = tmp_path / "shards"
    convert(inputs, out, ConvertOptions(image_root=str(image_root)), progress=False)
    with tarfile.open(shard_paths(out)[0]) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    original = (image_root / "coco/train2017/000000033471.jpg").read_bytes()
    assert members["000000033471.jpg"] == original
    assert members["19.png"].startswith(b"\x89PNG")  # the GIF, re-encoded without loss


def test_max_image_side_reencodes_large_images(datasets, tmp_path):
    inputs, image_root = datasets
    out = tmp_path / "shards"
    convert(inputs, out, ConvertOptions(image_root=str(image_root), max_image_side=30),
            progress=False)
    samples = _read_back(out)
    assert samples["allava_laion_cap_100277305"][1].size == (30, 20)  # 48x32
    assert samples["allava_laion_cap_100277306"][1].size == (10, 30)  # upright 20x60
    assert samples["sa_545506"][1].size == (30, 30)


def test_output_does_not_depend_on_the_number_of_workers(datasets, tmp_path):
    inputs, image_root = datasets
    runs = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        convert(inputs, out, ConvertOptions(image_root=str(image_root), samples_per_shard=3,
                                            workers=workers), progress=False)
        runs[workers] = (_shard_bytes(out), (out / "rejects.jsonl").read_text())
    assert runs[1] == runs[2]


def test_an_interrupted_conversion_resumes_without_loss_or_duplicates(datasets, tmp_path,
                                                                       monkeypatch):
    inputs, image_root = datasets
    options = ConvertOptions(image_root=str(image_root), samples_per_shard=3)
    reference = tmp_path / "reference"
    convert(inputs, reference, options, progress=False)

    out = tmp_path / "interrupted"
    real_prepare = convert_module.prepare
    calls = {"n": 0}

    def interrupting_prepare(task):
        calls["n"] += 1
        if calls["n"] == 19:  # mid-shard, after several shards and rejects
            raise KeyboardInterrupt
        return real_prepare(task)

    monkeypatch.setattr(convert_module, "prepare", interrupting_prepare)
    with pytest.raises(KeyboardInterrupt):
        convert(inputs, out, options, progress=False)
    assert not (out / "manifest.json").exists()
    assert (out / "progress.json").is_file()
    monkeypatch.setattr(convert_module, "prepare", real_prepare)

    manifest = convert(inputs, out, options, progress=False)
    assert manifest["totals"] == json.loads((reference / "manifest.json").read_text())["totals"]
    assert _shard_bytes(out) == _shard_bytes(reference)
    assert (out / "rejects.jsonl").read_text() == (reference / "rejects.jsonl").read_text()
    assert not (out / "progress.json").exists()


def test_cli_converts_reruns_as_a_no_op_and_refuses_other_inputs(datasets, tmp_path, capsys):
    inputs, image_root = datasets
    out = tmp_path / "cli"
    args = ["convert", "--image-root", str(image_root), "--out", str(out), "--quiet"]
    for path in inputs:
        args += ["--input", str(path)]
    assert data_cli(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["samples_written"] == EXPECTED_WRITTEN
    first = _shard_bytes(out)
    assert data_cli(args) == 0  # already converted: nothing rewritten
    assert _shard_bytes(out) == first
    assert data_cli(args[:-2] + ["--input", str(inputs[0])]) == 2
    assert "already holds shard output" in capsys.readouterr().err
    missing = ["convert", "--out", str(tmp_path / "x"), "--input", str(tmp_path / "nope.json")]
    assert data_cli(missing) == 2
    assert "input file not found" in capsys.readouterr().err


def test_record_checks_name_the_reason_for_odd_image_fields():
    from allava.data.record_checks import check_record
    from allava.data.samples import BadSample

    turns = [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "This."}]
    assert check_record({"id": "a", "image": ["x.jpg"], "conversations": turns}) == "x.jpg"
    for image, reason in ((["x.jpg", "y.jpg"], "multiple_images"), (7, "malformed_record")):
        with pytest.raises(BadSample) as caught:
            check_record({"id": "b", "image": image, "conversations": turns})
        assert caught.value.reason == reason


def test_an_input_that_is_not_json_stops_with_a_clear_error(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": "a", "conversations": [')
    code = data_cli(["convert", "--input", str(broken), "--out", str(tmp_path / "out"),
                     "--image-root", str(tmp_path), "--quiet"])
    assert code == 2
    assert not (tmp_path / "out" / "manifest.json").exists()
