"""A miniature of the whole ALLaVA evaluation suite on disk, each benchmark in its real file
layout (VLMEvalKit TSVs; LLaVA-1.5's POPE layout too), with the right answer to every question
known, so that an oracle's scores are known exactly."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from tests.helpers.eval_tsv_helpers import BLUE, GREEN, RED, png_base64, write_tsv_records

SHORT = "\nAnswer the question using a single word or phrase."


class Oracle:
    """Answers every question of the miniature suite correctly, from the prompt alone: a
    multiple-choice prompt gets the letter of the right option's line, any other prompt the
    answer stored for the question it contains."""

    def __init__(self, answers: dict[str, str], right_options: dict[str, str]):
        self.answers, self.right_options = answers, right_options
        self.prompts: list[str] = []

    def answer(self, questions, images, max_new_tokens=32):
        self.prompts.extend(questions)
        return [self._one(prompt) for prompt in questions]

    def _one(self, prompt: str) -> str:
        for question, option in self.right_options.items():
            if question in prompt:
                return next(line[0] for line in prompt.splitlines() if line[1:3] == ". " and line[3:] == option)
        for question, answer in self.answers.items():
            if question in prompt:
                return answer
        raise AssertionError(f"the oracle does not know {prompt!r}")


def write_suite(root: Path) -> Oracle:
    """Writes the files under `root` (eval.py's benchmark_data_dir) and returns the oracle."""
    root.mkdir(parents=True, exist_ok=True)
    red, blue, green = png_base64(RED), png_base64(BLUE), png_base64(GREEN)
    answers: dict[str, str] = {}
    options: dict[str, str] = {}

    def yes_no(question: str, truth: bool) -> str:
        answers[question] = "Yes" if truth else "No"
        return "Yes" if truth else "No"

    write_tsv_records(root / "POPE.tsv", [
        {"index": 1, "image": red, "question": "Is there a dog in the image?",
         "answer": yes_no("Is there a dog in the image?", True), "category": "random"},
        {"index": 2, "image": red, "question": "Is there a cat in the image?",
         "answer": yes_no("Is there a cat in the image?", False), "category": "random"},
        {"index": 3, "image": blue, "question": "Is there a car in the image?",
         "answer": yes_no("Is there a car in the image?", True), "category": "adversarial,popular"},
        {"index": 4, "image": blue, "question": "Is there a bus in the image?",
         "answer": yes_no("Is there a bus in the image?", False), "category": "popular"},
        {"index": 5, "image": green, "question": "Is there a tree in the image?",
         "answer": yes_no("Is there a tree in the image?", False), "category": "adversarial"},
    ])
    write_tsv_records(root / "MME.tsv", [
        {"index": 0, "image": red, "question": "Is this a painting by Monet? Please answer yes or no.",
         "answer": yes_no("Is this a painting by Monet?", True), "category": "artwork", "image_path": "artwork/1.jpg"},
        {"index": 1, "image": red, "question": "Is this a painting by Goya? Please answer yes or no.",
         "answer": yes_no("Is this a painting by Goya?", False), "category": "artwork", "image_path": "artwork/1.jpg"},
        {"index": 2, "image": blue, "question": "Does the code print 3? Please answer yes or no.",
         "answer": yes_no("Does the code print 3?", True), "category": "code_reasoning", "image_path": "code/1.png"},
        {"index": 3, "image": blue, "question": "Does the code print 4? Please answer yes or no.",
         "answer": yes_no("Does the code print 4?", False), "category": "code_reasoning", "image_path": "code/1.png"},
    ])
    for language, question in (("EN", "Which colour fills the picture?"), ("CN", "图片是什么颜色？")):
        options[question] = "red"
        write_tsv_records(root / f"MMBench_DEV_{language}.tsv", [
            # Group 0: the question and one rotation of its options; group 1: a single question.
            {"index": 0, "question": question, "hint": "Look closely.", "A": "red", "B": "blue", "C": "green",
             "D": "black", "answer": "A", "category": "attribute", "image": red, "l2-category": "perception"},
            {"index": 1_000_000, "question": question, "hint": "Look closely.", "A": "blue", "B": "green",
             "C": "black", "D": "red", "answer": "D", "category": "attribute", "image": red, "l2-category": "perception"},
            {"index": 1, "question": question + " ", "hint": "", "A": "green", "B": "red", "C": "", "D": "",
             "answer": "B", "category": "scene", "image": red, "l2-category": "perception"},
        ])
    options["Which animal is a mammal?"] = "whale"
    options["Which word is a verb?"] = "run"
    write_tsv_records(root / "ScienceQA_TEST.tsv", [
        {"index": 0, "image": green, "question": "Which animal is a mammal?", "hint": "Sea animals.",
         "A": "shark", "B": "whale", "answer": "B", "category": "natural science"},
        {"index": 1, "image": "", "question": "Which word is a verb?", "hint": "",
         "A": "run", "B": "dog", "C": "blue", "answer": "A", "category": "language science"},
    ])
    options["How many sides does the shape <image 1> have?"] = "four"
    answers["What year is written on <image 1>?"] = "1984"
    write_tsv_records(root / "MMMU_DEV_VAL.tsv", [
        {"index": 0, "image": blue, "question": "How many sides does the shape <image 1> have?",
         "A": "three", "B": "four", "C": "five", "answer": "B", "category": "Math",
         "split": "validation", "id": "validation_Math_1"},
        {"index": 1, "image": red, "question": "What year is written on <image 1>?", "A": "", "B": "", "C": "",
         "answer": "1984", "category": "Art_Theory", "split": "validation", "id": "validation_Art_Theory_2"},
        {"index": 2, "image": red, "question": "A dev question?", "A": "x", "B": "y", "C": "",
         "answer": "A", "category": "Art_Theory", "split": "dev", "id": "dev_Art_Theory_1"},
    ])
    answers["What is written on the sign?"] = "stop"
    answers["What brand is the camera?"] = "nikon"
    write_tsv_records(root / "TextVQA_VAL.tsv", [
        {"index": 0, "image": red, "question": "What is written on the sign?",
         "answer": str(["stop"] * 7 + ["stop sign"] * 3)},
        {"index": 1, "image": blue, "question": "What brand is the camera?", "answer": str(["nikon"] * 10)},
    ])
    answers["What is on the table?"] = "cup"
    answers["Is the sky blue?"] = "yes"
    write_tsv_records(root / "GQA_TestDev_Balanced.tsv", [
        {"index": "201307251", "image": red, "question": "What is on the table?", "answer": "cup", "category": "query"},
        {"index": "201307252", "image": blue, "question": "Is the sky blue?", "answer": "yes", "category": "verify"},
    ])
    options["What is the main object?"] = "a ball"
    options["Where is the ball?"] = "on the left"
    write_tsv_records(root / "SEEDBench_IMG.tsv", [
        {"index": 0, "image": red, "question": "What is the main object?", "A": "a ball", "B": "a box",
         "C": "a cat", "D": "a car", "answer": "A", "category": "Instance Identity"},
        {"index": 1, "image": blue, "question": "Where is the ball?", "A": "on the right", "B": "on the left",
         "C": "at the top", "D": "at the bottom", "answer": "B", "category": "Instance Location"},
    ])
    options["What shape is drawn?"] = "circle"
    options["What is 2 + 3?"] = "5"
    write_tsv_records(root / "MMStar.tsv", [
        {"index": 0, "image": red, "question": "What shape is drawn?", "A": "square", "B": "circle",
         "C": "star", "D": "line", "answer": "B", "category": "coarse perception", "l2-category": "image style"},
        {"index": 1, "image": blue, "question": "What is 2 + 3?", "A": "4", "B": "6", "C": "5", "D": "7",
         "answer": "C", "category": "math", "l2-category": "numeric commonsense"},
    ])
    answers["What is in this can?"] = "soup"
    answers["What does the label say?"] = "unanswerable"
    write_tsv_records(root / "VizWiz.tsv", [
        {"index": 0, "image": green, "question": "What is in this can?", "answers": str(["soup"] * 8 + ["can"] * 2)},
        {"index": 1, "image": blue, "question": "What does the label say?", "answers": str(["unanswerable"] * 10)},
    ])
    answers["What is the total price?"] = "The total is $12."
    answers["Which city is shown?"] = "It looks like Paris."
    write_tsv_records(root / "MMVet.tsv", [
        {"index": 0, "image": red, "question": "What is the total price?", "answer": "12<OR>$12", "category": "ocr,math"},
        {"index": 1, "image": blue, "question": "Which city is shown?", "answer": "Paris", "category": "rec,know"},
    ])
    answers["Describe the image in detail."] = "A red square fills the picture."
    answers["What should I bring here?"] = "An umbrella, since it rains."
    write_tsv_records(root / "LLaVABench.tsv", [
        {"index": 0, "image": red, "question": "Describe the image in detail.",
         "caption": "A red square.", "gpt4_ans": "The image is a plain red square.", "category": "detail"},
        {"index": 1, "image": blue, "question": "What should I bring here?",
         "caption": "A rainy street.", "gpt4_ans": "Bring an umbrella.", "category": "conv"},
    ])
    _write_llava_pope(root / "pope", answers)
    return Oracle(answers, options)


def _write_llava_pope(folder: Path, answers: dict[str, str]) -> None:
    """LLaVA-1.5's POPE layout: question JSONL, coco/coco_pope_<split>.json labels, val2014/."""
    (folder / "val2014").mkdir(parents=True, exist_ok=True)
    (folder / "coco").mkdir(exist_ok=True)
    Image.new("RGB", (8, 6), RED).save(folder / "val2014" / "a.png")
    Image.new("RGB", (8, 6), BLUE).save(folder / "val2014" / "b.png")
    rows = [("a.png", "Is there a kite in the image?", "yes", "random"),
            ("a.png", "Is there a boat in the image?", "no", "random"),
            ("b.png", "Is there a sofa in the image?", "no", "popular"),
            ("b.png", "Is there a lamp in the image?", "yes", "popular")]
    with (folder / "llava_pope_test.jsonl").open("w") as handle:
        for number, (image, question, _, split) in enumerate(rows, 1):
            handle.write(json.dumps({"question_id": number, "image": image, "text": question + SHORT,
                                     "category": split}) + "\n")
    for split in ("random", "popular"):
        with (folder / "coco" / f"coco_pope_{split}.json").open("w") as handle:
            for number, (image, question, label, row_split) in enumerate(rows, 1):
                if row_split == split:
                    handle.write(json.dumps({"question_id": number, "image": image, "text": question,
                                             "label": label}) + "\n")
    for _, question, label, _ in rows:
        answers[question] = label.capitalize()
