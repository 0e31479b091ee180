"""Exports: OpenAI chat messages (base64 image_url parts) and the VLMEvalKit multi-turn TSV."""

from __future__ import annotations

import ast
import base64
import json
from pathlib import Path

import pytest

from fmt_helpers import system
from mmcr_datasets.errors import MMCRError
from mmcr_datasets.exports import (
    EXPORTERS,
    read_openai_jsonl,
    read_vlmevalkit_tsv,
    to_openai_messages,
    write_openai_jsonl,
    write_vlmevalkit_tsv,
)
from mmcr_datasets.exports.images import sniff_mime


def _canonical(row):
    """What a format can carry: messages, and each image's bytes."""
    blobs = [img["bytes"] if img.get("bytes") else Path(img["path"]).read_bytes() for img in row["images"]]
    return row["messages"], blobs


def test_openai_round_trip(rows, tmp_path):
    path = tmp_path / "chat.jsonl"
    assert write_openai_jsonl(rows, path, include_metadata=True) == len(rows)
    back = list(read_openai_jsonl(path))
    assert len(back) == len(rows)
    for a, b in zip(rows, back):
        assert _canonical(a) == _canonical(b)
        assert b["id"] == a["id"] and b["domain"] == a["domain"]


def test_openai_layout(rows, edges):
    row = edges["several_images_one_turn"]
    msgs = to_openai_messages(row)
    first = msgs[0]["content"]
    assert [p["type"] for p in first] == ["image_url", "image_url", "text", "image_url", "text"]
    url = first[0]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == Path(row["images"][0]["path"]).read_bytes()
    assert msgs[1] == {"role": "assistant", "content": "The first is brighter; the third is a close-up."}
    sys_msgs = to_openai_messages(edges["system_prompt"])
    assert sys_msgs[0] == {"role": "system", "content": "You are a careful visual analyst."}
    # plain fine-tuning lines carry only "messages"
    line = json.loads(json.dumps({"messages": to_openai_messages(rows[0])}))
    assert set(line) == {"messages"}


def test_openai_messages_accepted_by_openai_types(rows):
    openai = pytest.importorskip("openai")
    from pydantic import TypeAdapter

    adapter = TypeAdapter(list[openai.types.chat.ChatCompletionMessageParam])
    adapter.validate_python(to_openai_messages(rows[12]))


def _vlmevalkit_build_prompt(line: dict, image_paths: list[str]) -> list[dict]:
    """VLMEvalKit ImageMTDataset.build_prompt (open-compass/VLMEvalKit vlmeval/dataset/image_mt.py),
    re-implemented: questions/answers via toliststr, each question split on <ImageHere>."""
    def toliststr(s):
        if isinstance(s, str) and s[0] == "[" and s[-1] == "]":
            return [str(x) for x in ast.literal_eval(s)]
        return [s]

    questions, answers = toliststr(line["question"]), toliststr(line["answer"])
    dlgs, pics = [], 0
    for q, a in zip(questions, answers):
        content = []
        if "<ImageHere>" in q:
            n = q.count("<ImageHere>")
            ims = image_paths[pics:pics + n]
            pics += n
            split = q.split("<ImageHere>")
            for i in range(n):
                if split[i] != "":
                    content.append(dict(type="text", value=split[i]))
                content.append(dict(type="image", value=ims[i]))
            if split[-1] != "":
                content.append(dict(type="text", value=split[-1]))
        else:
            content = [dict(type="text", value=q)]
        dlgs += [dict(role="user", content=content), dict(role="assistant", content=[dict(type="text", value=a)])]
    return dlgs


def test_vlmevalkit_tsv_reads_like_vlmevalkit(rows, edges, tmp_path):
    pd = pytest.importorskip("pandas")
    data = rows + [edges["several_images_one_turn"], edges["unicode"]]
    path = tmp_path / "MMCR_Bench.tsv"
    assert write_vlmevalkit_tsv(data, path) == len(data)
    df = pd.read_csv(path, sep="\t")  # what vlmeval.smp.load does for .tsv
    assert list(df["index"]) == list(range(len(data)))
    for i, row in enumerate(data):
        line = df.iloc[i]
        images = [line["image"]] if row["images"].__len__() == 1 else ast.literal_eval(line["image"])
        assert len(images) == len(row["images"])
        paths = [line["image_path"]] if len(images) == 1 else ast.literal_eval(line["image_path"])
        dlgs = _vlmevalkit_build_prompt(line, paths)
        assert len(dlgs) == len(row["messages"])
        assert sum(p["type"] == "image" for d in dlgs for p in d["content"]) == len(row["images"])
        for d, m in zip(dlgs, row["messages"]):
            assert d["role"] == m["role"]
            if m["role"] == "assistant":
                assert d["content"][0]["value"] == m["content"][0]["text"]
        assert base64.b64decode(images[0])[:3] == b"\xff\xd8\xff"
        assert paths[0].endswith(".jpg")


def test_vlmevalkit_round_trip(rows, edges, tmp_path):
    data = rows + [edges["several_images_one_turn"], edges["images_only_in_later_turns"], edges["unicode"]]
    path = tmp_path / "mt.tsv"
    write_vlmevalkit_tsv(data, path)
    back = list(read_vlmevalkit_tsv(path))
    for a, b in zip(data, back):
        assert _canonical(a) == _canonical(b)
        assert b["id"] == a["id"]


def test_vlmevalkit_system_prompt_policy(edges, tmp_path):
    with pytest.raises(MMCRError, match="system"):
        write_vlmevalkit_tsv([edges["system_prompt"]], tmp_path / "x.tsv")
    write_vlmevalkit_tsv([edges["system_prompt"]], tmp_path / "x.tsv", system="drop")
    (row,) = read_vlmevalkit_tsv(tmp_path / "x.tsv")
    assert row["messages"] == edges["system_prompt"]["messages"][1:]


def test_convert_cli_round_trip(tmp_path):
    """`mmcr convert --to openai|vlmevalkit` through the real CLI entry point, on the bundled sample."""
    cli = pytest.importorskip("mmcr_datasets.cli")
    from fmt_helpers import SAMPLE

    for target, reader in (("openai", read_openai_jsonl), ("vlmevalkit", read_vlmevalkit_tsv)):
        out = tmp_path / f"bench.{target}"
        code = cli.main(["-q", "convert", str(SAMPLE / "bench" / "test.json"), "--to", target, "--out", str(out),
                         "--image-root", str(SAMPLE / "images")])
        assert code == 0
        back = list(reader(out))
        assert len(back) == 8 and all(r["images"] for r in back)


def test_exporter_table_and_mime():
    assert set(EXPORTERS) == {"openai", "vlmevalkit"}
    assert sniff_mime(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff_mime(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"


def test_dialogue_objects_are_accepted(rows):
    from mmcr_datasets.records import Dialogue

    row = dict(rows[0], messages=[system("Be brief.")] + rows[0]["messages"])
    d = Dialogue.from_row({**row, "images": [{"bytes": Path(row["images"][0]["path"]).read_bytes(), "path": None}]})
    assert to_openai_messages(d)[0] == {"role": "system", "content": "Be brief."}
