"""OneMap's FastAPI service: app factory, settings, DB pool, routers, CLI and client."""

__version__ = "0.1.0"
