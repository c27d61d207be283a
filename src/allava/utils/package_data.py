"""Data files shipped inside the package, read through `importlib.resources`.

The defaults of the YAML loaders (teacher prompts, caption instructions, prices, judge prompts,
published results) live in `resources/` folders next to the modules that read them, e.g.
`allava/synth/resources/prices.yaml`. They are reached as `importlib.resources` Traversables,
never through `__file__`, so that they are found from an editable install, a regular one and a
zipped wheel alike. A user's own file or folder (a `str` or a `Path`) replaces a default.
"""
from __future__ import annotations

import os
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ResourcePath", "Traversable", "read_yaml", "resource", "user_or_default"]

# What a loader accepts for its optional path argument: a user's file or folder, or a Traversable.
ResourcePath = str | os.PathLike[str] | Traversable


def resource(package: str, *parts: str) -> Traversable:
    """`parts` under the folder of `package`, e.g.
    `resource("allava.synth", "resources", "prices.yaml")`."""
    location = files(package)
    for part in parts:
        location = location / part
    return location


def user_or_default(path: ResourcePath | None, default: Traversable) -> Traversable:
    """The user's `path` (a `str` or path-like becomes a `Path`), or `default` when it is None or
    empty. Either supports `.is_file()`, `.read_text()` and `/`."""
    if path is None or (isinstance(path, str) and not path):
        return default
    if isinstance(path, (str, os.PathLike)):
        return Path(path)
    return path


def read_yaml(path: ResourcePath | None, default: Traversable, what: str) -> tuple[Traversable, Any]:
    """The user's `path` or `default`, and its parsed YAML. A missing file raises
    FileNotFoundError naming `what` and the path; invalid YAML a ValueError naming the path."""
    location = user_or_default(path, default)
    if not location.is_file():
        raise FileNotFoundError(f"{what} not found: {location}")
    try:
        return location, yaml.safe_load(location.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{location}: not valid YAML ({error})") from error
