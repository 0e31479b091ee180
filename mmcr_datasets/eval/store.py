"""The persistent SQLite cache of model answers and judgements.

Each row is committed as soon as its call finishes, so a run that is killed loses only the calls
in flight; started again, it finds every finished answer and judgement here and makes only the
missing calls. (``commit_interval`` > 0 groups commits to save about 0.3 ms of CPU per row, at the
price of repeating the calls of the last interval after a kill.)

* ``judgements``: keyed by a hash of every judge input (prompt version and text, judge model,
  parameters, the rendered messages including image bytes). Only final outcomes are stored:
  a parsed judgement, or one whose reply could not be parsed. A call that failed in transport
  (retries exhausted) is not stored, so the next run tries it again.
* ``answers``: the evaluated model's answers, keyed by a hash of the model's identity, its
  generation settings and the exact request (history and image bytes).

No API key, header or URL credential is ever written here.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Optional

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judgements (
    key TEXT PRIMARY KEY,
    dialogue_id TEXT,
    turn INTEGER,
    status TEXT NOT NULL,
    scores TEXT,
    reason TEXT,
    raw TEXT,
    prompt_version TEXT,
    judge_model TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    attempts INTEGER,
    created REAL
);
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    dialogue_id TEXT,
    turn INTEGER,
    answer TEXT NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    created REAL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
"""


class EvalStore:
    """A thread-safe handle on the cache file (WAL journal, grouped commits)."""

    def __init__(self, path, *, commit_interval: float = 0.0):
        self.path = Path(path)
        self.commit_interval = commit_interval
        self._last_commit = time.monotonic()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._conn.commit()

    # -- judgements ------------------------------------------------------------------------
    def get_judgement(self, key: str) -> Optional[dict]:
        with self._lock:
            row = self._conn.execute(
                "SELECT status, scores, reason, raw, prompt_tokens, completion_tokens, attempts "
                "FROM judgements WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        status, scores, reason, raw, pt, ct, attempts = row
        return {"status": status, "scores": json.loads(scores) if scores else None, "reason": reason,
                "raw": raw, "prompt_tokens": pt or 0, "completion_tokens": ct or 0, "attempts": attempts or 0}

    def get_judgements(self, keys) -> dict:
        """``{key: judgement}`` for the keys that are cached (one query per 500 keys)."""
        keys = list(dict.fromkeys(keys))
        found = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                rows = self._conn.execute(
                    "SELECT key, status, scores, reason, raw, prompt_tokens, completion_tokens, attempts FROM judgements "
                    f"WHERE key IN ({','.join('?' * len(chunk))})", chunk).fetchall()
                for key, status, scores, reason, raw, pt, ct, attempts in rows:
                    found[key] = {"status": status, "scores": json.loads(scores) if scores else None, "reason": reason,
                                  "raw": raw, "prompt_tokens": pt or 0, "completion_tokens": ct or 0,
                                  "attempts": attempts or 0}
        return found

    def put_judgement(self, key: str, *, dialogue_id: str, turn: int, status: str, scores: Optional[dict],
                      reason: Optional[str], raw: Optional[str], prompt_version: str, judge_model: str,
                      prompt_tokens: int, completion_tokens: int, attempts: int) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO judgements VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (key, dialogue_id, turn, status, json.dumps(scores) if scores is not None else None, reason, raw,
                 prompt_version, judge_model, prompt_tokens, completion_tokens, attempts, time.time()))
            self._maybe_commit()

    def count_judgements(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM judgements").fetchone()[0]

    # -- answers -----------------------------------------------------------------------------
    def get_answer(self, key: str) -> Optional[dict]:
        with self._lock:
            row = self._conn.execute("SELECT answer, prompt_tokens, completion_tokens FROM answers WHERE key = ?",
                                     (key,)).fetchone()
        if row is None:
            return None
        return {"answer": row[0], "prompt_tokens": row[1] or 0, "completion_tokens": row[2] or 0}

    def put_answer(self, key: str, *, dialogue_id: str, turn: int, answer: str, prompt_tokens: int = 0,
                   completion_tokens: int = 0) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO answers VALUES (?,?,?,?,?,?,?)",
                               (key, dialogue_id, turn, answer, prompt_tokens, completion_tokens, time.time()))
            self._maybe_commit()

    def count_answers(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    # -- meta ----------------------------------------------------------------------------------
    def get_meta(self, name: str) -> Optional[str]:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_meta(self, name: str, value: str) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))
            self._conn.commit()

    def _maybe_commit(self) -> None:
        now = time.monotonic()
        if now - self._last_commit >= self.commit_interval:
            self._conn.commit()
            self._last_commit = now

    def flush(self) -> None:
        """Commit every row written so far."""
        with self._lock:
            self._conn.commit()
            self._last_commit = time.monotonic()

    def close(self) -> None:
        with self._lock:
            self._conn.commit()
            self._conn.close()

    def __enter__(self) -> "EvalStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
