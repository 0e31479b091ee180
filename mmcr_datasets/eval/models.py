"""Adapters for the evaluated model: an OpenAI-compatible endpoint, a local transformers model, a callable.

Every adapter turns a list of :class:`~mmcr_datasets.eval.bench.TurnRequest` into a list of
:class:`Generation` in the same order. ``name`` and :meth:`fingerprint` identify the model and its
generation settings; the runner uses them to key cached answers, so changing either re-generates.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from ..errors import MMCRError, require
from .bench import TurnRequest
from .client import (RetryPolicy, call_chat, completion_content, completion_usage, make_async_client,
                     redact_url, resolve_endpoint, run_coroutine, run_workers)

logger = logging.getLogger(__name__)


@dataclass
class Generation:
    """A model answer, or the reason there is none (``text`` is then ``None``)."""

    text: Optional[str]
    error: Optional[str] = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ModelAdapter:
    """The interface: ``name``, ``settings()`` and ``generate(requests)``."""

    name: str = "model"
    batch_size: int = 16

    def settings(self) -> dict:
        return {}

    def fingerprint(self) -> str:
        blob = json.dumps({"name": self.name, "settings": self.settings()}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def generate(self, requests: Sequence[TurnRequest]) -> list[Generation]:  # pragma: no cover - interface
        raise NotImplementedError


class CallableModel(ModelAdapter):
    """A user function: ``fn(request) -> str``, or ``fn(list_of_requests) -> list[str]`` with ``batched=True``.

    An exception raised by the function becomes a :class:`Generation` with the error, not a crash.
    """

    def __init__(self, fn: Callable, *, name: Optional[str] = None, batched: bool = False, batch_size: int = 16):
        self.fn = fn
        self.batched = batched
        self.batch_size = batch_size
        self.name = name or f"callable:{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"

    def generate(self, requests):
        if self.batched:
            try:
                texts = list(self.fn(list(requests)))
            except Exception as exc:  # noqa: BLE001 - recorded per turn
                return [Generation(None, f"model_error:{type(exc).__name__}: {exc}") for _ in requests]
            if len(texts) != len(requests):
                raise MMCRError(f"{self.name} returned {len(texts)} answers for {len(requests)} requests")
            return [Generation(str(t)) for t in texts]
        out = []
        for request in requests:
            try:
                out.append(Generation(str(self.fn(request))))
            except Exception as exc:  # noqa: BLE001 - recorded per turn
                out.append(Generation(None, f"model_error:{type(exc).__name__}: {exc}"))
        return out


class OpenAIChatModel(ModelAdapter):
    """Any OpenAI-compatible chat endpoint (OpenAI, vLLM, SGLang, LMDeploy, TGI).

    Images go as base64 ``data:`` URIs in ``image_url`` parts, at the place the dialogue refers to
    them. The base URL comes from the option or ``MMCR_MODEL_BASE_URL``; the key from the option,
    ``MMCR_MODEL_API_KEY`` or ``OPENAI_API_KEY``. Requests of a batch run concurrently.
    """

    def __init__(self, model: str, *, base_url: Optional[str] = None, api_key: Optional[str] = None,
                 concurrency: int = 8, max_tokens: int = 512, temperature: float = 0.0,
                 retry: RetryPolicy = RetryPolicy(), extra_body: Optional[dict] = None, batch_size: int = 64):
        self.model = model
        self._base_url, self._api_key = resolve_endpoint(
            base_url, api_key, base_url_envs=("MMCR_MODEL_BASE_URL",),
            api_key_envs=("MMCR_MODEL_API_KEY", "OPENAI_API_KEY"), what=f"model {model!r}")
        self.concurrency = concurrency
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.retry = retry
        self.extra_body = extra_body or {}
        self.batch_size = batch_size
        self.name = f"openai:{model}@{redact_url(self._base_url) or 'api.openai.com'}"

    def __repr__(self) -> str:
        return f"OpenAIChatModel({self.name!r})"

    def settings(self) -> dict:
        return {"max_tokens": self.max_tokens, "temperature": self.temperature, "extra_body": self.extra_body}

    def generate(self, requests):
        return run_coroutine(self._agenerate(list(requests)))

    async def _agenerate(self, requests):
        client = make_async_client(self._base_url, self._api_key, self.concurrency)
        rng = random.Random(0)
        results: list = [None] * len(requests)

        async def handle(client, job):
            i, request = job
            payload = {"model": self.model, "messages": request.openai_messages(), "max_tokens": self.max_tokens,
                       "temperature": self.temperature}
            payload.update(self.extra_body)  # server-specific fields (vLLM's top_k, ...) go in the body
            outcome = await call_chat(client, payload, self.retry, rng)
            if outcome.response is None:
                results[i] = Generation(None, f"model_call_failed:{outcome.error}")
            else:
                results[i] = Generation(completion_content(outcome.response), None, *completion_usage(outcome.response))

        try:
            await run_workers(list(enumerate(requests)), self.concurrency, client, handle)
        finally:
            await client.close()
        return results


class TransformersModel(ModelAdapter):
    """A local transformers vision-language model with its processor; greedy, batched generation.

    The processor's chat template renders each request (image parts become the family's image
    tokens), or, with ``formatter="qwen2_vl"`` (any id of :mod:`mmcr_datasets.formatters`), the
    project's formatter for that family, which needs no template on the processor. Prompts are
    left-padded so a batch generates together. ``images_arg="nested"`` passes
    one list of images per prompt (what most processors accept); ``"flat"`` passes one flat list.
    """

    def __init__(self, model, processor, *, batch_size: int = 4, max_new_tokens: int = 64,
                 generate_kwargs: Optional[dict] = None, name: Optional[str] = None, images_arg: str = "nested",
                 formatter: Optional[str] = None):
        if formatter is None and not getattr(processor, "chat_template", None):
            raise MMCRError("the processor has no chat template; pass formatter=<family id> (one of "
                            "mmcr_datasets.formatters.list_formatters()) to render prompts without one")
        self.formatter = formatter
        self.model = model
        self.processor = processor
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.generate_kwargs = dict(generate_kwargs or {})
        self.images_arg = images_arg
        path = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
        self.name = name or f"transformers:{path}"

    @classmethod
    def from_pretrained(cls, path: str, *, dtype: str = "auto", device: Optional[str] = None,
                        processor_path: Optional[str] = None, **kwargs):
        """Load ``AutoModelForImageTextToText`` and ``AutoProcessor`` from a local folder or Hub id."""
        transformers = require("transformers", feature="evaluating a local transformers model", extra="train")
        require("torch", feature="evaluating a local transformers model", extra="train")
        processor = transformers.AutoProcessor.from_pretrained(processor_path or path)
        model = transformers.AutoModelForImageTextToText.from_pretrained(path, dtype=dtype)
        if device:
            model = model.to(device)
        model.eval()
        return cls(model, processor, name=kwargs.pop("name", None) or f"transformers:{path}", **kwargs)

    def settings(self) -> dict:
        return {"max_new_tokens": self.max_new_tokens, "generate_kwargs": self.generate_kwargs,
                "formatter": self.formatter}

    def _tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)

    def generate(self, requests):
        out: list[Generation] = []
        for start in range(0, len(requests), self.batch_size):
            out.extend(self._generate_batch(list(requests[start:start + self.batch_size])))
        return out

    def _prompt(self, request: TurnRequest) -> str:
        if self.formatter is None:
            return self.processor.apply_chat_template(list(request.messages), add_generation_prompt=True,
                                                      tokenize=False)
        from ..formatters import format_dialogue
        from ..records import Dialogue, ImagePart, ImageRef, Message, TextPart

        messages, n = [], 0
        for m in request.messages:
            parts = []
            for p in m["content"]:
                if p["type"] == "image":
                    parts.append(ImagePart(n))
                    n += 1
                else:
                    parts.append(TextPart(p["text"]))
            messages.append(Message(m["role"], tuple(parts)))
        dialogue = Dialogue(request.dialogue_id, tuple(messages), tuple(ImageRef(None, None) for _ in range(n)))
        return format_dialogue(dialogue, self.formatter, add_generation_prompt=True, literal_tokens="keep").text

    def _generate_batch(self, batch: list[TurnRequest]) -> list[Generation]:
        import torch

        tok = self._tokenizer()
        texts = [self._prompt(r) for r in batch]
        images = [r.pil_images() for r in batch]
        if self.images_arg == "flat":
            images = [img for imgs in images for img in imgs]
        old_side = getattr(tok, "padding_side", None)
        tok.padding_side = "left"
        try:
            kwargs = {"text": texts, "padding": True, "return_tensors": "pt"}
            if any(images):
                kwargs["images"] = images
            inputs = self.processor(**kwargs)
        finally:
            if old_side is not None:
                tok.padding_side = old_side
        device = getattr(self.model, "device", None)
        if device is not None:
            inputs = inputs.to(device)
        gen_kwargs = {"max_new_tokens": self.max_new_tokens, "do_sample": False}
        if getattr(tok, "pad_token_id", None) is not None:
            gen_kwargs["pad_token_id"] = tok.pad_token_id
        gen_kwargs.update(self.generate_kwargs)
        with torch.inference_mode():
            output = self.model.generate(**inputs, **gen_kwargs)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        texts_out = tok.batch_decode(new_tokens, skip_special_tokens=True)
        return [Generation(t.strip(), None, int(inputs["attention_mask"][i].sum()), int(new_tokens.shape[1]))
                for i, t in enumerate(texts_out)]


def model_from_spec(spec: str, *, base_url: Optional[str] = None, concurrency: int = 8, max_tokens: int = 512,
                    batch_size: int = 4, retry: RetryPolicy = RetryPolicy(),
                    formatter: Optional[str] = None) -> ModelAdapter:
    """Build an adapter from a command-line spec.

    * ``openai:NAME`` — an OpenAI-compatible endpoint serving model ``NAME``;
    * ``hf:PATH`` (or ``transformers:PATH``) — a local transformers model folder or Hub id;
    * ``callable:MODULE:FUNCTION`` — a Python function ``fn(request) -> str``.
    """
    kind, _, rest = spec.partition(":")
    if not rest:
        raise ValueError(f"model spec {spec!r} must look like openai:NAME, hf:PATH or callable:MODULE:FUNCTION")
    if kind == "openai":
        return OpenAIChatModel(rest, base_url=base_url, concurrency=concurrency, max_tokens=max_tokens, retry=retry)
    if kind in ("hf", "transformers"):
        return TransformersModel.from_pretrained(rest, batch_size=batch_size, max_new_tokens=max_tokens,
                                                 formatter=formatter)
    if kind == "callable":
        import importlib

        module, _, attr = rest.rpartition(":")
        if not module:
            raise ValueError(f"callable spec {spec!r} must be callable:MODULE:FUNCTION")
        fn = getattr(importlib.import_module(module), attr)
        return CallableModel(fn, name=f"callable:{rest}")
    raise ValueError(f"unknown model kind {kind!r} in {spec!r}; use openai:, hf: or callable:")
