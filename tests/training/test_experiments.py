"""Every experiment composes; the paper recipes carry the paper's hyper-parameters and build
their models at full size on the meta device."""
from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from allava.models.vlm import VisionLanguageModel
from allava.training.trainable import trainable_modules
from tests.helpers.configs import compose_config
from tests.models.test_llm_presets import PRESETS, local_architecture

EXPERIMENTS = sorted(p.stem for p in (Path(__file__).parents[2] / "configs/experiment").glob("*.yaml"))
# experiment -> (LLM preset, mlp2x_gelu parameters)
ALLAVA = {"allava_stablelm2": ("stablelm2_1_6b", 6_295_552), "allava_phi2": ("phi2", 9_180_160),
          "allava_phi3": ("phi3_mini", 12_589_056)}
CLIP_L336_PRUNED = 290_909_184


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes_and_resolves(name, tmp_path):
    cfg = compose_config("train", [f"experiment={name}"], tmp_path)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["stages"] and all(stage in resolved["stage"] for stage in resolved["stages"])


@pytest.mark.parametrize("name", sorted(ALLAVA))
def test_allava_recipes_carry_the_paper_hyperparameters(name, tmp_path):
    cfg = compose_config("train", [f"experiment={name}"], tmp_path)
    assert list(cfg.stages) == ["pretrain", "finetune"] and cfg.stage.policy == "allava"
    assert cfg.trainer.precision == "bf16-mixed" and cfg.model.max_length == 2048
    assert cfg.model.vision.model_name == "vit_large_patch14_clip_quickgelu_336.openai"
    assert cfg.model.connector._target_.endswith("MLPConnector") and cfg.model.connector.depth == 2
    assert cfg.model.llm.chat_template == "allava" and cfg.data.root.endswith("/allava")
    for stage, global_batch in (("pretrain", 256), ("finetune", 128)):
        settings = OmegaConf.to_container(cfg.stage[stage], resolve=True)
        assert trainable_modules(settings, cfg.stage.policy) == ["connector", "llm"]
        assert settings["lr"]["connector"] == settings["lr"]["llm"] == 2e-5
        assert settings["min_lr_ratio"] * 2e-5 == pytest.approx(2e-6)
        assert settings["warmup_ratio"] == 0.03 and settings["weight_decay"] == 0.0
        assert settings["global_batch_size"] == global_batch and settings["max_epochs"] == 1
        assert settings["loss_reduction"] == "token"


@pytest.mark.parametrize("name", sorted(ALLAVA))
def test_allava_models_build_at_full_size_on_meta(name, tmp_path):
    preset, connector_params = ALLAVA[name]
    cfg = compose_config("train", [f"experiment={name}", "model.vision.weights=none",
                                   "model.llm.model.weights=none",
                                   f"model.llm.model.name_or_path={local_architecture(preset, tmp_path / preset)}"],
                         tmp_path)
    with torch.device("meta"):
        tower = hydra.utils.instantiate(OmegaConf.to_container(cfg.model.vision, resolve=True))
        llm = hydra.utils.instantiate(OmegaConf.to_container(cfg.model.llm.model, resolve=True))
        connector = hydra.utils.instantiate(
            OmegaConf.to_container(cfg.model.connector, resolve=True),
            in_dim=tower.feature_dim, out_dim=llm.get_input_embeddings().embedding_dim)
        model = VisionLanguageModel(tower, connector, llm, image_token_id=0)
    assert model.num_image_tokens == 576
    assert sum(p.numel() for p in connector.parameters()) == connector_params
    assert sum(p.numel() for p in model.parameters()) == \
        CLIP_L336_PRUNED + connector_params + PRESETS[preset][1]


def test_llava15_recipe_aligns_the_connector_alone_first(tmp_path):
    cfg = compose_config("train", ["experiment=llava15"], tmp_path)
    pretrain = OmegaConf.to_container(cfg.stage.pretrain, resolve=True)
    finetune = OmegaConf.to_container(cfg.stage.finetune, resolve=True)
    assert trainable_modules(pretrain, cfg.stage.policy) == ["connector"]
    assert trainable_modules(finetune, cfg.stage.policy) == ["connector", "llm"]
    assert pretrain["lr"]["connector"] == 1e-3 and finetune["lr"]["llm"] == 2e-5
    assert pretrain["global_batch_size"] == 256 and finetune["global_batch_size"] == 128
    assert cfg.data.root.endswith("/llava15")


def test_ablation_connectors_sweeps_five_connectors(tmp_path):
    cfg = compose_config("train", ["experiment=ablation_connectors"], tmp_path)
    assert cfg.task_name == "ablation_connectors"  # its own log dir and W&B group prefix
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from tests.helpers.configs import CONFIG_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        full = compose("train", overrides=["experiment=ablation_connectors"], return_hydra_config=True)
    assert full.hydra.sweeper.params["model/connector"].split(",") == \
        ["linear", "mlp2x_gelu", "ldpv2", "pixel_shuffle", "resampler"]


def test_demo_real_is_the_allava_recipe_on_packaged_real_weights(tmp_path):
    cfg = compose_config("train", ["experiment=toy_real"], tmp_path)
    assert list(cfg.stages) == ["pretrain", "finetune"] and cfg.stage.policy == "allava"
    assert cfg.model.vision.model_name == "efficientnet_lite0" and cfg.model.vision.weights == "packaged"
    assert cfg.model.llm.model.weights == "packaged" and cfg.model.llm.chat_template == "chatml"
    assert cfg.model.connector._target_.endswith("MLPConnector") and cfg.model.connector.depth == 2
    for stage in ("pretrain", "finetune"):
        settings = OmegaConf.to_container(cfg.stage[stage], resolve=True)
        assert trainable_modules(settings, cfg.stage.policy) == ["connector", "llm"]
        assert [m["name"] for m in settings["mixture"]][-1] == "text"  # Evol-Instruct's place
    assert cfg.eval.language is not None and list(cfg.eval.benchmarks) == ["toy_pope", "toy_mcq"]
    plain = compose_config("train", ["experiment=toy_real_no_text"], tmp_path / "no_text")
    for stage in ("pretrain", "finetune"):
        assert "text" not in [m.name for m in plain.stage[stage].mixture]
    assert plain.stage.finetune.max_steps == cfg.stage.finetune.max_steps
