"""Conversations -> ids/labels: labels exactly on assistant text, for every chat template."""
from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from allava.models.chat_format import (ALLAVA_CHAT_TEMPLATE, MalformedConversation,
                                     add_special_markers, multimodal_chat_template,
                                     to_messages)
from allava.models.processor import IGNORE_INDEX, VLMProcessor

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
PHI3 = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ '<|user|>\n' + message['content'] + '<|end|>\n' }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + '<|end|>\n' }}{% endif %}"
    "{% if loop.last and add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
    "{% if message['role'] == 'user' and not loop.last %}{{ '<|assistant|>\n' }}{% endif %}"
    "{% endfor %}"
)
TEMPLATES = {"allava": ALLAVA_CHAT_TEMPLATE, "chatml": CHATML, "phi3": PHI3}
# Real tokenizers that use these templates carry their markers as special tokens.
MARKERS = {"allava": [], "chatml": ["<|im_start|>", "<|im_end|>"],
           "phi3": ["<|user|>", "<|assistant|>", "<|end|>"]}

MULTI_TURN = [
    {"from": "human", "value": "<image>\nWhat color is the circle?"},
    {"from": "gpt", "value": "The circle is red."},
    {"from": "human", "value": "And where is it?"},
    {"from": "gpt", "value": "It is at the top left."},
]


@pytest.fixture(params=sorted(TEMPLATES))
def text_tokenizer(request, toy_root):
    tokenizer = AutoTokenizer.from_pretrained(str(toy_root / "tokenizer"))
    tokenizer.chat_template = TEMPLATES[request.param]
    if MARKERS[request.param]:
        add_special_markers(tokenizer, MARKERS[request.param])
    return VLMProcessor(tokenizer, image_token_count=5, max_length=512)


def supervised_spans(sample) -> list[list[int]]:
    spans, current = [], []
    for token, label in zip(sample.input_ids, sample.labels):
        if label != IGNORE_INDEX:
            assert label == token
            current.append(token)
        elif current:
            spans.append(current)
            current = []
    return spans + ([current] if current else [])


def test_labels_decode_to_exactly_the_assistant_turns(text_tokenizer):
    sample = text_tokenizer.encode_conversation(MULTI_TURN, num_images=1)
    tokenizer = text_tokenizer.tokenizer
    spans = supervised_spans(sample)
    answers = [t["value"] for t in MULTI_TURN if t["from"] == "gpt"]
    assert len(spans) == len(answers)
    for span, answer in zip(spans, answers):
        assert tokenizer.decode(span, skip_special_tokens=True).strip() == answer
    # The end-of-turn marker is supervised too, or the model never learns to stop.
    last = tokenizer.decode(spans[-1], skip_special_tokens=False)
    assert last.rstrip().endswith((tokenizer.eos_token, "<|im_end|>", "<|end|>"))


def test_image_tag_expands_to_the_connector_token_count(text_tokenizer):
    sample = text_tokenizer.encode_conversation(MULTI_TURN, num_images=1)
    image_id = text_tokenizer.image_token_id
    positions = [i for i, t in enumerate(sample.input_ids) if t == image_id]
    assert len(positions) == 5
    assert positions == list(range(positions[0], positions[0] + 5))  # contiguous
    assert all(sample.labels[i] == IGNORE_INDEX for i in positions)


def test_prompt_matches_the_training_prefix(text_tokenizer):
    """Generation sees the same ids as training did up to the first answer token."""
    sample = text_tokenizer.encode_conversation(MULTI_TURN[:2], num_images=1)
    prompt = text_tokenizer.encode_prompt("What color is the circle?", has_image=True)
    first_label = next(i for i, l in enumerate(sample.labels) if l != IGNORE_INDEX)
    assert sample.input_ids[:first_label] == prompt


def test_chat_prompt_is_the_training_prefix_of_the_next_answer(text_tokenizer):
    """A multi-turn prompt carries the earlier answer, the image placeholders once (in the
    first human turn), and is exactly what training saw before the second answer."""
    sample = text_tokenizer.encode_conversation(MULTI_TURN, num_images=1)
    prompt = text_tokenizer.encode_chat_prompt(MULTI_TURN[:3], num_images=1)
    labels = sample.labels
    last_answer = max(i for i in range(1, len(labels))
                      if labels[i] != IGNORE_INDEX and labels[i - 1] == IGNORE_INDEX)
    assert prompt == sample.input_ids[:last_answer]
    image_id = text_tokenizer.image_token_id
    positions = [i for i, t in enumerate(prompt) if t == image_id]
    assert positions == list(range(positions[0], positions[0] + 5))
    text = text_tokenizer.tokenizer.decode(prompt, skip_special_tokens=False)
    assert positions[-1] < len(text_tokenizer.encode_prompt("What color is the circle?", True))
    assert (text.index("What color is the circle?") < text.index("The circle is red.")
            < text.index("And where is it?"))
    assert "It is at the top left." not in text


def test_single_turn_chat_prompt_is_the_plain_prompt(text_tokenizer):
    for question, images in (("<image>\nWhat color is the circle?", 1), ("What is 2 plus 3?", 0)):
        chat = text_tokenizer.encode_chat_prompt([{"from": "human", "value": question}], images)
        plain = question.removeprefix("<image>\n")
        assert chat == text_tokenizer.encode_prompt(plain, has_image=bool(images))


def test_chat_prompt_must_end_with_a_question_and_match_its_images(text_tokenizer):
    with pytest.raises(MalformedConversation) as error:
        text_tokenizer.encode_chat_prompt(MULTI_TURN[:2], num_images=1)
    assert error.value.reason == "no_question"
    with pytest.raises(MalformedConversation) as error:
        text_tokenizer.encode_chat_prompt(MULTI_TURN[:3], num_images=0)
    assert error.value.reason == "image_tag_mismatch"


def test_text_only_record_has_no_image_tokens(text_tokenizer):
    turns = [{"from": "human", "value": "What is 2 plus 3?"}, {"from": "gpt", "value": "5."}]
    sample = text_tokenizer.encode_conversation(turns, num_images=0)
    assert text_tokenizer.image_token_id not in sample.input_ids
    (span,) = supervised_spans(sample)
    assert text_tokenizer.tokenizer.decode(span, skip_special_tokens=True).strip() == "5."


def test_truncation_keeps_images_and_rejects_unsupervised(toy_root):
    tokenizer = AutoTokenizer.from_pretrained(str(toy_root / "tokenizer"))
    long_answer = "red " * 200
    turns = [{"from": "human", "value": "<image>\nDescribe."}, {"from": "gpt", "value": long_answer}]
    cut = VLMProcessor(tokenizer, image_token_count=8, max_length=40)
    sample = cut.encode_conversation(turns, num_images=1)
    assert len(sample.input_ids) == 40
    assert sample.input_ids.count(cut.image_token_id) == 8
    whole = cut.encode_conversation(turns, num_images=1, truncate=False)
    assert len(whole.input_ids) > 40 and whole.input_ids[:40] == sample.input_ids
    # The limit falls inside the image placeholders: never cut them, reject instead.
    tight = VLMProcessor(tokenizer, image_token_count=64, max_length=20)
    with pytest.raises(MalformedConversation) as error:
        tight.encode_conversation(turns, num_images=1)
    assert error.value.reason == "too_long_for_image"
    # The limit leaves the answer out entirely: nothing to learn, reject.
    question = "<image>\n" + "Describe it please. " * 20
    no_answer = VLMProcessor(tokenizer, image_token_count=2, max_length=30)
    with pytest.raises(MalformedConversation) as error:
        no_answer.encode_conversation([{"from": "human", "value": question},
                                       {"from": "gpt", "value": "ok"}], num_images=1)
    assert error.value.reason == "no_supervised_tokens"


@pytest.mark.parametrize("turns, reason", [
    ([], "no_conversation"),
    ([{"from": "human", "value": "hi"}], "no_assistant_turn"),
    ([{"from": "gpt", "value": "hi"}, {"from": "human", "value": "yo"}], "turns_not_alternating"),
    ([{"from": "robot", "value": "hi"}], "unknown_role"),
    ([{"from": "human", "value": "  "}, {"from": "gpt", "value": "x"}], "empty_turn"),
])
def test_malformed_conversations_name_their_reason(turns, reason):
    with pytest.raises(MalformedConversation) as error:
        to_messages(turns)
    assert error.value.reason == reason


def test_image_tag_count_must_match_images(toy_root):
    tokenizer = AutoTokenizer.from_pretrained(str(toy_root / "tokenizer"))
    text = VLMProcessor(tokenizer, image_token_count=4)
    with pytest.raises(MalformedConversation) as error:
        text.encode_conversation(MULTI_TURN, num_images=0)
    assert error.value.reason == "image_tag_mismatch"


def test_image_after_text_placement_moves_the_image_behind_the_question(toy_root):
    tokenizer = AutoTokenizer.from_pretrained(str(toy_root / "tokenizer"))
    text = VLMProcessor(tokenizer, image_token_count=3, image_placement="after_text")
    sample = text.encode_conversation(MULTI_TURN[:2], num_images=1)
    rendered = tokenizer.decode(sample.input_ids)
    assert rendered.index("What color is the circle?") < rendered.index("<image>")
    prompt = text.encode_prompt("What color is the circle?", has_image=True)
    first_label = next(i for i, l in enumerate(sample.labels) if l != IGNORE_INDEX)
    assert sample.input_ids[:first_label] == prompt
    chat = text.encode_chat_prompt(MULTI_TURN[:3], num_images=1)
    assert chat[:len(prompt)] == prompt and chat.count(text.image_token_id) == 3
    with pytest.raises(ValueError, match="image_placement"):
        VLMProcessor(tokenizer, image_token_count=3, image_placement="sideways")


def test_multimodal_template_renders_image_parts_as_training_wrote_them(text_tokenizer):
    """Processors and OpenAI clients send content as parts; the exported template renders an
    image part as the `<image>` line of the training data, and plain strings as before."""
    tokenizer = text_tokenizer.tokenizer
    plain = [{"role": "user", "content": "<image>\nWhat color is the circle?"},
             {"role": "assistant", "content": "Red."}]
    parts = [{"role": "user", "content": [{"type": "image"},
                                          {"type": "text", "text": "What color is the circle?"}]},
             {"role": "assistant", "content": [{"type": "text", "text": "Red."}]}]
    expected = tokenizer.apply_chat_template(plain, tokenize=False)
    tokenizer.chat_template = multimodal_chat_template(tokenizer.chat_template)
    assert tokenizer.apply_chat_template(parts, tokenize=False) == expected
    assert tokenizer.apply_chat_template(plain, tokenize=False) == expected


def test_a_template_that_reads_no_content_cannot_learn_image_parts():
    with pytest.raises(ValueError, match="reads no message\\['content'\\]"):
        multimodal_chat_template("{% for m in messages %}{{ m.text }}{% endfor %}")
