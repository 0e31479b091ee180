"""A loopback server that speaks the OpenAI chat-completions protocol, for offline tests.

It binds 127.0.0.1 on an ephemeral port and runs uvicorn in a background thread (or, from the
command line, in its own process). Replies are computed by a pluggable function of the request
body, so they are deterministic; faults are injected by a second pluggable function.

>>> from mmcr_datasets.testing.openai_server import OpenAIServer, judge_reply
>>> with OpenAIServer(reply=judge_reply) as server:
...     client = openai.OpenAI(base_url=server.base_url, api_key="x")

* ``reply(body) -> str | dict``: a string becomes the assistant message content; a dict is sent
  as the whole JSON response (for tests of odd server replies). Ready-made: :func:`echo_reply`
  (an answer derived from the last user message) and :func:`judge_reply` (a JSON score object
  derived from a hash of the request).
* ``faults(body, attempt) -> Fault | None``: ``attempt`` counts earlier requests with the same
  body bytes (0 for the first), so a transient fault can hit the first try only. :class:`FaultPlan`
  spreads fault kinds over requests by a hash of the body.

Fault kinds (:data:`FAULT_KINDS`): ``rate_limit`` (429 with ``Retry-After`` and
``retry-after-ms``), ``server_error`` (500), ``slow`` (sleeps ``Fault.seconds`` before
answering, to exceed a client timeout), ``drop`` (sends headers then closes the connection
mid-body), ``malformed_body`` (a 200 whose body is not JSON), ``partial_json`` (the content is
a truncated JSON object), ``malformed_content`` (content that is prose, not JSON),
``out_of_range`` (a score object with values outside 1..10).

The server needs ``fastapi`` and ``uvicorn``; nothing in the library imports this module.
"""


import asyncio
import hashlib
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

FAULT_KINDS = ("rate_limit", "server_error", "slow", "drop", "malformed_body", "partial_json",
               "malformed_content", "out_of_range")

JUDGE_KEYS = ("precision", "reference_consistency", "logical_relationship", "theme_clarity",
              "non_redundancy", "overall")


@dataclass(frozen=True)
class Fault:
    """One injected fault. ``seconds``: the delay of ``slow``; ``retry_after``: the 429 hint."""

    kind: str
    seconds: float = 5.0
    retry_after: float = 0.02

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")


def body_digest(body: dict) -> str:
    """A stable hash of a request body (model, messages and parameters)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _last_user_text(body: dict) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(p.get("text", "") for p in content or [] if p.get("type") == "text")
    return ""


def _count_images(body: dict) -> int:
    n = 0
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, list):
            n += sum(1 for p in content if p.get("type") == "image_url")
    return n


def echo_reply(body: dict) -> str:
    """An evaluated-model answer derived from the request: stable for equal requests."""
    digest = body_digest(body)[:8]
    question = _last_user_text(body).strip().replace("\n", " ")
    return f"Answer {digest} ({_count_images(body)} image(s) seen) to: {question[:80]}"


def judge_scores(body: dict) -> dict:
    """Scores 1..10 for every judge key, derived from a hash of the request."""
    digest = bytes.fromhex(body_digest(body))
    scores = {key: 1 + digest[i] % 10 for i, key in enumerate(JUDGE_KEYS)}
    return scores


def judge_reply(body: dict) -> str:
    """A judge reply: a JSON object of scores plus a short rationale, derived from the request."""
    scores = judge_scores(body)
    scores["rationale"] = "Deterministic loopback judgement."
    return json.dumps(scores)


@dataclass
class FaultPlan:
    """Assign fault kinds to requests by a hash of the body, deterministically.

    ``rates`` maps a kind to the fraction of distinct requests that get it (the kinds share the
    hash space in the order given, so their sum must not exceed 1). A fault hits the first
    ``times`` attempts of a request; ``times=None`` makes it permanent (every retry fails the
    same way). ``only`` restricts the plan to requests whose body satisfies a predicate.
    """

    rates: dict
    times: Optional[int] = 1
    seconds: float = 5.0
    retry_after: float = 0.02
    only: Optional[Callable[[dict], bool]] = None

    def __post_init__(self):
        if sum(self.rates.values()) > 1.0 + 1e-9:
            raise ValueError("fault rates must sum to at most 1")
        for kind in self.rates:
            Fault(kind)

    def __call__(self, body: dict, attempt: int) -> Optional[Fault]:
        if self.only is not None and not self.only(body):
            return None
        if self.times is not None and attempt >= self.times:
            return None
        u = int(body_digest(body)[8:16], 16) / 0xFFFFFFFF
        edge = 0.0
        for kind, rate in self.rates.items():
            edge += rate
            if u < edge:
                return Fault(kind, seconds=self.seconds, retry_after=self.retry_after)
        return None


ReplyFn = Callable[[dict], Union[str, dict]]
FaultFn = Callable[[dict, int], Optional[Fault]]


@dataclass
class ServerStats:
    """What the server saw: requests, per-body attempt counts, faults served, auth headers."""

    requests: int = 0
    faults: Counter = field(default_factory=Counter)
    attempts: Counter = field(default_factory=Counter)
    bodies: list = field(default_factory=list)
    authorizations: set = field(default_factory=set)


def _completion(body: dict, content: str, digest: str = "", size: int = 0) -> dict:
    prompt_chars = size or len(json.dumps(body.get("messages") or []))
    prompt_tokens = max(1, prompt_chars // 4)
    completion_tokens = max(1, len(content) // 4)
    return {
        "id": "chatcmpl-" + (digest or body_digest(body))[:12],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "loopback"),
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def _fault_content(kind: str, body: dict) -> Optional[str]:
    if kind == "partial_json":
        return judge_reply(body)[:25]
    if kind == "malformed_content":
        return "I would rate this answer quite highly overall, but I cannot give numbers."
    if kind == "out_of_range":
        scores = judge_scores(body)
        scores["overall"] = 11
        scores["precision"] = 0
        return json.dumps(scores)
    return None


def create_app(reply: ReplyFn = echo_reply, faults: Optional[FaultFn] = None, delay: float = 0.0,
               api_key: Optional[str] = None, stats: Optional[ServerStats] = None,
               keep_bodies: bool = True):
    """The FastAPI application. ``api_key``: when set, requests must carry it as a bearer token."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

    def json_response(data: dict) -> Response:  # skips FastAPI's generic encoder: this is the hot path
        return Response(json.dumps(data), media_type="application/json")

    app = FastAPI()
    stats = stats if stats is not None else ServerStats()
    app.state.stats = stats
    lock = threading.Lock()

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": "loopback", "object": "model", "owned_by": "mmcr"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        auth = request.headers.get("authorization", "")
        if api_key is not None and auth != f"Bearer {api_key}":
            return JSONResponse({"error": {"message": "invalid api key", "type": "invalid_request_error",
                                           "code": "invalid_api_key"}}, status_code=401)
        raw = await request.body()
        body = json.loads(raw)
        digest = hashlib.sha256(raw).hexdigest()  # equal requests from one client serialise equally
        with lock:
            attempt = stats.attempts[digest]
            stats.attempts[digest] += 1
            stats.requests += 1
            if keep_bodies:
                stats.bodies.append(body)
            stats.authorizations.add(hashlib.sha256(auth.encode()).hexdigest())
        fault = faults(body, attempt) if faults is not None else None
        if delay:
            await asyncio.sleep(delay)
        if fault is not None:
            with lock:
                stats.faults[fault.kind] += 1
            if fault.kind == "rate_limit":
                return JSONResponse(
                    {"error": {"message": "rate limited", "type": "rate_limit_error", "code": "rate_limit"}},
                    status_code=429,
                    headers={"retry-after": str(max(0, int(round(fault.retry_after)))),
                             "retry-after-ms": str(int(fault.retry_after * 1000))})
            if fault.kind == "server_error":
                return JSONResponse({"error": {"message": "injected failure", "type": "server_error"}},
                                    status_code=500)
            if fault.kind == "slow":
                await asyncio.sleep(fault.seconds)
            if fault.kind == "malformed_body":
                return PlainTextResponse('{"id": "chatcmpl-x", "choices": [ {"mess', status_code=200,
                                         media_type="application/json")
            if fault.kind == "drop":
                async def broken():
                    yield b'{"id": "chatcmpl-drop", "choi'
                    raise ConnectionResetError("injected dropped connection")

                return StreamingResponse(broken(), media_type="application/json",
                                         headers={"content-length": "4096"})
            content = _fault_content(fault.kind, body)
            if content is not None:
                return json_response(_completion(body, content, digest, len(raw)))
        result = reply(body)
        if isinstance(result, dict):
            return json_response(result)
        return json_response(_completion(body, result, digest, len(raw)))

    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OpenAIServer:
    """Run :func:`create_app` with uvicorn on 127.0.0.1 in a daemon thread (a context manager).

    ``base_url`` ends in ``/v1`` as the ``openai`` client expects; ``stats`` records what came in.
    """

    def __init__(self, reply: ReplyFn = echo_reply, faults: Optional[FaultFn] = None, delay: float = 0.0,
                 api_key: Optional[str] = None, port: int = 0, keep_bodies: bool = True):
        self.stats = ServerStats()
        self.app = create_app(reply, faults, delay, api_key, self.stats, keep_bodies)
        self.port = port or _free_port()
        self._server = None
        self._thread = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "OpenAIServer":
        import uvicorn

        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="critical",
                                access_log=False, timeout_keep_alive=30, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="openai-loopback", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the loopback OpenAI server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True  # do not wait for requests still sleeping in a fault
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self) -> "OpenAIServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv=None) -> int:
    """``python -m mmcr_datasets.testing.openai_server [--reply judge|echo] [--delay S]``.

    Prints ``PORT <n>`` on stdout once the server listens, then serves until killed.
    """
    import argparse

    import uvicorn

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--reply", choices=["judge", "echo"], default="judge")
    p.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args(argv)
    port = args.port or _free_port()
    app = create_app(judge_reply if args.reply == "judge" else echo_reply, delay=args.delay, keep_bodies=False)
    print(f"PORT {port}", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="critical", access_log=False, backlog=2048)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
