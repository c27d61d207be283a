"""The YAML defaults ship inside the package: a built wheel holds them, and every loader finds its
default when allava is imported from that wheel (a zip, so through importlib.resources only, with
no repository `configs/` folder in reach)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

RESOURCES = [
    "allava/synth/resources/prompts/laion.yaml",
    "allava/synth/resources/prompts/vflan.yaml",
    "allava/synth/resources/prompts/text.yaml",
    "allava/synth/resources/caption_instructions.yaml",
    "allava/synth/resources/prices.yaml",
    "allava/evaluation/judge/resources/prompts.yaml",
    "allava/evaluation/judge/resources/choice_matcher.yaml",
    "allava/evaluation/resources/published_allava.yaml",
]

# Runs in a fresh interpreter whose first sys.path entry (PYTHONPATH) is the wheel; prints what
# each loader returned with its default.
LOADERS = """
import json, sys
import allava
from allava.synth.prompts import MODES, load_caption_instructions, load_prompts
from allava.synth.costs import PRICES_FILE, load_prices
from allava.evaluation.judge.prompts import load_judge_prompts
from allava.evaluation.judge.choice_matcher import load_choice_matcher_prompt
from allava.evaluation.report import load_published
from allava.evaluation.registry import benchmark_spec_resolver, known_benchmarks
from omegaconf import OmegaConf

resolve = benchmark_spec_resolver(OmegaConf.create({"paths": {"data_dir": "/data"}}))
print(json.dumps({
    "allava_file": allava.__file__,
    "prices_file": str(PRICES_FILE),
    "prompts": {mode: load_prompts(mode).user for mode in MODES},
    "caption_instructions": load_caption_instructions(),
    "gpt_4o_prices": load_prices("gpt-4o"),
    "judge": [load_judge_prompts().mmvet.instructions, load_judge_prompts().llava_bench.system],
    "choice_matcher": load_choice_matcher_prompt()["instructions"],
    "published_rows": [row.model for row in load_published().rows],
    "configs_modules": sorted(m for m in sys.modules if m.startswith("allava.evaluation.pipeline")),
    "benchmarks": known_benchmarks(),
    "mme_file": str(resolve("mme").files["path"]),
}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the project (so that the build's `build/` and `*.egg-info`
    folders land in the temporary directory, not in the working tree)."""
    tmp = tmp_path_factory.mktemp("wheel")
    project = tmp / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, project / name)
    shutil.copytree(REPO / "src", project / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
    dist = tmp / "dist"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
               "--no-index", "--disable-pip-version-check", "-w", str(dist), str(project)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp)
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = dist.glob("allava-*.whl")
    return built


def test_the_wheel_holds_every_resource_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in RESOURCES if name not in names]
    assert not missing, f"not in {wheel.name}: {missing}"
    assert not any(name.startswith("configs/") for name in names)


def test_every_loader_finds_its_default_from_the_wheel(wheel):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["PYTHONPATH"] = str(wheel)  # before site-packages and the editable install's src path
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run([sys.executable, "-c", LOADERS], capture_output=True, text=True,
                          env=env, cwd=wheel.parent.parent, timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])

    # The package came from the wheel, not from the repository's src/.
    assert Path(out["allava_file"]).is_relative_to(wheel), out["allava_file"]
    assert out["prices_file"].startswith(str(wheel)), out["prices_file"]
    assert not out["configs_modules"]  # report.py no longer goes through evaluation.cli

    assert set(out["prompts"]) == {"laion", "vflan", "text"}
    assert all(user.strip() for user in out["prompts"].values())
    assert "{question}" in out["prompts"]["vflan"] and "{instruction}" in out["prompts"]["text"]
    assert out["caption_instructions"] and all(out["caption_instructions"])
    assert out["gpt_4o_prices"]["input_per_million"] > 0
    assert all(text.strip() for text in out["judge"])
    assert "{options}" in out["choice_matcher"] and "{answer}" in out["choice_matcher"]
    assert out["published_rows"][:1] == ["ALLaVA-Phi2 (2.7B)"]
    # The benchmarks are defined in the package: every one resolves with no configs/ folder.
    assert {"mme", "pope", "mmvet", "toy_pope"} <= set(out["benchmarks"])
    assert out["mme_file"] == "/data/eval/MME.tsv"


def test_read_yaml_names_a_missing_or_broken_user_file(tmp_path):
    from allava.utils.package_data import read_yaml, resource

    default = resource("allava.synth", "resources", "prices.yaml")
    with pytest.raises(FileNotFoundError, match="prices file not found: .*absent.yaml"):
        read_yaml(tmp_path / "absent.yaml", default, "prices file")
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [unclosed\n", encoding="utf-8")
    with pytest.raises(ValueError, match="broken.yaml: not valid YAML"):
        read_yaml(str(broken), default, "prices file")
    location, table = read_yaml(None, default, "prices file")
    assert location == default and isinstance(table, dict) and table
