"""`--api-key-env NAME`: the /v1 routes need `Authorization: Bearer <key>` (401 OpenAI-style
otherwise), `/health` stays open."""
from __future__ import annotations

import httpx
import openai
import pytest

from tests.helpers.serve_process import ServeProcess
from tests.serve.conftest import MODEL_NAME, user_message

KEY_ENV = "ALLAVA_SERVE_TEST_KEY"
SECRET = "sk-serve-test-7788"


@pytest.fixture(scope="module")
def keyed_server(model_dir):
    with ServeProcess(model_dir, "--model-name", MODEL_NAME, "--api-key-env", KEY_ENV,
                      env={KEY_ENV: SECRET}) as process:
        yield process


def client(server: ServeProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=60)


def test_the_right_key_is_let_in(keyed_server):
    reply = client(keyed_server, SECRET).chat.completions.create(
        model=MODEL_NAME, messages=[user_message("Hi")], max_tokens=3)
    assert reply.usage.completion_tokens >= 1
    assert [m.id for m in client(keyed_server, SECRET).models.list().data] == [MODEL_NAME]


def test_a_wrong_key_gets_401(keyed_server):
    with pytest.raises(openai.AuthenticationError) as refused:
        client(keyed_server, "sk-wrong").chat.completions.create(
            model=MODEL_NAME, messages=[user_message("Hi")], max_tokens=3)
    assert refused.value.status_code == 401 and refused.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client(keyed_server, "sk-wrong").models.list()


def test_no_key_gets_401_with_an_openai_error_body_and_health_stays_open(keyed_server):
    response = httpx.post(f"{keyed_server.base_url}/chat/completions", timeout=30,
                          json={"model": MODEL_NAME, "messages": [user_message("Hi")]})
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_api_key"
    assert SECRET not in response.text
    assert httpx.get(f"{keyed_server.url}/health", timeout=30).status_code == 200
