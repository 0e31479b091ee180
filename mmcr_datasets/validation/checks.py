"""Record-level checks on canonical records (plain dicts, see ``schema/record.schema.json``).

Checks are small functions registered in :data:`CHECKS`. :func:`check_record` runs all of them
and returns every issue; it never raises on bad input. A record whose structure is broken gets
``MMCR001`` and the checks that need that structure are skipped, so one defect yields one code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from ..taxonomy import Taxonomy
from .issues import Issue, make_issue

PLACEHOLDERS = ("<image>", "<ImageHere>")


@dataclass(frozen=True)
class ValidationProfile:
    """What the data is allowed to look like. The defaults are MMCR's rules."""

    turns: tuple[int, ...] = (4, 8)
    min_images: int = 1
    max_images: int = 4
    require_labels: bool = False  # True for MMCR-Bench

    @classmethod
    def for_dataset(cls, name: str) -> "ValidationProfile":
        return cls(require_labels=(name == "bench"))


RELAXED = ValidationProfile(turns=tuple(range(1, 1000)), min_images=0, max_images=1000)


def _identity(pointer: str) -> str:
    return pointer


@dataclass
class CheckContext:
    taxonomy: Taxonomy
    profile: ValidationProfile = field(default_factory=ValidationProfile)
    source: Optional[str] = None
    #: Maps a pointer into the canonical record to a pointer into the raw record the user wrote.
    pointer_map: Callable[[str], str] = _identity
    #: The raw format's placeholder token, for hints ("<image>", "<ImageHere>" or None).
    placeholder: Optional[str] = None


Check = Callable[[dict, CheckContext, "Emitter"], None]
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    CHECKS.append(fn)
    return fn


class Emitter:
    def __init__(self, record: dict, ctx: CheckContext):
        rid = record.get("id") if isinstance(record, dict) else None
        self.record_id = rid if isinstance(rid, str) else None
        self.ctx = ctx
        self.issues: list[Issue] = []

    def __call__(self, code: str, pointer: str, message: str, hint: Optional[str] = None) -> None:
        self.issues.append(
            make_issue(code, message, record_id=self.record_id, pointer=self.ctx.pointer_map(pointer),
                       source=self.ctx.source, hint=hint)
        )


def check_record(record: dict, ctx: CheckContext) -> list[Issue]:
    """Run every registered check on one canonical record; return all issues found."""
    emit = Emitter(record, ctx)
    if not _structure_ok(record, emit):
        return emit.issues
    for fn in CHECKS:
        try:
            fn(record, ctx, emit)
        except Exception as exc:  # a check must never crash validation
            emit("MMCR001", "", f"record could not be checked by {fn.__name__}: {type(exc).__name__}: {exc}")
    return emit.issues


def _structure_ok(rec, emit: Emitter) -> bool:
    """Type-level checks; on failure only MMCR001/MMCR002 are reported."""
    if not isinstance(rec, dict):
        emit("MMCR001", "", f"a record must be a JSON object, got {type(rec).__name__}")
        return False
    ok = True
    rid = rec.get("id")
    if not isinstance(rid, str) or not rid.strip():
        emit("MMCR002", "/id", f"id is {rid!r}; a non-empty string is required")
    msgs = rec.get("messages")
    if not isinstance(msgs, list) or not msgs:
        emit("MMCR001", "/messages", "messages must be a non-empty list")
        return False
    images = rec.get("images")
    if not isinstance(images, list):
        emit("MMCR001", "/images", "images must be a list")
        ok = False
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), list):
            emit("MMCR001", f"/messages/{i}", "a message needs a string role and a list content")
            ok = False
            continue
        for k, p in enumerate(m["content"]):
            ptr = f"/messages/{i}/content/{k}"
            if not isinstance(p, dict) or p.get("type") not in ("text", "image"):
                emit("MMCR001", ptr, "a content part must be {type: text, text} or {type: image, index}")
                ok = False
            elif p["type"] == "text" and not isinstance(p.get("text"), str):
                emit("MMCR001", ptr + "/text", "a text part needs a string text")
                ok = False
            elif p["type"] == "image" and (not isinstance(p.get("index"), int) or isinstance(p.get("index"), bool)
                                           or p["index"] < 0):
                emit("MMCR001", ptr + "/index", "an image part needs a non-negative integer index")
                ok = False
    for key in ("domain", "subtopic", "source", "dialogue_type"):
        if rec.get(key) is not None and not isinstance(rec[key], str):
            emit("MMCR001", f"/{key}", f"{key} must be a string or null")
            ok = False
    scores = rec.get("clip_scores")
    if scores is not None and (not isinstance(scores, list)
                               or not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scores)):
        emit("MMCR001", "/clip_scores", "clip_scores must be a list of numbers")
        ok = False
    return ok


@check
def roles(rec, ctx, emit):
    msgs = rec["messages"]
    seq = []
    for i, m in enumerate(msgs):
        role = m["role"]
        if role not in ("system", "user", "assistant"):
            emit("MMCR010", f"/messages/{i}/role", f"role {role!r} is not user, assistant or system")
            return
        if role == "system":
            if i != 0:
                emit("MMCR011", f"/messages/{i}/role", "a system message may only be the first message")
                return
            continue
        seq.append((i, role))
    if not seq:
        emit("MMCR013", "/messages", "the dialogue has no user message")
        return
    if seq[0][1] != "user":
        emit("MMCR013", f"/messages/{seq[0][0]}/role", f"the first message is {seq[0][1]!r}, not 'user'")
        return
    for (i, a), (_, b) in zip(seq, seq[1:]):
        if a == b:
            emit("MMCR012", f"/messages/{i + 1}/role", f"two {a!r} messages in a row")
            return
    if seq[-1][1] != "assistant":
        emit("MMCR014", f"/messages/{seq[-1][0]}/role", "the last message is a user question without an answer")


def _turns(rec) -> int:
    return sum(1 for m in rec["messages"] if m["role"] == "user")


@check
def counts(rec, ctx, emit):
    prof = ctx.profile
    n_turns = _turns(rec)
    n_images = len(rec.get("images") or [])
    if n_turns not in prof.turns:
        allowed = ", ".join(map(str, prof.turns)) if len(prof.turns) < 10 else f"{prof.turns[0]}..{prof.turns[-1]}"
        emit("MMCR015", "/messages", f"{n_turns} turn(s); allowed: {allowed}")
    if not prof.min_images <= n_images <= prof.max_images:
        emit("MMCR016", "/images", f"{n_images} image(s); allowed: {prof.min_images} to {prof.max_images}")
    dtype = rec.get("dialogue_type")
    if dtype is not None:
        if dtype not in ("single_image", "multi_image"):
            emit("MMCR017", "/dialogue_type", f"dialogue_type {dtype!r} is not single_image or multi_image")
        elif (dtype == "single_image") != (n_images == 1):
            emit("MMCR017", "/dialogue_type", f"dialogue_type is {dtype!r} but the record has {n_images} image(s)")
    if rec.get("num_images") is not None and rec["num_images"] != n_images:
        emit("MMCR044", "/num_images", f"num_images is {rec['num_images']} but there are {n_images} images")
    if rec.get("num_turns") is not None and rec["num_turns"] != n_turns:
        emit("MMCR044", "/num_turns", f"num_turns is {rec['num_turns']} but there are {n_turns} turns")
    scores = rec.get("clip_scores") or []
    if scores and len(scores) != n_images:
        emit("MMCR045", "/clip_scores", f"{len(scores)} clip score(s) for {n_images} image(s)")


@check
def image_refs(rec, ctx, emit):
    n_images = len(rec.get("images") or [])
    refs = []  # (message index, part index, image index)
    for i, m in enumerate(rec["messages"]):
        for k, p in enumerate(m["content"]):
            if p["type"] == "image":
                refs.append((i, k, p["index"]))
                if m["role"] != "user":
                    emit("MMCR018", f"/messages/{i}/content/{k}", f"an image in a {m['role']!r} message")
    if len(refs) != n_images:
        token = ctx.placeholder
        what = f"{token} placeholder(s)" if token else "image part(s)"
        emit("MMCR020", "/images" if refs else "/messages",
             f"{len(refs)} {what} but {n_images} image(s)",
             hint=(f"make the number of {token} placeholders equal the number of images"
                   + ("; if the images belong before the first question, "
                      "mmcr_datasets.validation.fixes.fix_missing_placeholders adds them" if not refs else ""))
             if token else None)
        return
    seen = set()
    expected = 0
    for i, k, idx in refs:
        ptr = f"/messages/{i}/content/{k}"
        if idx >= n_images:
            emit("MMCR021", ptr + "/index", f"image index {idx} but only {n_images} image(s)")
            return
        if idx in seen:
            emit("MMCR022", ptr + "/index", f"image {idx} is referenced a second time")
            return
        seen.add(idx)
    for i, k, idx in refs:
        if idx != expected:
            emit("MMCR023", f"/messages/{i}/content/{k}/index",
                 f"image {idx} is the {_ordinal(expected + 1)} image referenced; images must be listed in order of first reference")
            return
        expected += 1


def _ordinal(n: int) -> str:
    return f"{n}{'tsnrhtdd'[(n // 10 % 10 != 1) * (n % 10 < 4) * n % 10::4]}"


def _has_bad_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


@check
def texts(rec, ctx, emit):
    for i, m in enumerate(rec["messages"]):
        has_text = False
        for k, p in enumerate(m["content"]):
            if p["type"] != "text":
                continue
            ptr = f"/messages/{i}/content/{k}/text"
            text = p["text"]
            has_text = True
            if not text.strip():
                emit("MMCR030", ptr, "empty text part")
                continue
            if _has_bad_unicode(text):
                emit("MMCR031", ptr, "text holds bytes that are not valid UTF-8 (or a lone surrogate escape)")
            for token in PLACEHOLDERS:
                if token in text:
                    emit("MMCR032", ptr, f"the text contains {token!r} as literal text")
        if not has_text and m["role"] == "assistant":
            emit("MMCR030", f"/messages/{i}", "an assistant message without text")
    for key in ("id", "source"):
        val = rec.get(key)
        if isinstance(val, str) and _has_bad_unicode(val):
            emit("MMCR031", f"/{key}", f"{key} is not valid UTF-8")


@check
def labels(rec, ctx, emit):
    tax = ctx.taxonomy
    domain, sub = rec.get("domain"), rec.get("subtopic")
    where = tax.path or "schema/taxonomy.json"
    if ctx.profile.require_labels and (domain is None or sub is None):
        missing = " and ".join(n for n, v in (("domain", domain), ("subtopic", sub)) if v is None)
        emit("MMCR043", "/domain" if domain is None else "/subtopic", f"missing {missing}")
    if domain is not None and not tax.has_domain(domain):
        emit("MMCR040", "/domain", f"domain {domain!r} is not in the taxonomy {where}",
             hint=f"use one of {tax.domain_names}, or add it to {where} (pass --taxonomy FILE)")
        return
    if sub is not None and not tax.has_subtopic(sub):
        emit("MMCR041", "/subtopic", f"sub-topic {sub!r} is not in the taxonomy {where}",
             hint=f"add it to {where} (pass --taxonomy FILE) or use an existing sub-topic")
        return
    if domain is not None and sub is not None and tax.domain_of(sub) != domain:
        emit("MMCR042", "/subtopic", f"sub-topic {sub!r} belongs to {tax.domain_of(sub)!r}, not {domain!r}")


def duplicate_id_issue(record_id: str, first_source: Optional[str], ctx: CheckContext) -> Issue:
    return make_issue("MMCR003", f"id {record_id!r} was already used" + (f" at {first_source}" if first_source else ""),
                      record_id=record_id, pointer=ctx.pointer_map("/id"), source=ctx.source)

