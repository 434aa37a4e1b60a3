"""Development bootstrap: one test project, its key kept in the data directory, a dashboard account
that owns it, and a first curl."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from mpesa_bridge.config import Settings
from mpesa_bridge.core.errors import AuthenticationFailed
from mpesa_bridge.core.people.entity import Role
from mpesa_bridge.core.people.service import SignInFailed
from mpesa_bridge.core.projects import DarajaEnvironment, Mode
from mpesa_bridge.runtime import Runtime, simulator_daraja

DEV_FILE = "dev-project.json"
DEV_EMAIL = "dev@example.com"


async def ensure_dev_project(runtime: Runtime) -> tuple[str, str]:
    """Return (project id, test secret key), creating the project the first time."""
    path: Path = runtime.settings.data_dir / DEV_FILE
    saved = _load(path)
    if saved is not None:
        try:
            await runtime.projects.authenticate(saved["test_secret_key"])
        except (AuthenticationFailed, KeyError):
            pass  # the database was reset: make a new project below
        else:
            await _give_initiator(runtime, saved["project_id"])
            return saved["project_id"], saved["test_secret_key"]
    project, keys = await runtime.projects.create_project(
        "Development", {Mode.TEST: simulator_daraja(runtime.settings)}
    )
    secret = keys[Mode.TEST].secret
    _save(path, {"project_id": project.id, "test_secret_key": secret})
    return project.id, secret


async def _give_initiator(runtime: Runtime, project_id: str) -> None:
    """A development project made before initiators existed (migration 0017) gets the simulator's,
    so payouts and the other initiator APIs work in it as in a new one."""
    config = (await runtime.projects.daraja_configs(project_id)).get(Mode.TEST)
    defaults = simulator_daraja(runtime.settings)
    if (
        config is not None
        and config.environment == DarajaEnvironment.SIMULATOR
        and config.short_code == defaults.short_code  # the settings it was made with, unchanged
        and not config.initiator_name
    ):
        await runtime.projects.set_daraja(project_id, Mode.TEST, defaults)


async def ensure_dev_account(runtime: Runtime, project_id: str) -> tuple[str, str]:
    """Return (email, password) of the development dashboard account — a platform admin who owns
    the development project — creating it (or a new password) when the saved one does not work."""
    path: Path = runtime.settings.data_dir / DEV_FILE
    saved = _load(path) or {}
    email, password = saved.get("dashboard_email", DEV_EMAIL), saved.get("dashboard_password", "")
    try:
        signed = await runtime.people.sign_in(email, password)
        await runtime.people.sign_out(signed.token)
    except SignInFailed:
        password = "dev-" + secrets.token_urlsafe(12)
        user = await runtime.people.ensure_dev_user(email, password)
        await runtime.people.add_member(project_id, user.id, Role.OWNER)
        _save(path, {**saved, "dashboard_email": email, "dashboard_password": password})
    return email, password


def _load(path: Path) -> dict[str, str] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _save(path: Path, data: dict[str, str]) -> None:
    """Write the file private (0600) from its first byte: it holds a secret key."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data, indent=2) + "\n")
    path.chmod(0o600)  # an older file may have been created with wider permissions


def daraja_description(settings: Settings) -> str:
    """Which Daraja the dev project's test mode talks to, in the words the banner uses."""
    if settings.simulator_url:
        return f"standalone Daraja simulator at {settings.simulator_url.rstrip('/')}"
    if settings.mount_simulator:
        return "built-in Daraja simulator"
    return "no Daraja simulator: configure Daraja sandbox credentials"


def banner(base_url: str, project_id: str, secret: str, daraja: str, account: tuple[str, str]) -> str:
    return f"""
mpesa-bridge is starting on {base_url}  (sandbox mode, {daraja})

  project          {project_id}
  test secret key  {secret}
  API docs         {base_url}/docs
  demo page        {base_url}/demo#key={secret}
  dashboard        {base_url}/dashboard/  (sign in as {account[0]}, password {account[1]})

Make a payment (the simulated customer pays within a few seconds):

  curl -s {base_url}/v1/payments \\
    -H "Authorization: Bearer {secret}" \\
    -H "Content-Type: application/json" \\
    -d '{{"phone": "0708374149", "amount": 10, "account_reference": "INV001", "description": "First test"}}'

Then read it (use the id from the answer):

  curl -s {base_url}/v1/payments/<id> -H "Authorization: Bearer {secret}"

Magic numbers choose the outcome: 0700001032 cancelled, 0700000001 insufficient funds,
0700001037 timeout, 0700002001 wrong PIN, 0700000900 no callback (reconciled by query).
See README.md for the full table.
"""
