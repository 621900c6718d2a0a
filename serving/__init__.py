"""The serving API: recommendations, cross-sell, up-sell, the next best offer and the
customer view over HTTP.

Run it with ``shopkeeper serve`` (uvicorn); ``create_app(settings)`` builds the ASGI app.
"""

from serving.app import create_app
from serving.settings import ServingSettings

__all__ = ["ServingSettings", "create_app"]
