"""`chatbot serve`: a bot behind a versioned JSON API with a web chat page.

Needs the `serve` extra (`pip install -e '.[serve]'`): Starlette, uvicorn and
prometheus-client. `create_app(bot)` is the ASGI app; docs/http.md documents it.
"""

from __future__ import annotations

from chatbot.serve.app import ServeOptions, create_app, create_app_from_env

__all__ = ["ServeOptions", "create_app", "create_app_from_env"]
