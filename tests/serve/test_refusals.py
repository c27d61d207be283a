"""Requests the server cannot answer get OpenAI-style errors (status, `error.message/type/
param/code`) naming the problem, and the server keeps answering the next ones."""
from __future__ import annotations

import base64
import json

import httpx
import openai
import pytest

from tests.serve.conftest import MODEL_NAME, data_url, user_message

NOT_AN_IMAGE = "data:image/png;base64," + base64.b64encode(b"these bytes are no png").decode()


def body(**fields) -> dict:
    return {"model": MODEL_NAME, "messages": [user_message("What is it?")], "max_tokens": 4,
            **fields}


def two_images(images) -> dict:
    content = [{"type": "image_url", "image_url": {"url": data_url(images["red"])}},
               {"type": "text", "text": "Compare them."},
               {"type": "image_url", "image_url": {"url": data_url(images["noise"])}}]
    return body(messages=[{"role": "user", "content": content}])


CASES = {  # name: (request body, or a function of the images; status; code; words of message)
    "unknown model": (body(model="gpt-4o"), 404, "model_not_found", "gpt-4o"),
    "n=2": (body(n=2), 400, None, "n=2"),
    "two images": (two_images, 400, "too_many_images", "one image per conversation"),
    "corrupt base64": (body(messages=[user_message("Hi", "data:image/png;base64,@@@")]), 400,
                       "invalid_image_url", "base64"),
    "bytes that are no image": (body(messages=[user_message("Hi", NOT_AN_IMAGE)]), 400,
                                "invalid_image", "in no format this server reads"),
    "an http URL": (body(messages=[user_message("Hi", "https://example.com/cat.png")]), 400,
                    "invalid_image_url", "'https'"),
    "a missing file": (body(messages=[user_message("Hi", "file:///no/such/image.png")]), 400,
                       "invalid_image_url", "/no/such/image.png"),
    "too long for the context": (body(max_tokens=5000), 400, "context_length_exceeded",
                                 "maximum context length is 256 tokens"),
    "temperature out of range": (body(temperature=7), 400, None, "temperature"),
    "no messages": (body(messages=[]), 400, None, "messages"),
    "a wrong type": (body(max_tokens="many"), 400, None, "max_tokens"),
    "structured output": (body(response_format={"type": "json_schema", "json_schema": {}}),
                          400, None, "response_format"),
    "a last turn that is no question": (
        body(messages=[user_message("Hi"), {"role": "assistant", "content": "Hello"}]), 400,
        None, "last message must be the user's"),
    "a tool message": (body(messages=[{"role": "tool", "content": "42"}]), 400, None, "'tool'"),
    "an audio part": (body(messages=[{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]), 400, None,
        "input_audio"),
    "the image tag typed as text": (body(messages=[user_message("<image> hi")]), 400, None,
                                    "reserved"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_request_gets_an_openai_style_error(server, images, name):
    request, status, code, words = CASES[name]
    request = request(images) if callable(request) else request
    response = httpx.post(f"{server.base_url}/chat/completions", json=request, timeout=30)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["code"] == code and words in error["message"]


def test_a_body_that_is_no_json_is_a_400(server):
    response = httpx.post(f"{server.base_url}/chat/completions", content=b"{not json",
                          headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code == 400 and "error" in response.json()


@pytest.mark.parametrize("chunked", [False, True])
def test_an_oversized_body_is_a_413_and_the_server_stays_up(server, chunked):
    """Over the default 20 MiB: refused from its declared length, or while it arrives when it
    declares none, before the server holds it whole."""
    request = {"model": MODEL_NAME, "messages": [user_message("x" * (21 * 2**20))]}
    payload = json.dumps(request).encode()
    content = (payload[i:i + 2**20] for i in range(0, len(payload), 2**20)) if chunked \
        else payload
    response = httpx.post(f"{server.base_url}/chat/completions", content=content,
                          headers={"content-type": "application/json"}, timeout=60)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert httpx.get(server.base_url.removesuffix("/v1") + "/health", timeout=10).status_code == 200


def test_the_openai_client_sees_the_errors_it_knows(client):
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=[user_message("Hi")])
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL_NAME, messages=[user_message("Hi")], n=3)
    assert refused.value.param == "n"
    reply = client.chat.completions.create(model=MODEL_NAME, messages=[user_message("Hi")],
                                           max_tokens=2)
    assert reply.choices[0].message.content is not None
