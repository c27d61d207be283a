"""Any model trained here as a Hugging Face remote-code directory.

`AutoModelForImageTextToText.from_pretrained(dir, trust_remote_code=True)` and
`AutoProcessor.from_pretrained(dir, trust_remote_code=True)` load it with transformers, timm and
torch alone: the directory carries its own code (`resources/remote_code/*.py`, and this
package's standalone modules copied: `SHIPPED_MODULES`). Every tower, connector and
transformers LLM fits; the weights keep the training code's names (`vision.*`, `connector.*`,
`llm.*`).
"""
from __future__ import annotations

import ast
import copy
import inspect
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import transformers
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import save_file
from torch import nn

from allava.export.image_steps import describe_transform
from allava.export.not_exportable import NotExportable
from allava.export.older_transformers import make_tokenizer_portable, with_explicit_rope_theta
from allava.models import connectors, image_padding, layer_tokens
from allava.models.build import VLMBundle
from allava.models.chat_format import IMAGE_TAG, multimodal_chat_template
from allava.models.vision_tower import TimmVisionTower
from allava.training.trainable import has_lora
from allava.utils.package_data import resource

WEIGHTS = "model.safetensors"
CODE_FILES = ("configuration_allava.py", "modeling_allava.py", "processing_allava.py")
# This package's modules that the directory carries as they are, under these names (the code
# files import them so): the connectors, the tower's token read-out, the image padding.
SHIPPED_MODULES = {connectors: "allava_connectors.py", layer_tokens: "allava_layer_tokens.py",
                   image_padding: "allava_image_padding.py"}
CONFIG_CLASS = "configuration_allava.AllavaConfig"
MODEL_CLASS = "modeling_allava.AllavaForConditionalGeneration"
PROCESSOR_CLASS = "processing_allava.AllavaProcessor"
# What the shipped connectors module may import: the directory is loaded without `allava`.
_STANDALONE_IMPORTS = {"__future__", "math", "typing", "torch", "PIL"}


def write_remote_code(bundle: VLMBundle, out_dir: str | Path) -> Path:
    """Writes `bundle` to `out_dir` (created if needed) as a Hugging Face remote-code directory:
    config.json, model.safetensors, generation_config.json, the tokenizer with a chat template
    that takes image parts, processor_config.json, and the Python files that load them.
    Raises NotExportable, before writing anything, for a part it cannot express."""
    if has_lora(bundle.model):
        raise NotExportable("the model has LoRA adapters not merged into its weights; merge them "
                            "first (allava.training.trainable.merge_lora; a stage's export "
                            "directory holds merged weights)")
    _check_language_model(bundle.model.llm)
    config = model_config(bundle)
    processor = processor_config(bundle)
    shipped = {name: _standalone_source(module) for module, name in SHIPPED_MODULES.items()}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_code(out, shipped)
    _write_json(out / "config.json", config)
    _write_weights(bundle.model, out / WEIGHTS)
    generation_config(bundle).save_pretrained(str(out))
    _write_tokenizer(bundle, out)
    _write_json(out / "processor_config.json", processor)
    return out


def _check_language_model(llm: nn.Module) -> None:
    # The exported config rebuilds the LLM from its `text_config` through transformers' own
    # registry (AutoConfig.for_model, AutoModelForCausalLM.from_config). An LLM whose code comes
    # from its Hub repository is not in that registry, and copying another project's code into
    # this directory would ship files we neither own nor vet: refuse rather than half-work.
    module = type(llm).__module__
    if module.split(".")[0] != "transformers":
        raise NotExportable(
            f"the language model {type(llm).__name__} runs code of its own repository ({module}, "
            "trust_remote_code); only language models built into transformers can be exported "
            "as remote code")


def model_config(bundle: VLMBundle) -> dict[str, Any]:
    """The fields of config.json (read by `configuration_allava.AllavaConfig`)."""
    model = bundle.model
    # AutoModel too: what loaders fall back to for a model type they do not know (lmms-eval's
    # `huggingface` model, for one).
    auto_map = {"AutoConfig": CONFIG_CLASS, "AutoModel": MODEL_CLASS,
                "AutoModelForImageTextToText": MODEL_CLASS, "AutoProcessor": PROCESSOR_CLASS}
    if hasattr(transformers, "AutoModelForVision2Seq"):  # the 4.x name of the same auto class
        auto_map["AutoModelForVision2Seq"] = MODEL_CLASS
    return {
        "model_type": "allava_vlm",
        "architectures": [MODEL_CLASS.split(".")[1]],
        "auto_map": auto_map,
        "text_config": with_explicit_rope_theta(model.llm.config.to_diff_dict()),
        "vision_config": vision_config(model.vision),
        "connector_config": connector_config(model.connector, bundle.config.connector),
        "image_token_id": model.image_token_id,
        "image_token_index": model.image_token_id,  # LLaVA's name for it
        "num_image_tokens": model.num_image_tokens,
        "torch_dtype": str(next(model.llm.parameters()).dtype).removeprefix("torch."),
        "transformers_version": transformers.__version__,
    }


def vision_config(vision: TimmVisionTower) -> dict[str, Any]:
    """What rebuilds the timm tower, and its preprocessing (for the reader: the processor
    follows `image_steps`, the transform itself)."""
    kept = set(vision.model.state_dict())
    transient = sorted(name for name, _ in vision.model.named_buffers() if name not in kept)
    if transient:
        # transformers re-creates buffers missing from the weights file with its own
        # initialisation, which knows nothing of timm's (rotary tables, position indices).
        raise NotExportable(f"the tower {vision.model_name} computes buffers that its weights do "
                            f"not hold ({', '.join(transient[:3])}); it cannot load as remote code")
    return {
        "model_name": vision.model_name,
        "model_kwargs": _plain(vision.model_kwargs),
        "feature_layer": vision.feature_layer,
        "prefix_tokens": "keep" if vision.keep_prefix_tokens else "drop",
        "image_size": vision.image_size,
        "image_mode": vision.image_mode,
        "data_config": _plain(dict(vision.data_config)),
    }


def connector_config(connector: connectors.Connector, node: DictConfig) -> dict[str, Any]:
    """`class_name` and constructor arguments: the `model.connector` node's, widths filled in."""
    if type(connector).__module__ != connectors.__name__:
        raise NotExportable(
            f"the connector {type(connector).__name__} is not one of {connectors.__name__}, the "
            "module the exported directory carries")
    arguments = {key: value for key, value in _plain(node).items() if not key.startswith("_")}
    return {"class_name": type(connector).__name__, **arguments,
            "in_dim": connector.in_dim, "out_dim": connector.out_dim}


def generation_config(bundle: VLMBundle) -> transformers.GenerationConfig:
    """The LLM's generation settings, with the tokenizer's special tokens (as training set them)."""
    generation = copy.deepcopy(bundle.model.llm.generation_config)
    tokenizer = bundle.tokenizer
    generation.bos_token_id = tokenizer.bos_token_id
    generation.eos_token_id = tokenizer.eos_token_id
    generation.pad_token_id = tokenizer.pad_token_id
    return generation


def _write_code(out: Path, shipped: dict[str, str]) -> None:
    for name in CODE_FILES:
        (out / name).write_text(resource("allava.export", "resources", "remote_code", name)
                                .read_text(encoding="utf-8"), encoding="utf-8")
    for name, source in shipped.items():
        (out / name).write_text(source, encoding="utf-8")


def _standalone_source(module: ModuleType) -> str:
    """`module`'s source, checked to import nothing a bare transformers install lacks."""
    source = inspect.getsource(module)
    foreign = _imported_packages(source) - _STANDALONE_IMPORTS
    if foreign:
        raise NotExportable(f"{module.__name__} imports {sorted(foreign)}; the exported directory "
                            f"can only carry a module importing {sorted(_STANDALONE_IMPORTS)}")
    return source


def _imported_packages(source: str) -> set[str]:
    """Top-level names of what `source` imports ("." for a relative import)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("." if node.level else node.module.split(".")[0])
    return found


def _write_weights(model: nn.Module, path: Path) -> None:
    """The state dict under its own names; a tied output embedding is left out (transformers
    ties it again on load, as the LLM's config says)."""
    state = model.state_dict()
    tied = _tied_output_key(model.llm)
    save_file({name: tensor.contiguous() for name, tensor in state.items() if name != tied},
              str(path), metadata={"format": "pt"})


def _tied_output_key(llm: nn.Module) -> str | None:
    output, embed = llm.get_output_embeddings(), llm.get_input_embeddings()
    if output is None or output.weight is not embed.weight:
        return None
    if not getattr(llm.config, "tie_word_embeddings", False):
        return None
    name = next(name for name, module in llm.named_modules() if module is output)
    return f"llm.{name}.weight"


def processor_config(bundle: VLMBundle) -> dict[str, Any]:
    """The fields of processor_config.json (read by `processing_allava.AllavaProcessor`)."""
    try:
        image_steps = describe_transform(bundle.model.vision.image_transform())
    except ValueError as error:
        raise NotExportable(str(error)) from error
    return {"processor_class": PROCESSOR_CLASS.split(".")[1],
            "auto_map": {"AutoProcessor": PROCESSOR_CLASS},
            "image_steps": image_steps,
            "num_image_tokens": bundle.model.num_image_tokens,
            "image_token": IMAGE_TAG}


def _write_tokenizer(bundle: VLMBundle, out: Path) -> None:
    """The tokenizer, its chat template taught image parts (the processor's template too)."""
    tokenizer = copy.deepcopy(bundle.tokenizer)
    tokenizer.chat_template = multimodal_chat_template(tokenizer.chat_template,
                                                       bundle.processor.image_placement)
    # Batched prompts for generate() pad on the left; init_kwargs is what save_pretrained writes.
    tokenizer.padding_side = tokenizer.init_kwargs["padding_side"] = "left"
    tokenizer.save_pretrained(str(out))
    make_tokenizer_portable(out, tokenizer.model_input_names)
    # transformers before 4.50 reads a processor's template from this file only.
    _write_json(out / "chat_template.json", {"chat_template": tokenizer.chat_template})


def _plain(value: Any) -> Any:
    """Config values as JSON: OmegaConf containers and tuples to dicts and lists."""
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _write_json(path: Path, fields: dict[str, Any]) -> None:
    path.write_text(json.dumps(fields, indent=2, sort_keys=True) + "\n", encoding="utf-8")
