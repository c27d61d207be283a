"""Greedy answers from an exported Hugging Face directory through transformers alone (no `allava`).

Run as a script: `python hf_answers.py MODEL_DIR QUESTIONS_JSON [--remote-code]` prints a JSON
list of answers, one per `{"image": path, "question": text}` item: a stock LLaVA directory
through `LlavaForConditionalGeneration`, or with `--remote-code` any export through
`AutoModelForImageTextToText` and the code it ships. `allava` is made unimportable first, so
that nothing of this package can take part in loading or answering.
"""
from __future__ import annotations

import json
import sys

sys.modules["allava"] = None  # type: ignore[assignment]  # any `import allava` now fails

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import (AutoModelForImageTextToText, AutoProcessor,  # noqa: E402
                          LlavaForConditionalGeneration)


def answers(model_dir: str, items: list[dict], remote_code: bool = False,
            max_new_tokens: int = 24) -> list[str]:
    processor = AutoProcessor.from_pretrained(model_dir, trust_remote_code=remote_code)
    model_class = AutoModelForImageTextToText if remote_code else LlavaForConditionalGeneration
    model = model_class.from_pretrained(model_dir, trust_remote_code=remote_code).eval()
    replies = []
    for item in items:
        image = Image.open(item["image"]).convert("RGB")
        messages = [{"role": "user", "content": [{"type": "image", "image": image},
                                                 {"type": "text", "text": item["question"]}]}]
        inputs = processor.apply_chat_template(messages, add_generation_prompt=True,
                                               tokenize=True, return_dict=True,
                                               return_tensors="pt")
        with torch.no_grad():
            tokens = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new = tokens[0, inputs["input_ids"].shape[1]:]
        replies.append(processor.decode(new, skip_special_tokens=True).strip())
    return replies


if __name__ == "__main__":
    items = json.loads(open(sys.argv[2]).read())
    print(json.dumps(answers(sys.argv[1], items, remote_code="--remote-code" in sys.argv[3:])))
