"""Models in other formats: Hugging Face Marian (opus-mt) in and out, CTranslate2 out."""

from typing import TYPE_CHECKING

from selfattention import lazy

if TYPE_CHECKING:
    from selfattention.interop.ct2 import export_ct2
    from selfattention.interop.marian import export_marian, import_marian

__getattr__ = lazy.exports(
    __name__,
    {
        "export_ct2": "selfattention.interop.ct2",
        "export_marian": "selfattention.interop.marian",
        "import_marian": "selfattention.interop.marian",
    },
)

__all__ = ["export_ct2", "export_marian", "import_marian"]
