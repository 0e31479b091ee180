"""Helpers for tests and benchmarks (tiny offline models, reference-template rendering).

Nothing in the library proper imports this package; its modules import heavy optional
dependencies (jinja2, transformers, tokenizers) lazily, inside functions.
"""
