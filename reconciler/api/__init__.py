"""The daemon's HTTP API: workflows, cron workflows, sync status, push webhooks, health.

FastAPI + uvicorn, served from a background thread of `reconciler up` (see server.py) on the API's
own store connection. This package's __init__ imports nothing heavy: `reconciler up` reads its
settings (settings.py) before deciding to load the web stack. docs/API.md is the user's guide.

    from reconciler.api.app import ApiState, create_app
    from reconciler.api.server import ApiServer
"""
