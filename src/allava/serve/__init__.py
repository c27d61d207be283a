"""`allava serve`: a trained model behind an OpenAI-compatible HTTP API, with batching.

One module per part, in the order a request meets them:
  `schema`         the chat-completions request body (pydantic), as OpenAI clients send it.
  `image_urls`     `image_url` parts (data: and file:// URLs) -> PIL images.
  `conversation`   OpenAI messages -> ALLaVA turns and the conversation's one image.
  `jobs`           a validated request -> `GenerationJob`: prompt ids, pixels, limits, sampling.
  `request_queue`  the bounded queue the HTTP side fills and the worker empties, by sampling group.
  `arrivals`       whether more requests are on their way, so that a batch may wait to fill.
  `pending`        a queued request, and the events the worker sends back to it.
  `answer_text`    one answer's token ids -> its text: stop strings, text safe to stream.
  `batch_streamer` what `generate` calls each step: every row's new token to its own request.
  `engine`         the one worker thread running batched, left-padded, KV-cached `generate`;
                   `stats` its counters (`GET /stats`).
  `responses`      `chat.completion` bodies, `chat.completion.chunk`s, server-sent events.
  `errors`         OpenAI-style error bodies.
  `app`            the FastAPI routes; `cli` starts uvicorn (`allava serve MODEL_DIR`).
"""
