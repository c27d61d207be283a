"""The documentation that code, configs and error messages point to exists.

A citation names a markdown file and one of its headings, `README.md, "Heading"` or
`benchmarks/README.md, "Heading"` (single quotes work too), so that a reader can find the section
and this test can check that it is still there. Also checked: the README stays a short user guide
(length, no dates or commit hashes), and its `allava ...` examples name real tools.
Everything here reads files of the repository; nothing touches the network.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BENCHMARKS_README = ROOT / "benchmarks" / "README.md"
CITABLE = {"README.md": README, "benchmarks/README.md": BENCHMARKS_README}
README_MAX_LINES = 250
TOOLS = ("data", "synth", "toy", "chat", "serve", "export")  # `allava <tool>`: see src/allava/cli/main.py

# Between the file and the heading: a comma, then white space that may cross a line break of a
# comment (`#` in YAML, Python, Makefile, TOML).
_GAP = r",[ \t]*(?:\n[ \t]*#?[ \t]*)?"
_QUOTED = r"(?:\"(?P<dq>[^\"\n]{1,120})\"|'(?P<sq>[^'\n]{1,120})')"
CITATION = re.compile(r"(?<![\w/.-])`?(?P<file>(?:benchmarks/)?README\.md)`?" + _GAP + _QUOTED)
# `README, "X"` or `README 'X'`-like forms that name no file: a reader cannot tell which README.
OLD_STYLE = re.compile(r"(?<![\w/.-])`?README(?![\w.])`?" + r"(?:,[ \t]*(?:\n[ \t]*#?[ \t]*)?|[ \t]+)"
                       + r"[\"']")
FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+-]*)")
ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
DATE = re.compile(r"(?<!\d)(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?!\d)")
HEX_IN_BACKTICKS = re.compile(r"`([0-9a-fA-F]{7,40})`")
HEX_AFTER_COMMIT = re.compile(r"\bcommits?\b[\s:`(]*([0-9a-fA-F]{7,40})\b", re.IGNORECASE)


@dataclass(frozen=True)
class Citation:
    file: str  # "README.md" or "benchmarks/README.md", as written
    heading: str
    where: str  # "path:line" of the citing text

    def __str__(self) -> str:
        return f'{self.where}: {self.file}, "{self.heading}"'


# --- parsing (pure functions on strings, tested below) -------------------------------------------

def find_citations(text: str, source: str = "<string>") -> list[Citation]:
    """Every `README.md, "X"` / `benchmarks/README.md, 'X'` citation in `text`."""
    found = []
    for match in CITATION.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        heading = match.group("dq") if match.group("dq") is not None else match.group("sq")
        found.append(Citation(match.group("file"), heading.strip(), f"{source}:{line}"))
    return found


def find_old_style(text: str, source: str = "<string>") -> list[str]:
    """`README, "X"`-style citations that name no file, as "path:line: excerpt"."""
    hits = []
    for match in OLD_STYLE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        excerpt = text[match.start(): match.end() + 40].split("\n")[0]
        hits.append(f"{source}:{line}: {excerpt}")
    return hits


def markdown_headings(text: str) -> set[str]:
    """The text of every ATX (`## X`) and setext heading, outside fenced code blocks."""
    headings: set[str] = set()
    fence: str | None = None
    previous = ""
    for line in text.splitlines():
        opening = FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1) == fence and not opening.group(2):
                fence = None
            previous = ""
            continue
        if opening:
            fence = opening.group(1)
            previous = ""
            continue
        atx = ATX.match(line)
        if atx:
            headings.add(atx.group(2).strip())
        elif SETEXT.match(line) and previous.strip() and not previous.lstrip().startswith("|"):
            headings.add(previous.strip())
        previous = line
    return headings


def missing_headings(citations: list[Citation], headings_by_file: dict[str, set[str]]) -> list[str]:
    """The citations whose heading is not among the headings of the cited file."""
    problems = []
    for citation in citations:
        headings = headings_by_file.get(citation.file)
        if headings is None:
            problems.append(f"{citation}: {citation.file} does not exist")
        elif citation.heading not in headings:
            problems.append(f"{citation}: no such heading in {citation.file}")
    return problems


def fenced_shell_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of every line inside ```bash / ```sh / ```shell blocks."""
    lines, fence, shell = [], None, False
    for number, line in enumerate(text.splitlines(), 1):
        opening = FENCE.match(line)
        if fence is None:
            if opening:
                fence, shell = opening.group(1), opening.group(2) in ("bash", "sh", "shell", "console")
            continue
        if opening and opening.group(1) == fence and not opening.group(2):
            fence = None
            continue
        if shell:
            lines.append((number, line))
    return lines


def unknown_allava_tools(text: str) -> list[str]:
    """Shell lines `allava X ...` whose X is not a tool (`--help` and `--version` are fine)."""
    problems = []
    for number, line in fenced_shell_lines(text):
        command = line.strip().removeprefix("$ ")
        if not command.startswith("allava "):
            continue
        first = command.split()[1]
        if first not in TOOLS and first not in ("-h", "--help", "-V", "--version"):
            problems.append(f"README.md:{number}: {command!r} names no tool among {', '.join(TOOLS)}")
    return problems


def dates_and_hashes(text: str) -> list[str]:
    """Dates like 2026-11-28 and commit hashes (hex in backticks, or after the word commit)."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        problems += [f"line {number}: date {m.group(0)}" for m in DATE.finditer(line)]
        for pattern in (HEX_IN_BACKTICKS, HEX_AFTER_COMMIT):
            for match in pattern.finditer(line):
                value = match.group(1)
                if pattern is HEX_IN_BACKTICKS and (value.isdigit() or value.isalpha()):
                    continue  # a number or a word, not a hash
                problems.append(f"line {number}: commit hash {value}")
    return problems


# --- the repository's files ----------------------------------------------------------------------

def citing_files() -> list[Path]:
    """The files whose citations are checked: configs, package sources and data, entry points."""
    files = [*ROOT.glob("configs/**/*.yaml"), *ROOT.glob("src/**/*.py"), *ROOT.glob("src/**/*.yaml")]
    files += [ROOT / name for name in ("train.py", "eval.py", "Makefile", "pyproject.toml")]
    files += [p for p in (ROOT / ".ci").glob("*") if p.is_file()]
    return sorted(p for p in files
                  if p.is_file() and "__pycache__" not in p.parts and ".egg-info" not in str(p))


def repository_citations() -> list[Citation]:
    found = []
    for path in citing_files():
        found += find_citations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    return found


def headings_of_citable_files() -> dict[str, set[str]]:
    return {name: markdown_headings(path.read_text(encoding="utf-8"))
            for name, path in CITABLE.items() if path.is_file()}


def _report(problems: list[str], advice: str) -> str:
    return "\n  ".join([f"{len(problems)} problem(s); {advice}", *problems])


# --- the parser itself, on strings: the checks below cannot pass by finding nothing -------------

def test_parser_finds_citations_in_both_quote_styles_and_across_comment_lines():
    text = ('x: 1  # files: README.md, "Benchmark files".\n'
            "# see `benchmarks/README.md`, 'The demo\u2019s table'\n"
            "# measured (benchmarks/README.md,\n#   \"Toy recipe search\").\n")
    found = find_citations(text, "cfg.yaml")
    assert [(c.file, c.heading, c.where) for c in found] == [
        ("README.md", "Benchmark files", "cfg.yaml:1"),
        ("benchmarks/README.md", "The demo\u2019s table", "cfg.yaml:2"),
        ("benchmarks/README.md", "Toy recipe search", "cfg.yaml:3"),
    ]
    assert find_citations("see docs/README.md, \"X\" and the README.md file") == []


def test_parser_reads_headings_outside_code_blocks():
    text = ("# Title\n\n## Benchmark files ##\n```bash\n# a shell comment\n```\n"
            "Setext heading\n---\n\n| a | b |\n|---|---|\n")
    assert markdown_headings(text) == {"Title", "Benchmark files", "Setext heading"}


def test_parser_detects_a_missing_heading():
    citations = find_citations('# README.md, "Benchmark files" and README.md, "Gone section"', "x.py")
    headings = {"README.md": markdown_headings("# allava\n## Benchmark files\n")}
    assert missing_headings(citations, headings) == ['x.py:1: README.md, "Gone section": no such '
                                                     "heading in README.md"]
    no_file = missing_headings(find_citations('benchmarks/README.md, "X"'), {"README.md": set()})
    assert no_file and "does not exist" in no_file[0]


def test_parser_flags_citations_that_name_no_file():
    assert len(find_old_style("# Files: see the README, 'Benchmark files'.")) == 1
    assert len(find_old_style('# data/allava (README, "Converting released datasets").')) == 1
    assert len(find_old_style('# (README,\n# "Converting released datasets")')) == 1
    assert find_old_style('# README.md, "Benchmark files"; benchmarks/README.md, "X"') == []
    assert find_old_style("FreedomIntelligence/ALLaVA README (https://github.com/...)") == []


def test_readme_checks_catch_dates_hashes_and_unknown_tools():
    bad = "Measured on 2026-11-28 at commit 48b934d; file `3f9a2c1d`; 20000 images, `1024`.\n"
    assert dates_and_hashes(bad) == ["line 1: date 2026-11-28", "line 1: commit hash 3f9a2c1d",
                                     "line 1: commit hash 48b934d"]
    text = "```bash\nallava data convert --input a.json\nallava train x=1\n```\n```text\nallava foo\n```\n"
    assert unknown_allava_tools(text) == [
        "README.md:3: 'allava train x=1' names no tool among data, synth, toy, chat, serve, export"]


# --- the checks on the repository ----------------------------------------------------------------

def test_citations_name_existing_headings():
    citations = repository_citations()
    assert any(c.file == "README.md" for c in citations), (
        "found no README.md citation in configs/, src/ or the entry points; the scan is broken "
        "(configs/eval.yaml cites README.md, \"Evaluate\")")
    problems = missing_headings(citations, headings_of_citable_files())
    assert not problems, _report(problems, "each cited heading must exist, with this exact text, "
                                 "in the cited file: rename the heading back or fix the citation")


def test_no_citation_names_a_readme_without_its_file():
    problems = []
    for path in citing_files():
        problems += find_old_style(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not problems, _report(problems, 'write citations as README.md, "Heading" or '
                                 'benchmarks/README.md, "Heading" so that tests/test_docs.py can '
                                 "check them")


def test_readme_is_short():
    count = len(README.read_text(encoding="utf-8").splitlines())
    assert count <= README_MAX_LINES, (
        f"README.md has {count} lines, over {README_MAX_LINES}: it is the users' guide; move "
        "measurements to benchmarks/README.md and option details to the YAML comments or --help")


def test_readme_has_no_dates_or_commit_hashes():
    problems = dates_and_hashes(README.read_text(encoding="utf-8"))
    assert not problems, _report(problems, "README.md describes the current state: keep dated "
                                 "measurements and commits in benchmarks/README.md")


def test_benchmarks_readme_exists():
    assert BENCHMARKS_README.is_file(), ("benchmarks/README.md is missing; README.md and the "
                                         "configs cite it")


def test_readme_examples_name_existing_tools():
    problems = unknown_allava_tools(README.read_text(encoding="utf-8"))
    assert not problems, _report(problems, "`allava --help` lists the tools")
