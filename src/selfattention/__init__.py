"""selfattention: the Transformer's self-attention made real.

A library, a command-line tool and a web page that train, run and show an
English-to-French Transformer translator. See ``docs/DESIGN.md`` for the layout.
"""

from typing import TYPE_CHECKING

from selfattention import lazy

if TYPE_CHECKING:
    from selfattention.attention import MultiHeadAttention, scaled_dot_product_attention
    from selfattention.config import ModelConfig
    from selfattention.model import Transformer, build_model
    from selfattention.model_io import ModelFileError, load_model, save_model

__getattr__ = lazy.exports(
    __name__,
    {
        "MultiHeadAttention": "selfattention.attention",
        "scaled_dot_product_attention": "selfattention.attention",
        "ModelConfig": "selfattention.config",
        "Transformer": "selfattention.model",
        "build_model": "selfattention.model",
        "ModelFileError": "selfattention.model_io",
        "load_model": "selfattention.model_io",
        "save_model": "selfattention.model_io",
    },
)

__version__ = "0.1.0"

__all__ = [
    "ModelConfig",
    "ModelFileError",
    "MultiHeadAttention",
    "Transformer",
    "__version__",
    "build_model",
    "load_model",
    "save_model",
    "scaled_dot_product_attention",
]
