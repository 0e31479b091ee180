"""``mmcr format PATH --template NAME [--index I]``: a dialogue as a model family renders it, learned spans marked."""

from ..formatters.cli import register  # noqa: F401
