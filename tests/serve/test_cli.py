"""`allava serve` refuses to start, with a message naming the problem and exit status 2, before
it loads the model: an API-key variable that is unset, a port that is taken, a folder that is
no exported model."""
from __future__ import annotations

import socket

import pytest

from allava.serve.cli import main


def test_an_unset_key_variable_stops_the_start(model_dir, monkeypatch, capsys):
    monkeypatch.delenv("ALLAVA_SERVE_UNSET_KEY", raising=False)
    with pytest.raises(SystemExit) as stopped:
        main([str(model_dir), "--api-key-env", "ALLAVA_SERVE_UNSET_KEY"])
    assert stopped.value.code == 2
    assert "ALLAVA_SERVE_UNSET_KEY" in capsys.readouterr().err


def test_a_port_in_use_is_reported(model_dir, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main([str(model_dir), "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_a_folder_that_is_no_model_is_reported(tmp_path, capsys):
    assert main([str(tmp_path), "--port", "0"]) == 2
    assert "is not an exported model directory" in capsys.readouterr().err
