"""The web studio: one HTML shell (a Jinja2 template) and static files (the studio's JavaScript, its style sheet
and vendored libraries, see ``static/vendor/README.md``), served by :mod:`metalearn.api.routers.studio`.

Everything the page shows comes from the public ``/v1`` API through ``fetch`` with the same API key header as
any client; nothing here reads the knowledge base.
"""

from __future__ import annotations

from pathlib import Path

STUDIO_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = STUDIO_DIR / "templates"
STATIC_DIR = STUDIO_DIR / "static"
