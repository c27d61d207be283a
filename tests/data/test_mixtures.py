"""The released-data mixtures in configs/data/ compose, resolve and stream converted shards."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from allava.data.convert import ConvertOptions, convert
from allava.data.datamodule import as_sources
from allava.data.streaming import MixtureStream
from tests.helpers.configs import compose_config
from tests.helpers.convert_fixtures import write_datasets

LAYOUT = {  # the directories each config expects under data.root
    "allava": ["caption_laion", "caption_vflan", "evol_text", "instruct_laion", "instruct_vflan"],
    "llava15": ["pretrain_558k", "mix665k"],
    "sharegpt4v": ["pretrain_1246k", "mix665k_cap23k"],
}


@pytest.mark.parametrize("name", sorted(LAYOUT))
def test_mixture_config_streams_converted_shards(name, tmp_path):
    inputs, image_root = write_datasets(tmp_path / "released")
    root = tmp_path / "data" / name
    for directory, path in zip(LAYOUT[name], inputs):  # any converted records will do
        convert([path], root / directory, ConvertOptions(image_root=str(image_root)),
                progress=False)
    cfg = compose_config("train", [f"data={name}", f"paths.data_dir={tmp_path / 'data'}"],
                         tmp_path / "run")
    for stage in ("pretrain", "finetune"):
        mixture = OmegaConf.to_container(cfg.stage[stage].mixture, resolve=True)
        assert {entry["path"] for entry in mixture} <= {str(root / d) for d in LAYOUT[name]}
        stream = MixtureStream(as_sources(mixture), lambda raws: (r["__key__"] for r in raws),
                               shuffle_buffer=4)
        keys = list(stream)
        assert len(keys) == stream.samples_per_epoch > 0


def test_allava_pretrain_sees_the_text_twice_per_epoch(tmp_path):
    cfg = compose_config("train", ["data=allava", f"paths.data_dir={tmp_path}"], tmp_path / "run")
    pretrain = OmegaConf.to_container(cfg.stage.pretrain.mixture, resolve=True)
    finetune = OmegaConf.to_container(cfg.stage.finetune.mixture, resolve=True)
    assert [e["repeat"] for e in pretrain if e["name"] == "evol_text"] == [2]
    assert [e["repeat"] for e in finetune if e["name"] == "evol_text"] == [1]
    assert {e["name"] for e in pretrain} == {"caption_laion", "caption_vflan", "evol_text"}
    assert {e["name"] for e in finetune} == {"instruct_laion", "instruct_vflan", "evol_text"}


def test_train_runs_on_converted_allava_shards(tmp_path, toy_root):
    """`train.py data=allava` end to end (tiny model, no validation set, length buckets on)."""
    from allava.training.run import train
    from tests.helpers.configs import TINY_MODEL

    inputs, image_root = write_datasets(tmp_path / "released")
    root = tmp_path / "data" / "allava"
    for directory, path in zip(LAYOUT["allava"], inputs):
        convert([path], root / directory, ConvertOptions(image_root=str(image_root)),
                progress=False)
    cfg = compose_config("train", [
        "data=allava", f"paths.data_dir={tmp_path / 'data'}", "stages=[pretrain,finetune]",
        f"model.llm.tokenizer={toy_root / 'tokenizer'}", "model.vision.image_size=32", *TINY_MODEL,
        "stage.pretrain.max_steps=2", "stage.finetune.max_steps=2", "eval.benchmarks=[]",
        "logger=csv", "data.batch_size=2", "data.num_workers=0", "data.length_bucket_batches=2",
        "callbacks.progress_bar.refresh_rate=0"], tmp_path / "run")
    outcome = train(cfg)
    for stage in ("pretrain", "finetune"):
        assert (Path(outcome["exports"][stage]) / "model.safetensors").is_file()


@pytest.mark.parametrize("bucketed", [False, True])
def test_train_loader_length_is_exact_so_max_epochs_works(bucketed, tiny_train_config):
    """len(train loader) equals the batches an epoch really yields, with 2 workers, whose
    quotas each end in a short batch: Lightning sizes epochs and LR schedules from it."""
    import warnings

    from allava.data.datamodule import StageDataModule
    from allava.models.build import build_vlm

    cfg = tiny_train_config()
    bundle = build_vlm(cfg.model)
    datamodule = StageDataModule(bundle, mixture=[{"path": f"{cfg.data.root}/caption"}],
                                 batch_size=5, shuffle_buffer=8, num_workers=2,
                                 length_bucket_batches=4 if bucketed else 0)
    datamodule.setup()
    loader = datamodule.train_dataloader()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns when a loader yields more than its len
        expected = len(loader)
        batches = sum(1 for _ in loader)
    assert batches == expected > 0


@pytest.mark.slow
def test_a_stage_of_one_epoch_runs_exactly_one_epoch_of_steps(tiny_train_config):
    from allava.training.run import train

    cfg = tiny_train_config("stages=[pretrain]", "eval.benchmarks=[]", "stage.pretrain.max_steps=null",
                            "stage.pretrain.max_epochs=1", "stage.pretrain.global_batch_size=8",
                            "data.num_workers=2")
    import torch

    run_dir = Path(train(cfg)["run_dir"])
    checkpoint = torch.load(run_dir / "pretrain" / "checkpoints" / "last.ckpt", weights_only=True)
    samples = sum(json.loads((Path(source.path) / "manifest.json").read_text())["totals"]
                  ["samples_written"] * source.repeat for source in cfg.stage.pretrain.mixture)
    assert samples == 96 + 32  # captions and text, once each
    per_worker = -(-samples // 2)
    batches = 2 * -(-per_worker // 4)  # 2 workers, batch 4, each worker's last batch short
    assert checkpoint["global_step"] == -(-batches // 2)  # 2 micro-batches per optimizer step
