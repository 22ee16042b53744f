"""Drive a running `infer serve` with the official `openai` Python client.

Usage: python3 scripts/openai_client_check.py BASE_URL [API_KEY]
       (e.g. http://127.0.0.1:8080/v1; API_KEY: the server's --api-key)

Checks non-streaming and streaming completions and chat completions, the
model list, that an invalid request raises the client's error with the
server's status, and, given the server's key, that a wrong key raises the
client's authentication error. Exits non-zero on the first failure.
"""

import sys

import openai

base_url = sys.argv[1]
# The server's --api-key; a server started without one takes any.
api_key = sys.argv[2] if len(sys.argv) > 2 else "not-needed"
# ANCHOR: connect
client = openai.OpenAI(base_url=base_url, api_key=api_key)
# ANCHOR_END: connect

models = client.models.list()
name = models.data[0].id
assert "SmolLM2" in name, name

c = client.completions.create(
    model=name, prompt="The capital of France is", max_tokens=8, temperature=0
)
text = c.choices[0].text
assert c.object == "text_completion"
assert 1 <= c.usage.completion_tokens <= 8
assert c.choices[0].finish_reason in ("stop", "length")
print(f"completions: {text!r}")

streamed = "".join(
    chunk.choices[0].text
    for chunk in client.completions.create(
        model=name, prompt="The capital of France is", max_tokens=8, temperature=0, stream=True
    )
    if chunk.choices
)
assert streamed == text, (streamed, text)
print("completions stream: same text")

chat = client.chat.completions.create(
    model=name,
    messages=[{"role": "user", "content": "What is the capital of France?"}],
    max_tokens=24,
    temperature=0,
    logprobs=True,
    top_logprobs=2,
)
answer = chat.choices[0].message.content
assert chat.choices[0].message.role == "assistant"
assert answer, "an empty chat answer"
assert len(chat.choices[0].logprobs.content) == chat.usage.completion_tokens
print(f"chat: {answer!r}")

# ANCHOR: stream
parts = []
for chunk in client.chat.completions.create(
    model=name,
    messages=[{"role": "user", "content": "What is the capital of France?"}],
    max_tokens=24,
    temperature=0,
    stream=True,
    stream_options={"include_usage": True},
):
    if chunk.choices and chunk.choices[0].delta.content:
        parts.append(chunk.choices[0].delta.content)
    if chunk.usage:
        assert chunk.usage.completion_tokens == chat.usage.completion_tokens
# ANCHOR_END: stream
assert "".join(parts) == answer, ("".join(parts), answer)
print("chat stream: same text")

try:
    client.completions.create(model=name, prompt="x", temperature=7)
except openai.BadRequestError as e:
    assert e.status_code == 400
    print("bad request: 400 as expected")
else:
    raise AssertionError("temperature 7 was accepted")

if len(sys.argv) > 2:
    stranger = openai.OpenAI(base_url=base_url, api_key=api_key + "x")
    try:
        stranger.models.list()
    except openai.AuthenticationError as e:
        assert e.status_code == 401
        print("wrong key: 401 as expected")
    else:
        raise AssertionError("a wrong API key was accepted")

print("openai client: all checks passed")
