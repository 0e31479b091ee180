"""The shared reading of server wait hints (judge and generation clients)."""

import email.utils
import time

from mmcr_datasets.retry import retry_after_seconds


def test_retry_after_forms():
    assert retry_after_seconds(None) is None
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "oops", "retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after_seconds({"retry-after": future}) <= 31
