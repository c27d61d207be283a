"""What trains in each stage (policies, overrides, LoRA/DoRA), checked parameter by parameter,
and LoRA adapters merged at export without changing a logit."""
from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from allava.models.build import build_vlm
from allava.models.model_dir import export_model, load_exported
from allava.training.run import accumulation_steps
from allava.training.trainable import (POLICIES, add_lora, apply_trainable, has_lora, merge_lora,
                                       trainable_modules)


def trainable_names(model: torch.nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def names_under(model: torch.nn.Module, modules: list[str], only_adapters_of=()) -> set[str]:
    names = set()
    for name, _ in model.named_parameters():
        top = name.split(".")[0]
        if top in modules and (top not in only_adapters_of or "lora_" in name):
            names.add(name)
    return names


EXPECTED = {  # (policy, role) -> modules
    ("allava", "pretrain"): ["connector", "llm"], ("allava", "finetune"): ["connector", "llm"],
    ("llava", "pretrain"): ["connector"], ("llava", "finetune"): ["connector", "llm"],
    ("full", "pretrain"): ["vision", "connector", "llm"],
    ("full", "finetune"): ["vision", "connector", "llm"],
}


@pytest.fixture
def toy_bundle(tiny_train_config):
    torch.manual_seed(0)
    return build_vlm(tiny_train_config().model)


@pytest.mark.parametrize("policy,role", sorted(EXPECTED))
def test_each_policy_trains_exactly_its_modules(policy, role, tiny_train_config, toy_bundle):
    cfg = tiny_train_config(f"stage.policy={policy}")
    stage = OmegaConf.to_container(cfg.stage[role], resolve=True)
    modules = trainable_modules(stage, cfg.stage.policy)
    assert modules == EXPECTED[(policy, role)] == POLICIES[policy][role]
    apply_trainable(toy_bundle.model, modules)
    model = toy_bundle.model
    assert trainable_names(model) == names_under(model, modules)
    assert trainable_names(model)  # something trains
    if "vision" not in modules:
        assert not any(p.requires_grad for p in model.vision.parameters())


def test_a_stage_train_list_overrides_the_policy(tiny_train_config, toy_bundle):
    cfg = tiny_train_config("stage.policy=full", "stage.finetune.train=[connector]")
    stage = OmegaConf.to_container(cfg.stage.finetune, resolve=True)
    modules = trainable_modules(stage, cfg.stage.policy)
    apply_trainable(toy_bundle.model, modules)
    assert trainable_names(toy_bundle.model) == names_under(toy_bundle.model, ["connector"])


def test_unknown_policies_and_roles_name_the_fix():
    with pytest.raises(ValueError, match="choose among.*allava.*full.*llava"):
        trainable_modules({"name": "finetune", "role": "finetune", "train": None}, "allava2")
    with pytest.raises(ValueError, match="stage.qa.role or stage.qa.train"):
        trainable_modules({"name": "qa", "role": None, "train": None}, "allava")


@pytest.mark.parametrize("use_dora", [False, True])
def test_lora_trains_adapters_only(use_dora, toy_bundle):
    model = toy_bundle.model
    add_lora(model.llm, {"r": 4, "use_dora": use_dora})
    apply_trainable(model, ["connector", "llm"])
    trainable = trainable_names(model)
    assert trainable == names_under(model, ["connector", "llm"], only_adapters_of=["llm"])
    assert any(".lora_A." in n for n in trainable) and any(".lora_B." in n for n in trainable)
    assert any("lora_magnitude_vector" in n for n in trainable) == use_dora
    # Every linear layer of the decoder is adapted, the output head (vocabulary wide) is not.
    assert any("mlp.down_proj.lora_A" in n for n in trainable)
    assert not any(n.startswith("llm.lm_head") for n in trainable)


def test_adapters_join_the_mode_of_their_module(toy_bundle):
    llm = toy_bundle.model.llm.eval()
    add_lora(llm, {"r": 4, "dropout": 0.5})
    assert not any(m.training for m in llm.modules())
    tokens = torch.tensor([[toy_bundle.tokenizer.bos_token_id, 5, 6, 7]])
    with torch.no_grad():
        torch.testing.assert_close(llm(input_ids=tokens).logits, llm(input_ids=tokens).logits)


def test_adapters_on_a_frozen_module_are_refused(toy_bundle):
    add_lora(toy_bundle.model.llm, {"r": 4})
    with pytest.raises(ValueError, match="add 'llm' to the stage's train list"):
        apply_trainable(toy_bundle.model, ["connector"])


def _logits(model, tokens, pixels):
    model.eval()
    with torch.no_grad():
        return model(input_ids=tokens, pixel_values=pixels).logits


@pytest.mark.parametrize("use_dora", [False, True])
def test_lora_merged_at_export_gives_the_same_logits(use_dora, toy_bundle, tmp_path):
    model = toy_bundle.model
    plain_names = {n for n, _ in model.named_parameters()}
    add_lora(model.llm, {"r": 4, "use_dora": use_dora})
    # The toy tower is a CNN: its residual blocks' convolutions (a regex, as peft takes it).
    add_lora(model.vision, {"r": 2, "target_modules": r".*layer\d\.\d\.conv[12]"})
    torch.manual_seed(1)
    for name, param in model.named_parameters():
        if "lora_B" in name:  # zero at initialisation: make the adapters matter
            param.data.normal_(std=0.2)
    tokens = torch.tensor([[toy_bundle.tokenizer.bos_token_id]
                           + [model.image_token_id] * model.num_image_tokens + [5, 6, 7]])
    pixels = torch.randn(1, 3, model.vision.image_size, model.vision.image_size)
    with_adapters = _logits(model, tokens, pixels)
    base_only = _logits(build_vlm(toy_bundle.config).model, tokens, pixels)
    assert not torch.allclose(with_adapters, base_only, atol=1e-3)

    assert merge_lora(model) > 0 and not has_lora(model)
    assert {n for n, _ in model.named_parameters()} == plain_names
    torch.testing.assert_close(_logits(model, tokens, pixels), with_adapters, atol=1e-4, rtol=1e-4)
    reloaded = load_exported(export_model(toy_bundle, tmp_path / "export")).model
    torch.testing.assert_close(_logits(reloaded, tokens, pixels), with_adapters, atol=1e-4, rtol=1e-4)


def test_global_batch_becomes_accumulation_steps():
    assert accumulation_steps(256, 16, 8) == 2  # ALLaVA pretrain on 8 GPUs
    assert accumulation_steps(128, 4, 4) == 8
    assert accumulation_steps(None, 16, 8, default=3) == 3
    with pytest.raises(ValueError, match="not a multiple of per-device batch 12 x 8 devices"):
        accumulation_steps(256, 12, 8, stage_name="pretrain")


@pytest.mark.slow
def test_llava_policy_then_lora_finetune_in_bf16_with_accumulation(tiny_train_config):
    """train.py end to end: the llava policy keeps the LLM frozen in pretrain; finetune trains
    DoRA adapters (4 x 2 accumulated to a global batch of 8) in bf16 with gradient
    checkpointing, and exports plain merged weights that differ from the pretrain export."""
    from allava.training.run import train

    cfg = tiny_train_config(
        "stage.policy=llava", "stages=[pretrain,finetune]", "eval.benchmarks=[]",
        "stage.finetune.lora.llm={r:4,use_dora:true}", "stage.finetune.global_batch_size=8",
        "trainer.precision=bf16-mixed", "model.gradient_checkpointing=true")
    exports = train(cfg)["exports"]
    import lightning as L

    L.seed_everything(cfg.seed)  # as train() does before building: the same initial weights
    initial = build_vlm(cfg.model).model.state_dict()
    pre = load_exported(exports["pretrain"]).model.state_dict()
    fin = load_exported(exports["finetune"]).model.state_dict()
    assert set(pre) == set(fin) and not any("lora_" in k for k in fin)
    llm = [k for k in pre if k.startswith("llm.") and pre[k].is_floating_point()]
    connector = [k for k in pre if k.startswith("connector.")]
    assert all(torch.equal(pre[k], initial[k]) for k in llm)  # frozen in pretrain
    assert not all(torch.equal(pre[k], initial[k]) for k in connector)
    changed = [k for k in llm if not torch.equal(pre[k], fin[k])]
    # The merged adapters changed the adapted projection weights, not the embeddings.
    assert any("q_proj" in k for k in changed) and "llm.model.embed_tokens.weight" not in changed


def test_init_from_a_lora_checkpoint_points_to_the_merged_export(toy_bundle, tmp_path):
    from allava.training.run import load_initial_weights

    add_lora(toy_bundle.model.llm, {"r": 2})
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in toy_bundle.model.state_dict().items()}},
               path)
    with pytest.raises(ValueError, match="export directory"):
        load_initial_weights(toy_bundle, path)


def test_bad_lora_specs_name_the_fix(toy_bundle):
    from allava.training.trainable import add_stage_adapters

    with pytest.raises(ValueError, match="unknown LoRA options \\['rank'\\].*known"):
        add_lora(toy_bundle.model.llm, {"rank": 4})
    with pytest.raises(ValueError, match="LoRA applies to llm or vision"):
        add_stage_adapters(toy_bundle.model, {"connector": {"r": 4}}, "finetune")
    with pytest.raises(ValueError, match="no linear layers.*target_modules"):
        add_lora(toy_bundle.model.vision, {"r": 2})  # the toy tower is a CNN
