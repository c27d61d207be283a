"""The benchmarks by name: each family module of `allava.evaluation.benchmarks` registers its
`BenchmarkDefinition`s here, in code, and `benchmark_spec_resolver` turns a name into the
`BenchmarkSpec` the runner evaluates. No file is looked up by a repository path, so an installed
package knows every benchmark.

A definition holds code and data. The code: a `Reader` per file layout (`tsv`: VLMEvalKit's file;
`llava`: LLaVA-1.5's question file, annotations and images). The data, `settings`, is what a run
may change: the scorer's name (`scorers.SCORERS`), the layout used by default, `sources` (the
reader's file arguments per layout), the prompt style (`prompts.PromptStyle` fields), the
generation length and the published columns the results fill (`report`). Paths interpolate
`${benchmark_data_dir}` (eval.py: `benchmark_data_dir`, default `data/eval`), `${paths.*}` and,
inside train.py, `${data.*}`. eval.py's `benchmark_layouts` picks a layout and its
`benchmark_overrides` are merged over the settings (OmegaConf) before they are resolved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from allava.evaluation.formats.vlmevalkit_tsv import REQUIRED_COLUMNS, check_tsv_header
from allava.evaluation.items import Benchmark
from allava.evaluation.prompts import PromptStyle
from allava.evaluation.scorers import Scorer, get_scorer


@dataclass(frozen=True)
class Reader:
    """How one file layout of a benchmark is read: `load(**arguments)` with the layout's `sources`
    arguments. `paths` are the arguments that name files or folders and `header` the columns a TSV
    at `path` must have (None: the reader checks its files itself); both are checked before any
    model work."""

    load: Callable[..., Benchmark]
    paths: tuple[str, ...] = ("path",)
    header: tuple[str, ...] | None = None


def tsv_reader(load: Callable[..., Benchmark], header: tuple[str, ...] = REQUIRED_COLUMNS) -> Reader:
    """A reader of one VLMEvalKit TSV (`path`) with the columns `header`."""
    return Reader(load, ("path",), header)


def llava_reader(load: Callable[..., Benchmark], *paths: str) -> Reader:
    """A reader of LLaVA-1.5's layout, whose file and folder arguments are `paths`."""
    return Reader(load, paths, None)


@dataclass(frozen=True)
class BenchmarkDefinition:
    """One benchmark: its readers by layout (code) and its default `settings` (data; see the module
    docstring)."""

    name: str
    readers: Mapping[str, Reader]
    settings: Mapping[str, Any]


_DEFINITIONS: dict[str, BenchmarkDefinition] = {}


def register(definition: BenchmarkDefinition) -> BenchmarkDefinition:
    """Makes `definition` known by its name; its settings must give files for each of its readers."""
    if definition.name in _DEFINITIONS:
        raise ValueError(f"benchmark {definition.name!r} is registered twice")
    sources = set(definition.settings.get("sources") or ())
    if sources != set(definition.readers) or definition.settings.get("layout") not in sources:
        raise ValueError(f"benchmark {definition.name!r}: its settings' sources {sorted(sources)} and "
                         f"layout must match its readers {sorted(definition.readers)}")
    _DEFINITIONS[definition.name] = definition
    return definition


def define(
    name: str,
    *,
    scorer: Scorer,
    readers: Mapping[str, Reader],
    sources: Mapping[str, Mapping[str, Any]],
    report: list[dict[str, Any]],
    prompt: Mapping[str, Any] | None = None,
    max_new_tokens: int | None = None,
    layout: str = "tsv",
) -> BenchmarkDefinition:
    """Registers benchmark `name` with settings in the usual shape: `sources` {layout: reader
    arguments}, `layout` the default one (eval.py: `benchmark_layouts.<name>=llava` picks the
    other), `prompt` the PromptStyle fields that differ from LLaVA-1.5's defaults, `report` the
    published columns (allava/evaluation/resources/published_allava.yaml) its results fill, as
    {column, metric (a dotted path into the results entry), scale}."""
    settings: dict[str, Any] = {"scorer": scorer.name}
    if max_new_tokens is not None:
        settings["max_new_tokens"] = max_new_tokens
    settings.update(layout=layout, sources=dict(sources), prompt=dict(prompt or {}), report=list(report))
    return register(BenchmarkDefinition(name, readers, settings))


def known_benchmarks() -> list[str]:
    return sorted(_DEFINITIONS)


def get_definition(name: str) -> BenchmarkDefinition:
    try:
        return _DEFINITIONS[name]
    except KeyError:
        raise FileNotFoundError(
            f"unknown benchmark {name!r}: none of that name is defined in allava.evaluation.benchmarks. "
            f"Known: {known_benchmarks()}; or pass a path to a TSV file in the VLMEvalKit layout"
        ) from None


@dataclass
class BenchmarkSpec:
    """What the runner needs of one benchmark, its settings resolved."""

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
        return get_scorer(self.scorer).judged

    def check_files(self) -> None:
        """Fails before any model work when a file or folder of the benchmark is missing."""
        for argument, path in self.files.items():
            if not path.exists():
                raise FileNotFoundError(
                    f"benchmark {self.name!r} ({self.layout} layout): {argument} {path} does not "
                    "exist. Its definition (allava.evaluation.benchmarks) says where its files come "
                    "from; set benchmark_data_dir=<folder>, or point it at them with '+benchmark_overrides="
                    f"{{{self.name}: {{sources: {{{self.layout}: {{{argument}: <path>}}}}}}}}'"
                )
        if self.header is not None and "path" in self.files:
            check_tsv_header(self.files["path"], self.header)


def spec_from_config(
    definition: BenchmarkDefinition, node: DictConfig, layout: str | None = None
) -> BenchmarkSpec:
    """The spec of `definition` with its settings resolved into `node`, read with `layout` (default:
    the settings' own)."""
    name = definition.name
    sources = node.get("sources")
    if not sources:
        raise ValueError(f"benchmark {name!r} has no `sources` in its settings (the files of each layout)")
    layout = layout or node.get("layout") or next(iter(sources))
    available = sorted(key for key in sources if key in definition.readers)
    if layout not in available:
        raise ValueError(f"benchmark {name!r} has no {layout!r} layout; it has {available}")
    reader, arguments = definition.readers[layout], OmegaConf.to_container(sources[layout])
    files = {key: Path(str(arguments[key])).expanduser() for key in reader.paths
             if arguments.get(key) is not None}
    scorer = str(node.get("scorer", "generic"))
    get_scorer(scorer)  # an unknown scorer fails now, not after hours of generation

    def load() -> Benchmark:
        benchmark = reader.load(**arguments)
        benchmark.name = name
        return benchmark

    prompt_node = node.get("prompt")
    prompt = PromptStyle.from_config(OmegaConf.to_container(prompt_node) if prompt_node else None)
    report = OmegaConf.to_container(node.get("report")) if node.get("report") else []
    return BenchmarkSpec(name=name, load=load, scorer=scorer, prompt=prompt,
                         max_new_tokens=node.get("max_new_tokens"),
                         layout=layout, files=files, report=list(report), header=reader.header)


def benchmark_spec_resolver(cfg: DictConfig) -> Callable[[str], BenchmarkSpec]:
    """Name -> BenchmarkSpec of a registered benchmark, its settings resolved against `cfg`
    (eval.py's config, or train.py's with its `eval:` node)."""
    settings = cfg.eval if "eval" in cfg else cfg
    data_dir = settings.get("benchmark_data_dir") or f"{cfg.paths.data_dir}/eval"
    layouts: Mapping[str, str] = settings.get("benchmark_layouts") or {}
    overrides: Mapping[str, Any] = settings.get("benchmark_overrides") or {}
    context = {"paths": cfg.paths, "data": cfg.get("data") or {}, "benchmark_data_dir": data_dir}

    def resolve(name: str) -> BenchmarkSpec:
        definition = get_definition(name)
        node = OmegaConf.create(dict(definition.settings))
        if name in overrides:
            node = OmegaConf.merge(node, overrides[name])
        merged = OmegaConf.merge(context, {"benchmark": node})
        # Only the benchmark's own node is resolved: the rest of the context may hold
        # interpolations that need a running Hydra app (paths.output_dir).
        resolved = OmegaConf.create(OmegaConf.to_container(merged.benchmark, resolve=True))
        return spec_from_config(definition, resolved, layouts.get(name))

    return resolve
