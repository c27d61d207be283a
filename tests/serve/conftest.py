"""A tiny exported model, images as data URLs, and one `allava serve` subprocess on it with the
default settings, shared by the modules that need no special configuration."""
from __future__ import annotations

import base64
from pathlib import Path

import openai
import pytest
from PIL import Image

from allava.models.predictor import VLMPredictor, load_model
from tests.helpers.serve_process import ServeProcess
from tests.helpers.tiny_model import export_tiny_model

MODEL_NAME = "tiny"


@pytest.fixture(scope="session")
def model_dir(toy_root, tmp_path_factory) -> Path:
    return export_tiny_model(toy_root, tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="session")
def predictor(model_dir) -> VLMPredictor:
    """The same model in the test process: the reference for the server's answers."""
    return load_model(model_dir)


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve_images")
    paths = {"noise": root / "noise.png", "red": root / "red.png", "wide": root / "wide.png"}
    Image.effect_noise((32, 32), 64).convert("RGB").save(paths["noise"])
    Image.new("RGB", (48, 40), (200, 30, 30)).save(paths["red"])
    Image.linear_gradient("L").resize((90, 20)).convert("RGB").save(paths["wide"])
    return paths


@pytest.fixture(scope="session")
def server(model_dir):
    with ServeProcess(model_dir, "--model-name", MODEL_NAME) as process:
        yield process


@pytest.fixture
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)


def data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def user_message(question: str, image_url: str | None = None) -> dict:
    if image_url is None:
        return {"role": "user", "content": question}
    return {"role": "user", "content": [{"type": "text", "text": question},
                                        {"type": "image_url", "image_url": {"url": image_url}}]}
