"""How the app takes its routers' routes: as they are, built once per process."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI


def add_routes(app: FastAPI, *routers: APIRouter) -> None:
    """The routers' routes, in order, as they are.

    `app.include_router` keeps a router whole and has FastAPI build each of its routes again for
    every app, lazily, on the app's first request: ~45-60 ms of CPU per app, a third of an
    in-process integration test (each builds an app). A router's own routes are complete already —
    full paths, tags, responses, router-level dependencies such as the admin check — and nothing in
    them belongs to one app, so every app can share them. (`app.dependency_overrides` does not reach
    them; nothing here uses it.)"""
    for router in routers:
        if router.on_startup or router.on_shutdown:
            raise ValueError("a router with event handlers needs app.include_router")
        app.router.routes.extend(router.routes)
