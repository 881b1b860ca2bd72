"""The web page: a JSON API over the inspection tools and a static page that draws it.

Needs the ``web`` extra (``pip install 'selfattention[web]'``); start it with ``selfattention serve``.
"""

from selfattention.web.app import create_app

__all__ = ["create_app"]
