"""Models in other formats: Hugging Face Marian (opus-mt) in and out, CTranslate2 out."""

from selfattention.interop.ct2 import export_ct2
from selfattention.interop.marian import export_marian, import_marian

__all__ = ["export_ct2", "export_marian", "import_marian"]
