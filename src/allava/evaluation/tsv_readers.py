"""Readers for the VLMEvalKit TSV file of each benchmark of the ALLaVA evaluation suite.

Files and columns (open-compass/VLMEvalKit: `docs/en/Development.md` "TSV fields of supported
datasets", `vlmeval/dataset/image_yorn.py`, `image_mcq.py`, `image_vqa.py`, `utils/yorn.py`,
`utils/multiple_choice.py`, `utils/mmvet.py`, `utils/llavabench.py`, `utils/vqa_eval.py`):

* POPE.tsv: index, image, question, answer (Yes/No), category (the split; a question shared by
  several splits is stored once with the splits comma-joined, e.g. "adversarial,popular,random",
  which VLMEvalKit's `POPE_rating` splits again), optionally image_path.
* MME.tsv: index, image, question (ending "Please answer yes or no."), answer (Yes/No), category
  (the subtask, spelled as the official lists: OCR, artwork, ..., code_reasoning), image_path (the
  image file; VLMEvalKit's `MME_rating` pairs an image's two questions by it).
* MMBench_DEV_EN.tsv / MMBench_DEV_CN.tsv (also the _V11 files): index (rotated copies of a
  question add multiples of 1,000,000), image, question, hint, A-D, answer (a letter), category,
  l2-category, split, optionally g_index.
* ScienceQA_TEST.tsv / ScienceQA_VAL.tsv: index, image (empty for text-only questions), question,
  hint, A-E, answer (a letter), category, optionally subject, l2-category, split.
* MMMU_DEV_VAL.tsv: index, image (one base64 image, or a list of them as a Python list literal),
  image_path, question (with "<image 1>" tags), A-I (empty for open questions), answer (a letter,
  an open answer, or a list literal of them), category (the subject, e.g. Art_Theory),
  l2-category (the discipline), split ("dev" / "validation"), optionally id
  ("validation_Art_Theory_12") and question_type.
* TextVQA_VAL.tsv: index, image, question, answer (the 10 annotators' answers as a Python list
  literal).
* VizWiz.tsv: index, image, question, answers (the annotators' answers as a list literal;
  VLMEvalKit's `VizWiz.evaluate` reads `answers`), or answer in that form.
* GQA_TestDev_Balanced.tsv: index, image, question, answer, optionally category (read with the
  question-type columns structural / semantic / detailed where a file has them).
* SEEDBench_IMG.tsv: index, image, question, A-D, answer (a letter), category (the question type).
* MMStar.tsv: index, image, question, A-D, answer (a letter), category, l2-category (or
  l2_category as in the Hugging Face release).
* MMVet.tsv: index, image, question, answer (ground truth, may hold <AND>/<OR>), category (the
  capabilities, comma-joined: "rec,ocr").
* LLaVABench.tsv: index, image, question, caption, gpt4_ans (GPT-4's reference answer), category
  (conv / detail / complex).

The contract every reader keeps (the suite's scorers rely on it):
  `index`     the file's index, an int when it is one.
  `question`  the bare question: stripped, without one trailing instruction
              (SHORT_ANSWER_SUFFIX, CHOICE_SUFFIX, or MME's "Please answer yes or no."), which
              `prompts.build_prompt` appends itself.
  `answer`, `category`, `options` ({"A": text, ...}, multiple choice only), `hint`.
  `extras`    per benchmark, as each reader's docstring says; `num_images` / `multi_image` for
              a row whose image cell is a list (MMMU only).
Missing columns raise `BenchmarkFormatError` naming the file, the columns and the benchmark. A
row with a bad value becomes a `SkippedItem` whose reason starts with a code of
`tsv_reader_common` ("bad_answer: ...", "not_in_split: ...").
"""

from __future__ import annotations

from pathlib import Path

from allava.evaluation.benchmark_files import DEFAULT_CATEGORY, Benchmark, BenchmarkItem, check_tsv_header
from allava.evaluation.scorers.mme import COGNITION_CATEGORIES, PERCEPTION_CATEGORIES
from allava.evaluation.scorers.mmmu import MULTIPLE_CHOICE, subject_from_id
from allava.evaluation.tsv_reader_common import (
    BAD_ANSWER,
    BAD_CATEGORY,
    BAD_INDEX,
    BAD_OPTIONS,
    NOT_IN_SPLIT,
    RowProblem,
    TsvLayout,
    annotator_answers,
    answer_list,
    cell,
    choice_letter,
    image_hash,
    integer_index,
    most_frequent,
    non_empty_answer,
    parse_integer,
    read_benchmark_tsv,
    with_contract,
    yes_no_answer,
)

_BASE = ("index", "image", "question", "answer")

POPE_LAYOUT = TsvLayout("POPE", "POPE.tsv", (*_BASE, "category"), ("image_path",))
MME_LAYOUT = TsvLayout("MME", "MME.tsv", (*_BASE, "category"), ("image_path",))
MMBENCH_LAYOUT = TsvLayout(
    "MMBench", "MMBench_DEV_EN.tsv / MMBench_DEV_CN.tsv", (*_BASE, "category", "A", "B"),
    ("hint", "C", "D", "l2-category", "split", "g_index"),
)
SCIENCEQA_LAYOUT = TsvLayout(
    "ScienceQA", "ScienceQA_TEST.tsv", (*_BASE, "A", "B"), ("hint", "C", "D", "E", "category", "subject")
)
MMMU_LAYOUT = TsvLayout(
    "MMMU", "MMMU_DEV_VAL.tsv", _BASE,
    ("A", "B", "...", "category", "l2-category", "split", "id", "question_type", "image_path"),
)
TEXTVQA_LAYOUT = TsvLayout("TextVQA", "TextVQA_VAL.tsv", _BASE, ("category",))
VIZWIZ_LAYOUT = TsvLayout(
    "VizWiz", "VizWiz.tsv", ("index", "image", "question", "answers"), ("category", "answer_type")
)
GQA_LAYOUT = TsvLayout(
    "GQA", "GQA_TestDev_Balanced.tsv", _BASE, ("category", "structural", "semantic", "detailed")
)
SEED_LAYOUT = TsvLayout("SEED-Bench", "SEEDBench_IMG.tsv", (*_BASE, "category", "A", "B"), ("C", "D"))
MMSTAR_LAYOUT = TsvLayout(
    "MMStar", "MMStar.tsv", (*_BASE, "category", "A", "B"), ("C", "D", "l2-category")
)
MMVET_LAYOUT = TsvLayout("MM-Vet", "MMVet.tsv", (*_BASE, "category"))
LLAVA_BENCH_LAYOUT = TsvLayout(
    "LLaVA-Bench", "LLaVABench.tsv", ("index", "image", "question", "caption", "gpt4_ans", "category")
)

POPE_SPLITS: tuple[str, ...] = ("adversarial", "popular", "random")
MMVET_CAPABILITIES: tuple[str, ...] = ("rec", "ocr", "know", "gen", "spat", "math")
LLAVA_BENCH_CATEGORIES: tuple[str, ...] = ("conv", "detail", "complex")
MMMU_SPLITS: tuple[str, ...] = ("validation", "dev", "test")
MMMU_OPEN = "open"

# MME subtasks by lowercased, underscore-joined spelling; VLMEvalKit's MME.tsv already uses the
# official spellings, the plural/space variants cover hand-made files.
_MME_CATEGORIES = {name.lower(): name for name in (*PERCEPTION_CATEGORIES, *COGNITION_CATEGORIES)}
_MME_CATEGORIES.update({"posters": "posters", "poster": "posters", "celebrities": "celebrity",
                        "landmarks": "landmark", "artworks": "artwork", "colour": "color"})


# -------------------------------------------------------------------------------- yes / no


def load_pope_tsv(path: str | Path, name: str = "POPE") -> Benchmark:
    """POPE: `answer` "yes"/"no"; `category` = `extras["split"]` = the split (random / popular /
    adversarial). A row VLMEvalKit shares between splits ("adversarial,popular,random") stays one
    item whose category is the splits comma-joined in that order; `extras["splits"]` always lists
    them, so that per-split metrics count such a row in each of its splits (as `POPE_rating`)."""

    def convert(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
        raw = cell(columns, "category") or ""
        named = {part.strip().lower() for part in raw.split(",") if part.strip()}
        unknown = sorted(named - set(POPE_SPLITS))
        if not named or unknown:
            raise RowProblem(BAD_CATEGORY, f"category {raw!r} is not a POPE split ({', '.join(POPE_SPLITS)})")
        splits = [split for split in POPE_SPLITS if split in named]
        split = ",".join(splits)
        return with_contract(item, answer=yes_no_answer(item), category=split,
                             extras={**item.extras, "split": split, "splits": splits})

    return read_benchmark_tsv(path, name, POPE_LAYOUT, "yes_no", convert)


def load_mme_tsv(path: str | Path, name: str = "MME") -> Benchmark:
    """MME: `answer` "yes"/"no", `category` = the subtask as `scorers.mme` spells it,
    `extras["image_id"]` shared by the two questions of an image: the `image_path` cell, or else
    a hash of the (resolved) image, so by-index image references pair up too."""

    def convert(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
        raw = cell(columns, "category") or ""
        category = _MME_CATEGORIES.get("_".join(raw.lower().split()))
        if category is None:
            raise RowProblem(BAD_CATEGORY, f"category {raw!r} is not an MME subtask")
        image_id = cell(columns, "image_path")
        if image_id is None:
            image_id = image_hash(item.image_b64) if item.image_b64 else f"index:{item.index}"
        return with_contract(item, answer=yes_no_answer(item), category=category,
                             extras={**item.extras, "image_id": image_id})

    return read_benchmark_tsv(path, name, MME_LAYOUT, "yes_no", convert)


# ------------------------------------------------------------------------- multiple choice


def load_mmbench_tsv(path: str | Path, name: str = "MMBench") -> Benchmark:
    """MMBench (EN or CN dev): `options`, `answer` a letter, `category`, `hint`; the integer
    `index` (rotated copies >= 1,000,000); `extras["l2_category"]`, `extras["split"]` and the
    integer `extras["g_index"]` where the file has those columns."""

    def convert(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
        extras = {**item.extras, **_l2_category(columns)}
        if (split := cell(columns, "split")) is not None:
            extras["split"] = split
        if "g_index" in columns:
            g_index = cell(columns, "g_index")
            if g_index is None:
                raise RowProblem(BAD_INDEX, "the g_index cell is empty")
            extras["g_index"] = parse_integer(g_index, "g_index")
        return with_contract(item, index=integer_index(item), answer=choice_letter(item), extras=extras)

    return read_benchmark_tsv(path, name, MMBENCH_LAYOUT, "multiple_choice", convert)


def load_scienceqa_tsv(path: str | Path, name: str = "ScienceQA-IMG") -> Benchmark:
    """ScienceQA: `options`, `answer` a letter, `hint`, `category` = the `subject` column if the file
    has one, else `category`; `extras["has_image"]`, `extras["num_options"]`, and
    `extras["l2_category"]` where present. Text-only rows (empty image cell) are kept with
    `has_image` False, as LLaVA's IMG accuracy needs to tell them apart."""

    def convert(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
        extras = {**item.extras, **_l2_category(columns), "has_image": item.image_b64 is not None,
                  "num_options": len(item.options)}
        return with_contract(item, answer=choice_letter(item), extras=extras,
                             category=cell(columns, "subject", "category") or DEFAULT_CATEGORY)

    return read_benchmark_tsv(path, name, SCIENCEQA_LAYOUT, "multiple_choice", convert)


def load_seed_tsv(path: str | Path, name: str = "SEED-Bench") -> Benchmark:
    """SEED-Bench (image): `options`, `answer` a letter, `category` (question type),
    `extras["l2_category"]` where present."""
    return read_benchmark_tsv(path, name, SEED_LAYOUT, "multiple_choice", _plain_choice)


def load_mmstar_tsv(path: str | Path, name: str = "MMStar") -> Benchmark:
    """MMStar: `options`, `answer` a letter, `category` (core capability), `extras["l2_category"]`
    from `l2-category` or `l2_category`."""
    return read_benchmark_tsv(path, name, MMSTAR_LAYOUT, "multiple_choice", _plain_choice)


def _plain_choice(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
    return with_contract(item, answer=choice_letter(item), extras={**item.extras, **_l2_category(columns)})


def _l2_category(columns: dict[str, str]) -> dict[str, str]:
    value = cell(columns, "l2-category", "l2_category")
    return {} if value is None else {"l2_category": value}


# ---------------------------------------------------------------------------- MMMU (mixed)


def load_mmmu_tsv(path: str | Path, name: str = "MMMU", split: str | None = "validation") -> Benchmark:
    """MMMU (VLMEvalKit's dev+validation file), kept to `split` ("validation" or "dev"; None keeps
    every row). Rows of other splits are skipped as "not_in_split". Per item:
    `extras["question_type"]` "multiple-choice" (the row has options) or "open" (no options, as
    VLMEvalKit marks open questions; a `question_type` column wins where present),
    `extras["subject"]` (from `id` like "validation_Art_Theory_12", else the `category` column),
    `category` = the subject, `extras["l2_category"]` (discipline) where present, `extras["id"]`
    where present. `answer` as given; a list-literal answer cell gives `extras["answers"]` and its
    first element as `answer`. A multi-image row is read by its first image (`multi_image`)."""
    path = Path(path)
    header = check_tsv_header(path, required=())
    wanted = None if split is None else _mmmu_split(split)
    if split is not None and wanted is None:
        raise ValueError(f"unknown MMMU split {split!r}; expected one of {', '.join(MMMU_SPLITS)} or None")
    required = [*MMMU_LAYOUT.required, *(["split"] if wanted is not None else [])]
    if "id" not in header:
        required.append("category")  # the subject comes from `id` or else `category`

    def convert(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
        if wanted is not None:
            raw_split = cell(columns, "split") or ""
            if _mmmu_split(raw_split) != wanted:
                raise RowProblem(NOT_IN_SPLIT, f"row is in the {raw_split!r} split, not {wanted!r}")
        item_id = cell(columns, "id")
        subject = subject_from_id(item_id) if item_id and item_id.count("_") >= 2 else None
        subject = subject or "_".join((cell(columns, "category") or "").split())
        if not subject:
            raise RowProblem(BAD_CATEGORY, "no subject: the id and category cells are empty")
        question_type = _mmmu_question_type(cell(columns, "question_type"), item)
        answers = answer_list(item.answer)
        if answers is not None:
            answers = [answer for answer in answers if answer]
            if not answers:
                raise RowProblem(BAD_ANSWER, f"the answer list {item.answer!r} is empty")
        options = item.options if question_type == MULTIPLE_CHOICE else {}
        if question_type == MULTIPLE_CHOICE:  # every gold letter must be an option
            letters = [choice_letter(item, letter) for letter in answers or [item.answer]]
            answers = letters if answers is not None else None
            answer = letters[0]
        else:
            answer = answers[0] if answers else non_empty_answer(item)
        extras = {**item.extras, **_l2_category(columns), "question_type": question_type, "subject": subject}
        if item_id is not None:
            extras["id"] = item_id
        if answers is not None:
            extras["answers"] = answers
        return with_contract(item, answer=answer, options=options, category=subject, extras=extras)

    return read_benchmark_tsv(path, name, MMMU_LAYOUT, "short_answer", convert,
                              multi_image="first", required=required)


def _mmmu_split(value: str) -> str | None:
    value = value.strip().lower()
    value = {"val": "validation"}.get(value, value)
    return value if value in MMMU_SPLITS else None


def _mmmu_question_type(declared: str | None, item: BenchmarkItem) -> str:
    if declared is None:
        return MULTIPLE_CHOICE if item.options else MMMU_OPEN
    normalized = declared.strip().lower().replace("_", "-").replace(" ", "-")
    if normalized in ("multiple-choice", "multi-choice", "mcq"):
        return MULTIPLE_CHOICE
    if normalized in ("open", "open-ended", "short-answer"):
        return MMMU_OPEN
    raise RowProblem(BAD_OPTIONS, f"question_type {declared!r} is neither multiple-choice nor open")


# ---------------------------------------------------------------------------- short answer


def load_textvqa_tsv(path: str | Path, name: str = "TextVQA") -> Benchmark:
    """TextVQA val: `extras["answers"]` = the annotators' answers (the answer cell's list literal,
    or the plain cell as one answer), `answer` = the most frequent of them (ties: the earliest)."""
    return read_benchmark_tsv(path, name, TEXTVQA_LAYOUT, "short_answer", _vqa_item)


def load_vizwiz_tsv(path: str | Path, name: str = "VizWiz") -> Benchmark:
    """VizWiz val: as TextVQA, from the `answers` column (or `answer` if the file has no
    `answers`); `category` = answer_type where the file has it."""
    path = Path(path)
    header = check_tsv_header(path, required=())
    answer_column = "answers" if "answers" in header or "answer" not in header else "answer"
    required = ("index", "image", "question", answer_column)
    return read_benchmark_tsv(path, name, VIZWIZ_LAYOUT, "short_answer", _vqa_item,
                              answer_column=answer_column, required=required)


def _vqa_item(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
    answers = annotator_answers(item)
    category = cell(columns, "category", "answer_type") or DEFAULT_CATEGORY
    return with_contract(item, answer=most_frequent(answers), category=category,
                         extras={**item.extras, "answers": answers})


def load_gqa_tsv(path: str | Path, name: str = "GQA") -> Benchmark:
    """GQA testdev-balanced: `answer` as given; `category` from `category` or else the structural
    type column (`structural` / `structural_type`); `extras["semantic_type"]` and
    `extras["detailed_type"]` where the file has them."""

    def convert(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
        extras = dict(item.extras)
        for key, names in (("semantic_type", ("semantic", "semantic_type")),
                           ("detailed_type", ("detailed", "detailed_type"))):
            if (value := cell(columns, *names)) is not None:
                extras[key] = value
        category = cell(columns, "category", "structural", "structural_type") or DEFAULT_CATEGORY
        return with_contract(item, answer=non_empty_answer(item), category=category, extras=extras)

    return read_benchmark_tsv(path, name, GQA_LAYOUT, "short_answer", convert)


# ------------------------------------------------------------------------------ open ended


def load_mmvet_tsv(path: str | Path, name: str = "MM-Vet") -> Benchmark:
    """MM-Vet: `answer` = the ground truth, `extras["capabilities"]` = the capabilities of the
    category cell ("rec,ocr", "rec, ocr" or "rec ocr"), `category` = them comma-joined."""

    def convert(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
        raw = cell(columns, "category") or ""
        capabilities = list(dict.fromkeys(raw.lower().replace(",", " ").split()))
        unknown = [name for name in capabilities if name not in MMVET_CAPABILITIES]
        if not capabilities or unknown:
            known = ", ".join(MMVET_CAPABILITIES)
            raise RowProblem(BAD_CATEGORY, f"category {raw!r} is not a list of MM-Vet capabilities ({known})")
        return with_contract(item, answer=non_empty_answer(item), category=",".join(capabilities),
                             extras={**item.extras, "capabilities": capabilities})

    return read_benchmark_tsv(path, name, MMVET_LAYOUT, "open_ended", convert)


def load_llava_bench_tsv(path: str | Path, name: str = "LLaVA-Bench") -> Benchmark:
    """LLaVA-Bench (in-the-wild): `answer` = `extras["reference"]` = GPT-4's answer (`gpt4_ans`),
    `extras["caption"]` = the `caption` cell, `category` one of conv / detail / complex (also read
    from "conversation", "detail description", "complex reasoning", "llava_bench_conv", ...)."""

    def convert(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
        raw = cell(columns, "category") or ""
        key = raw.lower().removeprefix("llava_bench_")
        category = next((name for name in LLAVA_BENCH_CATEGORIES if key.startswith(name)), None)
        if category is None:
            known = ", ".join(LLAVA_BENCH_CATEGORIES)
            raise RowProblem(BAD_CATEGORY, f"category {raw!r} is not one of {known}")
        reference = non_empty_answer(item)
        extras = {**item.extras, "reference": reference, "caption": cell(columns, "caption") or ""}
        return with_contract(item, answer=reference, category=category, extras=extras)

    return read_benchmark_tsv(path, name, LLAVA_BENCH_LAYOUT, "open_ended", convert, answer_column="gpt4_ans")


__all__ = [
    "load_gqa_tsv",
    "load_llava_bench_tsv",
    "load_mmbench_tsv",
    "load_mme_tsv",
    "load_mmmu_tsv",
    "load_mmstar_tsv",
    "load_mmvet_tsv",
    "load_pope_tsv",
    "load_scienceqa_tsv",
    "load_seed_tsv",
    "load_textvqa_tsv",
    "load_vizwiz_tsv",
]


# Reader name -> its file layout, so that eval.py can check every file's header before it
# starts generating (allava.evaluation.suite).
LAYOUT_OF_READER: dict[str, TsvLayout] = {
    "load_pope_tsv": POPE_LAYOUT, "load_mme_tsv": MME_LAYOUT, "load_mmbench_tsv": MMBENCH_LAYOUT,
    "load_scienceqa_tsv": SCIENCEQA_LAYOUT, "load_seed_tsv": SEED_LAYOUT, "load_mmstar_tsv": MMSTAR_LAYOUT,
    "load_mmmu_tsv": MMMU_LAYOUT, "load_textvqa_tsv": TEXTVQA_LAYOUT, "load_vizwiz_tsv": VIZWIZ_LAYOUT,
    "load_gqa_tsv": GQA_LAYOUT, "load_mmvet_tsv": MMVET_LAYOUT, "load_llava_bench_tsv": LLAVA_BENCH_LAYOUT,
}
