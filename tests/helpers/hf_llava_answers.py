"""Greedy answers from a stock LLaVA directory through transformers alone (no `allava`).

Run as a script: `python hf_llava_answers.py MODEL_DIR QUESTIONS_JSON` prints a JSON list of
answers, one per `{"image": path, "question": text}` item. `allava` is made unimportable
first, so that nothing of this package can take part in loading or answering.
"""
from __future__ import annotations

import json
import sys

sys.modules["allava"] = None  # type: ignore[assignment]  # any `import allava` now fails

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import AutoProcessor, LlavaForConditionalGeneration  # noqa: E402


def answers(model_dir: str, items: list[dict], max_new_tokens: int = 24) -> list[str]:
    processor = AutoProcessor.from_pretrained(model_dir)
    model = LlavaForConditionalGeneration.from_pretrained(model_dir).eval()
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
    print(json.dumps(answers(sys.argv[1], items)))
