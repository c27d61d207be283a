"""The `allava` command routes to every tool, each with its own --help and examples."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from allava.cli.main import TOOLS, main


def run_allava(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "allava.cli.main", *args],
                          capture_output=True, text=True, timeout=120)


def test_help_lists_every_tool_and_the_aliases():
    result = run_allava("--help")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    for name, tool in TOOLS.items():
        assert any(line.split()[:1] == [name] and tool.summary in line for line in lines), name
    assert "allava-data, allava-synth and\nallava-toy still work" in result.stdout
    assert set(TOOLS) == {"data", "synth", "toy", "chat", "serve", "export"}


@pytest.mark.parametrize("tool, usage", [("toy", "usage: allava toy"),
                                         ("synth", "usage: allava synth"),
                                         ("data", "usage: allava data"),
                                         ("chat", "usage: allava chat"),
                                         ("serve", "usage: allava serve"),
                                         ("export", "usage: allava export")])
def test_each_tool_answers_help_under_its_allava_name_with_examples(tool, usage, capsys):
    with pytest.raises(SystemExit) as stop:
        main([tool, "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(usage)
    assert "examples:" in out and f"allava {tool}" in out.split("examples:")[1]


def test_data_convert_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["data", "convert", "--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: allava data convert") and "examples:" in out


def test_unknown_tool_is_an_error_naming_the_tools():
    result = run_allava("train")
    assert result.returncode == 2
    assert "unknown tool 'train'; choose among data, synth, toy, chat, serve, export" in result.stderr


def test_a_tool_error_names_the_allava_subcommand(tmp_path):
    result = run_allava("synth", "--input", str(tmp_path / "missing"), "--out", str(tmp_path / "o"),
                        "--mode", "laion", "--base-url", "http://127.0.0.1:9", "--model", "m")
    assert result.returncode == 2
    assert result.stderr.startswith("allava synth: error:")


def test_toy_runs_through_allava(tmp_path, capsys):
    out = tmp_path / "toy"
    code = main(["toy", "--out", str(out), "--num-images", "6", "--num-text", "4",
                 "--num-val-images", "2", "--benchmark-items", "4", "--image-size", "32",
                 "--vocab-size", "300", "--no-progress"])
    assert code == 0
    info = json.loads((out / "toy_world.json").read_text())
    assert info["counts"]["caption"] == 6 and info["counts"]["text"] == 4
    assert (out / "benchmarks" / "toy_pope.tsv").is_file()
