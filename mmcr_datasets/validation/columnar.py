"""Validation of built parquet data, column at a time (no per-row Python, images not decoded).

The same invariants as :mod:`.checks`, with the same codes, computed with numpy over the
flattened ``messages`` column. This is what ``mmcr validate FOLDER`` runs; it reads the image
column only with ``check_images=True`` (header checks, still no pixel decoding).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..taxonomy import Taxonomy
from .checks import PLACEHOLDERS, ValidationProfile
from .issues import Issue, make_issue

_COLUMNS = ["id", "dialogue_type", "domain", "subtopic", "images.list.element.path", "messages", "num_images",
            "num_turns", "clip_scores"]


def _np(arr) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False))


def _bool(arr) -> np.ndarray:
    return _np(pc.fill_null(arr, False)).astype(bool)


def check_table(table: pa.Table, taxonomy: Taxonomy, profile: ValidationProfile, *, shard: str,
                row_offset: int = 0) -> list[Issue]:
    """Check every row of ``table`` (columns as in :data:`_COLUMNS`); return all issues."""
    n = table.num_rows
    if n == 0:
        return []
    issues: list[tuple[int, str, str, str]] = []  # (row, code, pointer, message)
    first: dict[tuple[int, str], bool] = {}

    def flag(rows: np.ndarray, code: str, pointer, message) -> None:
        for k, r in enumerate(np.asarray(rows).tolist()):
            if (r, code) in first:
                continue
            first[(r, code)] = True
            ptr = pointer(k, r) if callable(pointer) else pointer
            msg = message(k, r) if callable(message) else message
            issues.append((r, code, ptr, msg))

    ids = table.column("id").combine_chunks()
    id_list = ids.to_pylist()
    bad_id = np.flatnonzero(_np(pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(ids)), 0), True)))
    flag(bad_id, "MMCR002", "/id", lambda k, r: f"id is {id_list[r]!r}; a non-empty string is required")

    messages = table.column("messages").combine_chunks()
    msg_off = _np(messages.offsets)
    n_msgs = np.diff(msg_off)
    msg_row = np.repeat(np.arange(n), n_msgs)
    msg_vals = messages.values
    roles = msg_vals.field("role")
    is_user = _bool(pc.equal(roles, "user"))
    is_asst = _bool(pc.equal(roles, "assistant"))
    is_sys = _bool(pc.equal(roles, "system"))
    pos = np.arange(len(msg_row)) - msg_off[msg_row]

    empty = np.flatnonzero(n_msgs == 0)
    flag(empty, "MMCR001", "/messages", "messages must be a non-empty list")

    role_bad = np.zeros(n, dtype=bool)
    unknown = ~(is_user | is_asst | is_sys)
    role_list = None
    if unknown.any():
        role_list = roles.to_pylist()
        idx = np.flatnonzero(unknown)
        rows, firsts = np.unique(msg_row[idx], return_index=True)
        flag(rows, "MMCR010", lambda k, r: f"/messages/{pos[idx[firsts[k]]]}/role",
             lambda k, r: f"role {role_list[idx[firsts[k]]]!r} is not user, assistant or system")
        role_bad[rows] = True
    late_sys = is_sys & (pos > 0) & ~role_bad[msg_row]
    if late_sys.any():
        idx = np.flatnonzero(late_sys)
        rows, firsts = np.unique(msg_row[idx], return_index=True)
        flag(rows, "MMCR011", lambda k, r: f"/messages/{pos[idx[firsts[k]]]}/role",
             "a system message may only be the first message")
        role_bad[rows] = True
    has_sys = np.zeros(n, dtype=np.int64)
    has_sys[msg_row[is_sys & (pos == 0)]] = 1
    eff = pos - has_sys[msg_row]
    ns = ~is_sys
    wrong = ns & ((is_user & (eff % 2 == 1)) | (is_asst & (eff % 2 == 0))) & ~role_bad[msg_row]
    if wrong.any():
        idx = np.flatnonzero(wrong)
        rows, firsts = np.unique(msg_row[idx], return_index=True)
        for k, r in enumerate(rows.tolist()):
            m = idx[firsts[k]]
            if eff[m] == 0:
                flag([r], "MMCR013", f"/messages/{pos[m]}/role", "the first message is not 'user'")
            else:
                flag([r], "MMCR012", f"/messages/{pos[m]}/role", "two messages of the same role in a row")
        role_bad[rows] = True
    n_ns = np.bincount(msg_row[ns], minlength=n)
    no_user = (n_ns == 0) & ~role_bad & (n_msgs > 0)
    flag(np.flatnonzero(no_user), "MMCR013", "/messages", "the dialogue has no user message")
    role_bad |= no_user
    odd = (n_ns % 2 == 1) & ~role_bad
    flag(np.flatnonzero(odd), "MMCR014", lambda k, r: f"/messages/{msg_off[r + 1] - 1}/role",
         "the last message is a user question without an answer")

    n_turns = np.bincount(msg_row[is_user], minlength=n)
    img_paths = table.column("images").combine_chunks()
    n_images = np.diff(_np(img_paths.offsets))
    allowed = np.isin(n_turns, np.asarray(profile.turns))
    flag(np.flatnonzero(~allowed & (n_msgs > 0)), "MMCR015", "/messages",
         lambda k, r: f"{n_turns[r]} turn(s); allowed: {', '.join(map(str, profile.turns[:10]))}")
    bad_img = (n_images < profile.min_images) | (n_images > profile.max_images)
    flag(np.flatnonzero(bad_img), "MMCR016", "/images",
         lambda k, r: f"{n_images[r]} image(s); allowed: {profile.min_images} to {profile.max_images}")
    dtype = _np(pc.fill_null(table.column("dialogue_type").combine_chunks(), -1))
    bad_type = ((dtype == 0) != (n_images == 1)) | (dtype < 0) | (dtype > 1)
    flag(np.flatnonzero(bad_type), "MMCR017", "/dialogue_type",
         lambda k, r: f"dialogue_type {dtype[r]} disagrees with {n_images[r]} image(s)")
    stored_ni = _np(pc.fill_null(table.column("num_images").combine_chunks(), -1))
    stored_nt = _np(pc.fill_null(table.column("num_turns").combine_chunks(), -1))
    flag(np.flatnonzero(stored_ni != n_images), "MMCR044", "/num_images",
         lambda k, r: f"num_images is {stored_ni[r]} but there are {n_images[r]} images")
    flag(np.flatnonzero((stored_nt != n_turns) & (stored_ni == n_images)), "MMCR044", "/num_turns",
         lambda k, r: f"num_turns is {stored_nt[r]} but there are {n_turns[r]} turns")
    clip = table.column("clip_scores").combine_chunks()
    n_clip = np.diff(_np(clip.offsets))
    flag(np.flatnonzero((n_clip > 0) & (n_clip != n_images)), "MMCR045", "/clip_scores",
         lambda k, r: f"{n_clip[r]} clip score(s) for {n_images[r]} image(s)")

    # parts
    content = msg_vals.field("content")
    part_off = _np(content.offsets)
    part_msg = np.repeat(np.arange(len(msg_row)), np.diff(part_off))
    part_row = msg_row[part_msg]
    part_pos = np.arange(len(part_msg)) - part_off[part_msg]
    parts = content.values
    ptype = parts.field("type")
    is_img = _bool(pc.equal(ptype, "image"))
    is_txt = _bool(pc.equal(ptype, "text"))
    pindex = _np(pc.fill_null(parts.field("index"), -1)).astype(np.int64)

    def part_ptr(idx):
        return lambda k, r: f"/messages/{pos[part_msg[idx[k]]]}/content/{part_pos[idx[k]]}"

    bad_part = ~(is_img | is_txt) | (is_img & (pindex < 0))
    if bad_part.any():
        idx = np.flatnonzero(bad_part)
        rows, firsts = np.unique(part_row[idx], return_index=True)
        flag(rows, "MMCR001", lambda k, r: part_ptr(idx[firsts])(k, r), "a content part must be text or image with an index")
    img_in_non_user = is_img & ~is_user[part_msg]
    if img_in_non_user.any():
        idx = np.flatnonzero(img_in_non_user)
        rows, firsts = np.unique(part_row[idx], return_index=True)
        flag(rows, "MMCR018", lambda k, r: part_ptr(idx[firsts])(k, r), "an image outside a user message")
    n_refs = np.bincount(part_row[is_img], minlength=n)
    mismatch = n_refs != n_images
    flag(np.flatnonzero(mismatch), "MMCR020", lambda k, r: "/images" if n_refs[r] else "/messages",
         lambda k, r: f"{n_refs[r]} image part(s) but {n_images[r]} image(s)")
    img_idx = np.flatnonzero(is_img & ~mismatch[part_row])
    if len(img_idx):
        rows_i = part_row[img_idx]
        vals = pindex[img_idx]
        starts = np.searchsorted(rows_i, rows_i, side="left")
        rank = np.arange(len(img_idx)) - starts
        oob = vals >= n_images[rows_i]
        r021 = set()
        if oob.any():
            sel = img_idx[oob]
            rows, firsts = np.unique(part_row[sel], return_index=True)
            flag(rows, "MMCR021", lambda k, r: part_ptr(sel[firsts])(k, r) + "/index",
                 lambda k, r: f"image index {pindex[sel[firsts[k]]]} but only {n_images[r]} image(s)")
            r021 = set(rows.tolist())
        key = rows_i.astype(np.int64) * (int(vals.max()) + 1) + vals
        _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        dup = (cnt[inv] > 1) & ~np.isin(rows_i, list(r021))
        r022 = set()
        if dup.any():
            rows = np.unique(rows_i[dup])
            flag(rows, "MMCR022", "/messages", "an image is referenced more than once")
            r022 = set(rows.tolist())
        order = (vals != rank) & ~np.isin(rows_i, list(r021 | r022))
        if order.any():
            sel = img_idx[order]
            rows, firsts = np.unique(part_row[sel], return_index=True)
            flag(rows, "MMCR023", lambda k, r: part_ptr(sel[firsts])(k, r) + "/index",
                 "images are not listed in order of first reference")
    texts = parts.field("text")
    blank = is_txt & _bool(pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(texts)), 0), True))
    if blank.any():
        idx = np.flatnonzero(blank)
        rows, firsts = np.unique(part_row[idx], return_index=True)
        flag(rows, "MMCR030", lambda k, r: part_ptr(idx[firsts])(k, r) + "/text", "empty text part")
    txt_per_msg = np.bincount(part_msg[is_txt], minlength=len(msg_row))
    asst_no_text = is_asst & (txt_per_msg == 0)
    if asst_no_text.any():
        idx = np.flatnonzero(asst_no_text)
        rows, firsts = np.unique(msg_row[idx], return_index=True)
        flag(rows, "MMCR030", lambda k, r: f"/messages/{pos[idx[firsts[k]]]}", "an assistant message without text")
    literal = np.zeros(len(part_msg), dtype=bool)
    for token in PLACEHOLDERS:
        literal |= _bool(pc.match_substring(texts, token))
    if literal.any():
        idx = np.flatnonzero(literal)
        rows, firsts = np.unique(part_row[idx], return_index=True)
        flag(rows, "MMCR032", lambda k, r: part_ptr(idx[firsts])(k, r) + "/text",
             "the text contains a placeholder token as literal text")

    # labels
    n_dom, n_sub = len(taxonomy.domain_names), len(taxonomy.subtopic_names)
    dom = _np(pc.fill_null(table.column("domain").combine_chunks(), -1)).astype(np.int64)
    sub = _np(pc.fill_null(table.column("subtopic").combine_chunks(), -1)).astype(np.int64)
    bad_dom = (dom < -1) | (dom >= n_dom)
    flag(np.flatnonzero(bad_dom), "MMCR040", "/domain", lambda k, r: f"domain id {dom[r]} is outside the taxonomy")
    bad_sub = ((sub < -1) | (sub >= n_sub)) & ~bad_dom
    flag(np.flatnonzero(bad_sub), "MMCR041", "/subtopic", lambda k, r: f"sub-topic id {sub[r]} is outside the taxonomy")
    owner = np.asarray(taxonomy.subtopic_domain_ids() + [-2], dtype=np.int64)
    both = (dom >= 0) & (sub >= 0) & ~bad_dom & ~bad_sub
    wrong_dom = both & (owner[np.clip(sub, 0, n_sub)] != dom)
    flag(np.flatnonzero(wrong_dom), "MMCR042", "/subtopic",
         lambda k, r: f"sub-topic {taxonomy.subtopic_names[sub[r]]!r} belongs to "
                      f"{taxonomy.domain_names[owner[sub[r]]]!r}, not {taxonomy.domain_names[dom[r]]!r}")
    if profile.require_labels:
        flag(np.flatnonzero((dom == -1) | (sub == -1)), "MMCR043", lambda k, r: "/domain" if dom[r] == -1 else "/subtopic",
             "missing domain or sub-topic")

    issues.sort(key=lambda t: (t[0], t[1]))
    return [make_issue(code, msg, record_id=id_list[r], pointer=ptr, source=f"{shard}:{r + row_offset}")
            for r, code, ptr, msg in issues]


def check_images_column(table: pa.Table, *, shard: str, limits=None, row_offset: int = 0) -> list[Issue]:
    """Header checks of every embedded image (format, size bounds, end marker)."""
    from ..images import ImageLimits, ImageProblem, probe_image

    limits = limits or ImageLimits()
    out = []
    ids = table.column("id").to_pylist()
    for r, imgs in enumerate(table.column("images").to_pylist()):
        for k, img in enumerate(imgs or []):
            data = (img or {}).get("bytes")
            try:
                if not data:
                    raise ImageProblem("MMCR052", "image has no bytes")
                probe_image(data, limits)
            except ImageProblem as exc:
                out.append(make_issue(exc.code, str(exc), record_id=ids[r], pointer=f"/images/{k}",
                                      source=f"{shard}:{r + row_offset}"))
    return out


def check_shard_schema(path: Path, expected: pa.Schema) -> list[Issue]:
    from ..features import SCHEMA_VERSION, read_mmcr_metadata

    try:
        schema = pq.read_schema(path)
    except Exception as exc:
        return [make_issue("MMCR063", f"cannot read parquet footer: {exc}", source=str(path))]
    issues = []
    if not schema.remove_metadata().equals(expected.remove_metadata()):
        diff = [f.name for f in expected if f.name not in schema.names or schema.field(f.name).type != f.type]
        return [make_issue("MMCR061", f"columns differ from the MMCR features: {diff or schema.names}",
                           source=str(path))]
    meta = read_mmcr_metadata(schema)
    if meta is None or meta.get("schema_version") != SCHEMA_VERSION:
        found = None if meta is None else meta.get("schema_version")
        issues.append(make_issue("MMCR062", f"schema version {found!r}, this package writes {SCHEMA_VERSION!r}",
                                 source=str(path)))
    return issues


def iter_shard_tables(path: Path, *, batch_rows: int = 50_000) -> Iterable[tuple[pa.Table, int]]:
    pf = pq.ParquetFile(path)
    offset = 0
    groups: list[int] = []
    rows = 0
    for g in range(pf.num_row_groups):
        groups.append(g)
        rows += pf.metadata.row_group(g).num_rows
        if rows >= batch_rows or g == pf.num_row_groups - 1:
            table = pf.read_row_groups(groups, columns=_COLUMNS)
            yield table, offset
            offset += table.num_rows
            groups, rows = [], 0


def duplicate_id_issues(ids_by_source: list[tuple[str, int, str]]) -> list[Issue]:
    """``(id, row, shard)`` triples in folder order -> MMCR003 for every repeated id."""
    seen: dict[str, str] = {}
    out = []
    for rid, row, shard in ids_by_source:
        if rid is None:
            continue
        if rid in seen:
            out.append(make_issue("MMCR003", f"id {rid!r} was already used at {seen[rid]}", record_id=rid,
                                  pointer="/id", source=f"{shard}:{row}"))
        else:
            seen[rid] = f"{shard}:{row}"
    return out
