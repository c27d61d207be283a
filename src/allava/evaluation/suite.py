"""Benchmark specs: what eval.py needs to know about one benchmark, read from
`configs/benchmark/<name>.yaml`.

A config names the reader of each file layout it supports (`sources.tsv`, `sources.llava`, each a
Hydra `_target_` with its file arguments), the layout used by default, the scorer
(`suite_scorers.SCORERS`), the prompt style, the generation length and the published columns the
results fill. Paths interpolate `${benchmark_data_dir}` (eval.py: `benchmark_data_dir`, default
`data/eval`), `${paths.*}` and, inside train.py, `${data.*}`. A `.tsv` path given instead of a name
is read as a generic VLMEvalKit file, scored by its kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from allava.evaluation.benchmark_files import REQUIRED_COLUMNS, Benchmark, check_tsv_header, load_tsv_benchmark
from allava.evaluation import tsv_readers
from allava.evaluation.prompts import PromptStyle, default_prompt_style
from allava.evaluation.suite_scorers import get_scorer, judged

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"
# Loader arguments that name files or folders: checked before the first benchmark runs.
_PATH_ARGUMENTS = ("path", "question_file", "annotation_file", "annotation_dir", "image_folder",
                   "problems_file", "pid_splits_file")


@dataclass
class BenchmarkSpec:
    name: str
    load: Callable[[], Benchmark]
    scorer: str = "generic"
    prompt: PromptStyle = field(default_factory=PromptStyle)
    max_new_tokens: int | None = None
    layout: str = "tsv"
    files: dict[str, Path] = field(default_factory=dict)  # argument -> path, for the up-front check
    report: list[dict[str, Any]] = field(default_factory=list)  # published columns it fills
    header: tuple[str, ...] | None = REQUIRED_COLUMNS  # a TSV's required columns (None: not a TSV)

    @property
    def judged(self) -> bool:
        """Whether scoring calls the LLM judge (so the judge is checked before generating)."""
        return judged(self.scorer)

    def check_files(self) -> None:
        """Fails before any model work when a file or folder of the benchmark is missing."""
        for argument, path in self.files.items():
            if not path.exists():
                raise FileNotFoundError(
                    f"benchmark {self.name!r} ({self.layout} layout): {argument} {path} does not "
                    "exist. The benchmark's config (configs/benchmark/<name>.yaml) says where its "
                    "files come from; set benchmark_data_dir=<folder> or point that config at them"
                )
        if self.header is not None and "path" in self.files:
            check_tsv_header(self.files["path"], self.header)


def tsv_spec(path: Path) -> BenchmarkSpec:
    """A VLMEvalKit TSV given by path: named by its stem, scored by its kind."""
    name = path.stem
    return BenchmarkSpec(name=name, load=lambda: load_tsv_benchmark(path), prompt=default_prompt_style(name),
                         files={"path": path})


def spec_from_config(name: str, node: DictConfig, layout: str | None = None) -> BenchmarkSpec:
    """A spec from a resolved benchmark config node (see the module docstring)."""
    from hydra.utils import instantiate

    sources = node.get("sources")
    if not sources:
        raise ValueError(f"benchmark {name!r}: its config has no `sources` (reader per file layout)")
    layout = layout or node.get("layout") or next(iter(sources))
    if layout not in sources:
        raise ValueError(f"benchmark {name!r} has no {layout!r} layout; it has {sorted(sources)}")
    source = sources[layout]
    files = {key: Path(str(source[key])).expanduser() for key in _PATH_ARGUMENTS
             if source.get(key) is not None}
    scorer = str(node.get("scorer", "generic"))
    get_scorer(scorer)  # an unknown scorer fails now, not after hours of generation

    def load() -> Benchmark:
        benchmark = instantiate(source)
        benchmark.name = name
        return benchmark

    prompt_node = node.get("prompt")
    prompt = PromptStyle.from_config(OmegaConf.to_container(prompt_node) if prompt_node else None)
    report = OmegaConf.to_container(node.get("report")) if node.get("report") else []
    return BenchmarkSpec(name=name, load=load, scorer=scorer, prompt=prompt,
                         max_new_tokens=node.get("max_new_tokens"),
                         layout=layout, files=files, report=list(report),
                         header=_header_of(str(source._target_)))


def _header_of(target: str) -> tuple[str, ...] | None:
    """The columns a reader requires of its TSV: a benchmark reader's own layout, the generic
    reader's minimum, or None for a reader of another layout (it checks its files itself)."""
    module, _, function = target.rpartition(".")
    if module == tsv_readers.__name__ and function in tsv_readers.LAYOUT_OF_READER:
        return tsv_readers.LAYOUT_OF_READER[function].required
    if function == "load_tsv_benchmark":
        return REQUIRED_COLUMNS
    return None


def known_benchmarks(config_dir: Path = CONFIG_DIR) -> list[str]:
    return sorted(p.stem for p in (config_dir / "benchmark").glob("*.yaml"))


def benchmark_spec_resolver(cfg: DictConfig, config_dir: Path = CONFIG_DIR) -> Callable[[str], BenchmarkSpec]:
    """Name -> BenchmarkSpec from `configs/benchmark/<name>.yaml`, resolved against `cfg`."""
    settings = cfg.eval if "eval" in cfg else cfg
    data_dir = settings.get("benchmark_data_dir") or f"{cfg.paths.data_dir}/eval"
    layouts: Mapping[str, str] = settings.get("benchmark_layouts") or {}
    overrides: Mapping[str, Any] = settings.get("benchmark_overrides") or {}
    context = {"paths": cfg.paths, "data": cfg.get("data") or {}, "benchmark_data_dir": data_dir}

    def resolve(name: str) -> BenchmarkSpec:
        node_file = config_dir / "benchmark" / f"{name}.yaml"
        if not node_file.is_file():
            raise FileNotFoundError(
                f"unknown benchmark {name!r}: no {node_file}. Known: {known_benchmarks(config_dir)}; "
                "or pass a path to a TSV file in the VLMEvalKit layout"
            )
        node = OmegaConf.load(node_file)
        if name in overrides:
            node = OmegaConf.merge(node, overrides[name])
        merged = OmegaConf.merge(context, {"benchmark": node})
        # Only the benchmark's own node is resolved: the rest of the context may hold
        # interpolations that need a running Hydra app (paths.output_dir).
        resolved = OmegaConf.create(OmegaConf.to_container(merged.benchmark, resolve=True))
        return spec_from_config(name, resolved, layouts.get(name))

    return resolve
