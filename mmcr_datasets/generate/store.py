"""The persistent state of a generation run: one SQLite file (WAL mode).

* ``llm_cache``: every LLM reply, keyed by a hash of everything that determines it (prompt
  version and text, model and sampling parameters, image hashes, context). A reply is committed
  as soon as it arrives, so a run killed later never pays for it again. The cache can be shared
  between runs (``--cache FILE``).
* ``outcomes``: the result of each task of a run (an accepted record or a quarantine entry),
  keyed by run fingerprint and dialogue id, with the task's position in the run's order. The
  output files are written from this table at the end, in task order, so a restarted run
  produces each dialogue exactly once.
* ``clip_cache`` and ``domain_cache``: model scores that are slow to recompute.

All access happens from one thread (the pipeline's event loop thread); every write commits.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Iterator, Optional, Union

SCHEMA = """
CREATE TABLE IF NOT EXISTS llm_cache (
    key TEXT PRIMARY KEY, content TEXT, finish_reason TEXT,
    prompt_tokens INTEGER, completion_tokens INTEGER, attempts INTEGER, created REAL);
CREATE TABLE IF NOT EXISTS outcomes (
    run TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL,
    payload TEXT NOT NULL, provenance TEXT NOT NULL, created REAL,
    PRIMARY KEY (run, id));
CREATE INDEX IF NOT EXISTS outcomes_seq ON outcomes (run, seq);
CREATE TABLE IF NOT EXISTS clip_cache (key TEXT PRIMARY KEY, scores TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS domain_cache (
    key TEXT PRIMARY KEY, domain TEXT, subtopic TEXT, score REAL, method TEXT);
CREATE TABLE IF NOT EXISTS runs (run TEXT PRIMARY KEY, config TEXT, created REAL);
"""


def digest(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


class Store:
    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- LLM replies -------------------------------------------------------------------------
    def get_reply(self, key: str) -> Optional[dict]:
        row = self.db.execute("SELECT content, finish_reason, prompt_tokens, completion_tokens, attempts "
                              "FROM llm_cache WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return {"content": row[0], "finish_reason": row[1], "prompt_tokens": row[2],
                "completion_tokens": row[3], "attempts": row[4]}

    def put_reply(self, key: str, content, finish_reason, prompt_tokens: int, completion_tokens: int,
                  attempts: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO llm_cache VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (key, content, finish_reason, prompt_tokens, completion_tokens, attempts, time.time()))

    def put_outcomes(self, rows: list) -> None:
        """Store finished tasks in one commit. Each row: ``(reply, run, id, seq, status, payload,
        provenance)`` where ``reply`` holds ``put_reply``'s arguments for a fresh reply, or None."""
        if not rows:
            return
        self.db.execute("BEGIN")
        try:
            for reply, run, rid, seq, status, payload, provenance in rows:
                if reply is not None:
                    self.put_reply(*reply)
                self.put_outcome(run, rid, seq, status, payload, provenance)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- outcomes ----------------------------------------------------------------------------
    def register_run(self, run: str, config: dict) -> None:
        self.db.execute("INSERT OR IGNORE INTO runs VALUES (?, ?, ?)", (run, json.dumps(config, sort_keys=True), time.time()))

    def done_ids(self, run: str) -> dict:
        """id -> status of every task of ``run`` already finished."""
        return dict(self.db.execute("SELECT id, status FROM outcomes WHERE run = ?", (run,)).fetchall())

    def put_outcome(self, run: str, rid: str, seq: int, status: str, payload: dict, provenance: dict) -> None:
        self.db.execute("INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (run, rid, seq, status, json.dumps(payload, ensure_ascii=False),
                         json.dumps(provenance, ensure_ascii=False), time.time()))

    def iter_outcomes(self, run: str) -> Iterator[tuple[str, str, dict, dict]]:
        cur = self.db.execute("SELECT id, status, payload, provenance FROM outcomes WHERE run = ? ORDER BY seq",
                              (run,))
        for rid, status, payload, prov in cur:
            yield rid, status, json.loads(payload), json.loads(prov)

    # -- model scores ------------------------------------------------------------------------
    def get_clip(self, key: str) -> Optional[list]:
        row = self.db.execute("SELECT scores FROM clip_cache WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_clip(self, key: str, scores: list) -> None:
        self.db.execute("INSERT OR REPLACE INTO clip_cache VALUES (?, ?)", (key, json.dumps(scores)))

    def get_domain(self, key: str) -> Optional[tuple]:
        return self.db.execute("SELECT domain, subtopic, score, method FROM domain_cache WHERE key = ?",
                               (key,)).fetchone()

    def put_domain(self, key: str, domain: str, subtopic: str, score: float, method: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO domain_cache VALUES (?, ?, ?, ?, ?)",
                        (key, domain, subtopic, score, method))
