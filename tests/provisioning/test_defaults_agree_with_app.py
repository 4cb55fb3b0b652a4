"""The deploy's defaults (provisioning/settings.py) and the app's (app/impots/config.py) are written twice on
purpose: the controller never imports the app it ships. These tests keep the two copies in agreement."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from passlib.hash import pbkdf2_sha256

from provisioning import settings

APP_DIR = Path(__file__).resolve().parents[2] / "app"


def app_config():
    sys.path.insert(0, str(APP_DIR))
    try:
        spec = importlib.util.spec_from_file_location("impots_config_copy", APP_DIR / "impots" / "config.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(APP_DIR))


def test_admin_mail_defaults_agree() -> None:
    assert settings.DEFAULT_ADMIN_MAIL == app_config().DEFAULTS["admin_mail"]


def test_both_default_admin_hashes_verify_admin() -> None:
    assert pbkdf2_sha256.verify("admin", settings.DEFAULT_ADMIN_HASH)
    assert pbkdf2_sha256.verify("admin", app_config().ADMIN_PASSWORD_HASH)
