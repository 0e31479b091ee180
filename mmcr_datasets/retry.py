"""Reading a server's wait hint, shared by every client that talks to an OpenAI-compatible API
(the evaluation judge and the generation pipeline)."""

from __future__ import annotations

import email.utils
import time
from typing import Optional


def retry_after_seconds(headers) -> Optional[float]:
    """The server's wait hint in seconds, from ``retry-after-ms`` or ``Retry-After`` (seconds or an
    HTTP date); ``None`` when there is none or it cannot be read."""
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000.0)
        except (TypeError, ValueError):
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, parsed.timestamp() - time.time())
