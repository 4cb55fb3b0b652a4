"""The Redis ACL lines of the target helper (``provisioning/remote/redis_acl.py``) and the refusal of a
Redis without ACL users, before anything is written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from provisioning.remote import redis_acl, redis_config


def test_a_site_user_gets_its_keys_and_the_apps_commands_only() -> None:
    line = redis_acl.site_user_line(
        "impots-flask-impots-withmysql", "s3cret", "impots:flask-impots-withmysql:"
    )
    words = line.split()
    assert words[:4] == ["user", "impots-flask-impots-withmysql", "reset", "on"]
    assert words[4] == "#" + hashlib.sha256(b"s3cret").hexdigest() and "s3cret" not in line
    assert [w for w in words if w.startswith("~")] == ["~impots:flask-impots-withmysql:*"]
    granted = {w[1:] for w in words if w.startswith("+")}
    assert granted == set(redis_acl.SITE_COMMANDS)
    assert not granted & {
        "eval",
        "flushall",
        "flushdb",
        "keys",
        "scan",
        "config",
        "acl",
        "select",
        "monitor",
        "@all",
    }
    assert not any(w.startswith(("&", "allkeys", "allchannels", "allcommands", "nopass")) for w in words)


def test_the_default_user_keeps_every_right_with_a_hashed_password() -> None:
    assert redis_acl.default_user_line("admin", (7, 0, 15)) == (
        f"user default on resetpass #{hashlib.sha256(b'admin').hexdigest()} ~* allchannels +@all"
    )
    # Redis 6.0 and 6.1 know no channel rules (every user has every channel there).
    assert "allchannels" not in redis_acl.default_user_line("admin", (6, 0, 16))


@pytest.mark.parametrize(
    ("user", "prefix"),
    [
        ("impots a", "impots:a:"),  # a space would split the rule
        ("default", "impots:a:"),  # the admin's user is never a site's
        ("", "impots:a:"),
        ("impots-a", "impots:*:"),  # a glob would open other sites' keys
        ("impots-a", "impots:a"),  # without the final ":" "impots:a*" matches "impots:ab:..."
        ("impots-a", "impots:[ab]:"),
        ("impots-a", ""),
    ],
)
def test_unsafe_names_and_prefixes_are_refused(user: str, prefix: str) -> None:
    with pytest.raises(redis_acl.AclError):
        redis_acl.site_user_line(user, "pw", prefix)


def test_an_empty_password_is_refused() -> None:
    with pytest.raises(redis_acl.AclError, match="empty"):
        redis_acl.site_user_line("impots-a", "", "impots:a:")


def test_the_version_is_read_from_redis_server() -> None:
    assert redis_acl.parse_version("Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0") == (7, 0, 15)
    assert redis_acl.parse_version("garbage") is None
    installed = redis_acl.server_version()
    assert installed is not None and installed >= redis_acl.ACL_VERSION  # this machine's Debian package


def test_a_redis_without_acl_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_config, "server_version", lambda: (5, 0, 3))
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"redis_password": "x", "redis_password@a": "y"}))
    main, ours = tmp_path / "redis.conf", tmp_path / "ours" / "impots.conf"
    main.write_text("port 6399\n")
    users = [{"user": "impots-a", "secret": "redis_password@a", "key_prefix": "impots:a:"}]
    with pytest.raises(redis_config.RedisConfigError, match=r"Redis 5\.0\.3 .* no ACL users .* 6\.0"):
        redis_config.apply(
            str(ours), str(secrets), "root", [str(main)], 6399, 64, "volatile-lru", ["false"], users
        )
    assert not ours.exists() and main.read_text() == "port 6399\n"
    state = redis_config.status(str(ours), str(secrets), [str(main)], 6399, 64, "volatile-lru", users)
    assert "no ACL users" in state["refused"], "the operation stops the run at plan time on this answer"
