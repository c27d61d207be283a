"""`POST /v1/chat/completions` through the official `openai` client, against a real server
subprocess: answers equal the in-process model's greedy answers, streamed or not; usage,
max_tokens and stop strings behave as OpenAI's do."""
from __future__ import annotations

import httpx
import pytest
from PIL import Image

from tests.serve.conftest import MODEL_NAME, data_url, user_message

QUESTION = "What is it?"


def ask(client, messages, **options):
    return client.chat.completions.create(model=MODEL_NAME, messages=messages,
                                          temperature=0, **options)


@pytest.mark.parametrize("image", ["noise", "red", None])
def test_a_greedy_answer_is_the_predictors_and_usage_counts_image_tokens(
        client, predictor, images, image):
    url = data_url(images[image]) if image else None
    reply = ask(client, [user_message(QUESTION, url)], max_tokens=12)

    picture = Image.open(images[image]) if image else None
    expected = predictor.answer([QUESTION], [picture], max_new_tokens=12)[0]
    choice = reply.choices[0]
    assert reply.object == "chat.completion" and reply.model == MODEL_NAME
    assert choice.message.role == "assistant" and choice.message.content == expected
    prompt = predictor.bundle.processor.encode_chat_prompt(
        [{"from": "human", "value": f"<image>\n{QUESTION}" if image else QUESTION}],
        num_images=int(image is not None))
    usage = reply.usage
    assert usage.prompt_tokens == len(prompt)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert 1 <= usage.completion_tokens <= 12
    assert choice.finish_reason == ("length" if usage.completion_tokens == 12 else "stop")


def test_streamed_chunks_add_up_to_the_same_answer_and_usage(client, images):
    messages = [user_message(QUESTION, data_url(images["noise"]))]
    whole = ask(client, messages, max_tokens=20)
    chunks = list(ask(client, messages, max_tokens=20, stream=True,
                      stream_options={"include_usage": True}))

    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    with_choices = [chunk for chunk in chunks if chunk.choices]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in with_choices)
    assert text == whole.choices[0].message.content
    assert len(with_choices) >= 3  # the text came in pieces, not in one final chunk
    assert with_choices[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_max_tokens_ends_the_answer_at_exactly_that_many_tokens(client, images):
    messages = [user_message(QUESTION, data_url(images["red"]))]
    for limit in ({"max_tokens": 7}, {"max_completion_tokens": 5}):
        reply = ask(client, messages, extra_body={"ignore_eos": True}, **limit)
        assert reply.usage.completion_tokens == next(iter(limit.values()))
        assert reply.choices[0].finish_reason == "length"


def test_a_stop_string_cuts_the_answer_before_it(client, images):
    messages = [user_message(QUESTION, data_url(images["noise"]))]
    full = ask(client, messages, max_tokens=16, extra_body={"ignore_eos": True})
    text = full.choices[0].message.content
    stop = text[3:5]  # a piece from the middle of the answer
    expected = text[:text.index(stop)].rstrip()

    cut = ask(client, messages, max_tokens=16, stop=[stop, "never seen"])
    assert cut.choices[0].message.content == expected
    assert cut.choices[0].finish_reason == "stop"
    assert cut.usage.completion_tokens < full.usage.completion_tokens
    streamed = ask(client, messages, max_tokens=16, stop=stop, stream=True)
    pieces = [chunk.choices[0].delta.content or "" for chunk in streamed]
    assert "".join(pieces) == expected


def test_system_and_earlier_turns_are_part_of_the_prompt(client, predictor, images):
    messages = [{"role": "system", "content": "Answer briefly."},
                user_message("What colour is it?", data_url(images["red"])),
                {"role": "assistant", "content": "Red."},
                {"role": "user", "content": [{"type": "text", "text": "And its shape?"}]}]
    reply = ask(client, messages, max_tokens=4)
    turns = [{"from": "system", "value": "Answer briefly."},
             {"from": "human", "value": "<image>\nWhat colour is it?"},
             {"from": "gpt", "value": "Red."}, {"from": "human", "value": "And its shape?"}]
    prompt = predictor.bundle.processor.encode_chat_prompt(turns, num_images=1)
    assert reply.usage.prompt_tokens == len(prompt)


def test_a_file_url_reads_the_image_on_the_server(client, images):
    by_data = ask(client, [user_message(QUESTION, data_url(images["wide"]))], max_tokens=8)
    by_path = ask(client, [user_message(QUESTION, images["wide"].as_uri())], max_tokens=8)
    assert by_path.choices[0].message.content == by_data.choices[0].message.content


def test_a_seed_repeats_a_sampled_answer(client):
    def sample():
        return client.chat.completions.create(
            model=MODEL_NAME, messages=[user_message("Tell me a story.")], max_tokens=12,
            temperature=1.5, top_p=0.9, seed=7, extra_body={"ignore_eos": True})

    first, second = sample(), sample()
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.usage.completion_tokens == 12


def test_models_health_and_stats(client, server):
    listed = client.models.list()
    assert [m.id for m in listed.data] == [MODEL_NAME]
    assert client.models.retrieve(MODEL_NAME).id == MODEL_NAME
    assert server.get("/health") == {"status": "ok", "model": MODEL_NAME}
    assert {"batches", "requests", "batch_sizes", "largest_batch"} <= set(server.stats())


def test_a_client_that_leaves_mid_stream_stops_its_row(server, client, images):
    before = server.stats()["generated_tokens"]
    body = {"model": MODEL_NAME, "messages": [user_message(QUESTION)], "max_tokens": 220,
            "temperature": 0, "stream": True, "ignore_eos": True}
    with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body,
                      timeout=60) as response:
        assert response.status_code == 200
        for line in response.iter_lines():  # up to the first piece of text, then hang up
            if '"content": "' in line and '"content": ""' not in line:
                break
    # The worker is fine: the next request is answered, and the abandoned row stopped early.
    reply = ask(client, [user_message(QUESTION, data_url(images["red"]))], max_tokens=4)
    assert reply.choices[0].message.content
    assert server.stats()["generated_tokens"] - before < 220 + 4
