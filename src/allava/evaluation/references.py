"""Which reference implementation each scorer follows: repository, commit and files.

Every reference scorer module says this in its docstring; this table is the same information in
one place, for the results (each results.json entry carries `reference`), for eval.py's printout
and for README.md's table (tests/evaluation/test_references.py keeps the three in step).
"""
from __future__ import annotations

from dataclasses import dataclass

LLAVA = ("haotian-liu/LLaVA", "c121f0432da27facab705978f83c4ada465e46fd")
VLMEVALKIT = ("open-compass/VLMEvalKit", "e8e78f05f3080fe28154f2130321f17951c3be94")


@dataclass(frozen=True)
class Reference:
    repository: str
    commit: str
    files: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.repository}@{self.commit[:8]} {', '.join(self.files)}"

    def as_dict(self) -> dict[str, object]:
        return {"repository": self.repository, "commit": self.commit, "files": list(self.files)}


# Scorer name (a benchmark's `scorer:` setting) -> the code it reproduces.
REFERENCES: dict[str, Reference] = {
    "pope": Reference(*LLAVA, ("llava/eval/eval_pope.py",)),
    "scienceqa": Reference(*LLAVA, ("llava/eval/eval_science_qa.py",)),
    "vqa": Reference(*LLAVA, ("llava/eval/m4c_evaluator.py", "llava/eval/eval_textvqa.py")),
    # + GQA's official eval.py, read in SHI-Labs/VCoder @ 2f95684d (the copy LLaVA users ship).
    "gqa": Reference(*LLAVA, ("scripts/convert_gqa_for_eval.py", "GQA eval.py")),
    # The MME release's eval_tool, in a verbatim copy (LLaVA's scripts/v1_5/eval/mme.sh runs it).
    "mme": Reference("zjunlp/Deco", "a3ccc150b715373f3019fc07cb1836c1961d7e15",
                     ("eval_tool/calculation.py",)),
    "mme_lmms_eval": Reference("EvolvingLMMs-Lab/lmms-eval", "v0.7.3",
                               ("lmms_eval/tasks/mme/utils.py",)),
    "mmbench": Reference(*VLMEVALKIT, ("vlmeval/dataset/utils/multiple_choice.py",
                                       "vlmeval/utils/matching_util.py")),
    "choice": Reference(*VLMEVALKIT, ("vlmeval/dataset/utils/multiple_choice.py",
                                      "vlmeval/utils/matching_util.py")),
    "mmmu": Reference("MMMU-Benchmark/MMMU", "44b45b50", ("eval/eval_utils.py",
                                                          "eval/main_eval_only.py")),
    "mmvet": Reference("yuweihao/MM-Vet", "7d717c2", ("mm-vet_evaluator.py",)),
    "llava_bench": Reference("haotian-liu/LLaVA", "181a2f811f1eb0b794c25e87204491d812c05f8d",
                             ("llava/eval/eval_gpt_review_bench.py",
                              "llava/eval/summarize_gpt_review.py")),
}


def reference_of(scorer: str) -> Reference | None:
    """The reference a scorer follows; None for this project's own (the generic TSV scorer:
    LLaVA's POPE rule for yes/no, lenient parsers for letters and short answers)."""
    return REFERENCES.get(scorer)
