"""mmcr-datasets: the MMCR dataset family (MMCR-310k, MMCR-Bench) on the Hugging Face stack.

Importing the package is light: it imports neither torch, transformers nor openai, and loads
``datasets`` only when a function that needs it is called.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "SCHEMA_VERSION": ("features", "SCHEMA_VERSION"),
    "mmcr_features": ("features", "mmcr_features"),
    "features_310k": ("features", "features_310k"),
    "features_bench": ("features", "features_bench"),
    "Dialogue": ("records", "Dialogue"),
    "Message": ("records", "Message"),
    "TextPart": ("records", "TextPart"),
    "ImagePart": ("records", "ImagePart"),
    "ImageRef": ("records", "ImageRef"),
    "Taxonomy": ("taxonomy", "Taxonomy"),
    "load_taxonomy": ("taxonomy", "load_taxonomy"),
    "MMCRError": ("errors", "MMCRError"),
    "InvalidRecordError": ("errors", "InvalidRecordError"),
    "read_raw": ("readers", "read_raw"),
    "build_hub_folder": ("export", "build_hub_folder"),
    "export_rows": ("export", "export_rows"),
    "validate_path": ("validation", "validate_path"),
    "validate_records": ("validation", "validate_records"),
    "validate_hub_folder": ("validation", "validate_hub_folder"),
    "ValidationReport": ("validation", "ValidationReport"),
    "Issue": ("validation", "Issue"),
    "load": ("hub", "load"),
    "push_to_hub": ("hub", "push_to_hub"),
    "MMCR310k": ("builders", "MMCR310k"),
    "MMCRBench": ("builders", "MMCRBench"),
    "write_raw": ("writers", "write_raw"),
    "format_dialogue": ("formatters", "format_dialogue"),
    "list_formatters": ("formatters", "list_formatters"),
    "get_formatter": ("formatters", "get_formatter"),
    "register_formatter": ("formatters", "register_formatter"),
    "tokenize_dialogue": ("labels", "tokenize_dialogue"),
    "compute_stats": ("stats", "compute_stats"),
    "DatasetStats": ("stats", "DatasetStats"),
    "stratified_subset": ("sampling", "stratified_subset"),
    "nested_subsets": ("sampling", "nested_subsets"),
}

__all__ = sorted(_LAZY) + ["__version__"]


from ._lazy import lazy_exports  # noqa: E402

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
