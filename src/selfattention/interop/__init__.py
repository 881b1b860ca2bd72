"""Models in other formats: Hugging Face Marian (opus-mt) in and out."""

from selfattention.interop.marian import export_marian, import_marian

__all__ = ["export_marian", "import_marian"]
