"""Our patch to mod_wsgi: no request fails while Apache reloads gracefully (issue 8 #3).

A deploy that changes the vhost, a certificate or mod_wsgi runs ``apachectl graceful``. With
``WSGISocketRotation Off`` the daemon socket keeps its path across the restart, but mod_wsgi 6.1.1 still
lost requests in flight (bench/bench_reload.py, mpm_event, 8 HTTPS clients: 11 of 5316 over 20 reloads).
Read from its source and its error log, three causes, three fixes:

1. The parent closes and unlinks each daemon socket when it clears its configuration and binds the new
   one only after re-reading it (and after the old daemons exited, up to 3 s). An old child connecting in
   between gets ENOENT, and ``wsgi_connect_daemon`` retries only ECONNREFUSED/EAGAIN: a 503 at once
   (WSGI0117). Fix: a missing socket is retried like a refused one, within ``connect-timeout``.
2. Each request carries a token made from a random number drawn per daemon group when the configuration
   is read, so per generation. An old child's request then reaches a new daemon, which rejects it: a 502
   (WSGI0034 "magic token mismatch"). Fix: the number is drawn once per group name and kept in Apache's
   process pool (which lives as long as the parent), so both generations agree; a daemon still wipes the
   numbers of the other groups, now also their kept copies.
3. A connection an old child queued on the socket while the old daemon stopped accepting was reset when
   that daemon exited: a 502 (WSGI0147 "Connection reset by peer"). Fix: the parent keeps the listener
   socket itself across restarts (as Apache keeps its own listeners), checked against its path before
   reuse, and closes and unlinks it only when Apache exits; the new daemons accept what was queued.

With the three: 0 of 6058 requests lost over 40 reloads. All are worth proposing upstream: mod_wsgi already
retries a refused connection (a daemon not listening yet), and ``WSGISocketRotation Off`` exists to let
old children reach the new daemons, which the per-generation token and the re-created socket defeat.
Only data is kept in the process pool, never a pointer into the module: Apache unloads and reloads it
on every restart.

The patch is text: each replacement names the exact source text it expects, found exactly once in the
pinned sdist (sha256), or the build stops with an error naming the version and the file. The version
gets the local label ``+impots.<digest of the fixes>`` (PEP 440): ``pip`` and our VenvState fact tell
the patched module from an unpatched one (or from an older patch: any change of a fix changes the label,
so every host rebuilds and the wheel cache key changes), and Apache's error log prints it
(``mod_wsgi/6.1.1+impots.<digest>``).

The controller downloads the pinned sdist once from PyPI (``files.pythonhosted.org``, checked against
its sha256; no ``pip download``: pip would run mod_wsgi's setup.py, which needs an Apache ``apxs`` on
the controller), patches it and keeps ``.artifacts/mod_wsgi-sdist/mod_wsgi-<patched version>.tar.gz``;
the builder host compiles that file (``provisioning.wheels``).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from provisioning.artifact import ARTIFACTS_DIR

SDIST_DIR = ARTIFACTS_DIR / "mod_wsgi-sdist"
_FILES = "https://files.pythonhosted.org/packages"

# The sdists the fixes were written against, as PyPI's simple index lists them: anything else is refused.
SDISTS = {
    "6.1.1": (
        f"{_FILES}/c6/77/a9e8ccb74cb748f3a71a01f84f524b85a8f91d9e09cb0405f01311db78e2/mod_wsgi-6.1.1.tar.gz",
        "a42d11ba45d2050ab456a474d034e938605ca76386233ef404daa8b0388ca60e",
    ),
    "5.0.2": (
        f"{_FILES}/ca/4d/275853efa4d2a4efe1614aa0df06295e71f2082cebccc4d40d0f0a551c24/mod_wsgi-5.0.2.tar.gz",
        "6fe5557c3ef25c184c2c994905fe52be1c06ae5c46235ecafe558e84789e2159",
    ),
}


class PatchError(Exception):
    """The sdist is not the one the patch was written for."""


@dataclass(frozen=True)
class Replacement:
    path: str  # inside the sdist's top folder
    old: str
    new: str


# Kept random number per daemon group (fix 2), C shared by both versions: inserted before
# wsgi_add_daemon_process. ``wipe`` zeroes the kept copy (a daemon forgets the other groups' numbers).
_KEPT_RANDOM = """\
/* impots patch: one random number per daemon group name for the life of the Apache parent (kept in the
 * process pool, which survives graceful restarts), so that the magic token of a request sent by an old
 * child still matches in the daemon of the next generation. */
static long wsgi_kept_random(server_rec *s, const char *name, int wipe)
{
    apr_pool_t *keep = s->process->pool;
    char key[512];
    long *value = NULL;

    apr_snprintf(key, sizeof(key), "mod_wsgi.kept_random.%s", name);
    apr_pool_userdata_get((void **)&value, key, keep);
    if (wipe) {
        if (value)
            *value = 0;
        return 0;
    }
    if (!value) {
        value = (long *)apr_palloc(keep, sizeof(*value));
        *value = random();
        apr_pool_userdata_set(value, apr_pstrdup(keep, key), NULL, keep);
    }
    return *value;
}

"""

_WIPE_OLD = """\
            if (entry != daemon->group)
                entry->random = 0;
"""
_WIPE_NEW = """\
            if (entry != daemon->group) {
                entry->random = 0;
                wsgi_kept_random(wsgi_server, entry->name, 1);
            }
"""


# Kept listener socket (fix 3), C shared by both versions: inserted before wsgi_cleanup_process. Only data
# is kept in the process pool, no function of ours: Apache unloads and reloads the module on every restart.
_KEPT_SOCKET = """\
/* impots patch: with WSGISocketRotation Off, the parent makes the listener socket of a path once and
 * keeps it open across restarts (in the process pool), as Apache keeps its own listeners: a connection
 * an old child queued on it is accepted by the next generation's daemon instead of being reset when the
 * old daemon exits, and the path never disappears. The configuration's cleanup closes and unlinks it
 * only when the parent exits. */
typedef struct {
    int fd;
    dev_t dev;
    ino_t ino;
} wsgi_kept_socket_t;

static int wsgi_kept_socket(WSGIProcessGroup *entry)
{
    apr_pool_t *keep = entry->server->process->pool;
    wsgi_kept_socket_t *kept = NULL;
    struct stat named;
    char key[1024];

    if (entry->socket_rotation)
        return wsgi_setup_socket(entry);
    /* The size in the key: a build with another layout never reads this one's data. */
    apr_snprintf(key, sizeof(key), "mod_wsgi.kept_socket.%d.%s", (int)sizeof(*kept), entry->socket_path);
    apr_pool_userdata_get((void **)&kept, key, keep);
    if (kept && kept->fd != -1) {
        /* Reused only while its path still names it: a build of mod_wsgi without this patch, loaded
         * in between, unlinks and re-binds the path. */
        if (stat(entry->socket_path, &named) == 0 && named.st_dev == kept->dev &&
            named.st_ino == kept->ino)
            return kept->fd;
        close(kept->fd);
        kept->fd = -1;
    }
    if (!kept) {
        kept = (wsgi_kept_socket_t *)apr_pcalloc(keep, sizeof(*kept));
        apr_pool_userdata_set(kept, apr_pstrdup(keep, key), apr_pool_cleanup_null, keep);
    }
    kept->fd = wsgi_setup_socket(entry);
    if (kept->fd != -1 && stat(entry->socket_path, &named) == 0) {
        kept->dev = named.st_dev;
        kept->ino = named.st_ino;
    }
    return kept->fd;
}

static int wsgi_keeps_socket(WSGIProcessGroup *group)
{
    return !group->socket_rotation && ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_EXITING;
}

"""
_CLEANUP = "static apr_status_t wsgi_cleanup_process(void *data)\n"


def _fixes(source: str, connect: Replacement, add_daemon: str, cleanup_test: str) -> tuple[Replacement, ...]:
    """The ENOENT retry (``connect``), the kept random number and the kept socket, in ``source``."""
    return (
        connect,
        Replacement(source, add_daemon, _KEPT_RANDOM + add_daemon),
        Replacement(
            source,
            "    entry->random = random();\n",
            "    entry->random = wsgi_kept_random(cmd->server, name, 0);\n",
        ),
        Replacement(source, _WIPE_OLD, _WIPE_NEW),
        Replacement(source, _CLEANUP, _KEPT_SOCKET + _CLEANUP),
        Replacement(
            source,
            "        entry->listener_fd = wsgi_setup_socket(entry);\n",
            "        entry->listener_fd = wsgi_kept_socket(entry);\n",
        ),
        # The configuration's cleanup leaves a kept socket alone, unless the parent exits.
        Replacement(
            source, cleanup_test, cleanup_test.replace("!= -1", "!= -1 && !wsgi_keeps_socket(group)")
        ),
    )


_ENOENT = "APR_STATUS_IS_ENOENT(rv) /* impots patch: a socket being re-created */"
FIXES: dict[str, tuple[Replacement, ...]] = {
    "6.1.1": _fixes(
        "src/server/wsgi_daemon.c",
        Replacement(
            "src/server/wsgi_remote.c",
            "if (APR_STATUS_IS_ECONNREFUSED(rv) || APR_STATUS_IS_EAGAIN(rv))\n",
            f"if (APR_STATUS_IS_ECONNREFUSED(rv) || APR_STATUS_IS_EAGAIN(rv) || {_ENOENT})\n",
        ),
        "const char *wsgi_add_daemon_process(cmd_parms *cmd, void *mconfig,\n",
        "    if (group->listener_fd != -1)\n",
    ),
    "5.0.2": _fixes(
        "src/server/mod_wsgi.c",
        Replacement(
            "src/server/mod_wsgi.c",
            "if (APR_STATUS_IS_ECONNREFUSED(rv) || APR_STATUS_IS_EAGAIN(rv)) {\n",
            f"if (APR_STATUS_IS_ECONNREFUSED(rv) || APR_STATUS_IS_EAGAIN(rv) || {_ENOENT}) {{\n",
        ),
        "static const char *wsgi_add_daemon_process(cmd_parms *cmd, void *mconfig,\n",
        "    if (group->listener_fd != -1) {\n",
    ),
}


def _known(version: str) -> None:
    if version not in FIXES or version not in SDISTS:
        raise PatchError(f"mod_wsgi {version}: no patch for this version (patched: {', '.join(FIXES)})")


def patched_version(version: str) -> str:
    """The version the patched build installs as (what VenvState reads back): ``<version>+impots.<digest
    of the fixes>``, so a changed fix is a new version everywhere."""
    _known(version)
    digest = hashlib.sha256()
    for fix in FIXES[version]:
        for text in (fix.path, fix.old, fix.new):
            digest.update(text.encode() + b"\0")
    return f"{version}+impots.{digest.hexdigest()[:8]}"


def replacements(version: str) -> tuple[Replacement, ...]:
    """The fixes of ``version`` and its version label."""
    label = Replacement(
        "src/server/wsgi_version.h",
        f'#define MOD_WSGI_VERSION_STRING "{version}"',
        f'#define MOD_WSGI_VERSION_STRING "{patched_version(version)}"',
    )
    return (label, *FIXES[version])


def apply(source: Path, version: str) -> None:
    """Apply the replacements of ``version`` to an unpacked sdist; every text is checked before any
    file is written, so a mismatch leaves the tree as it was."""
    texts: dict[Path, str] = {}
    for replacement in replacements(version):
        path = source / replacement.path
        text = texts[path] if path in texts else (path.read_text() if path.is_file() else "")
        found = text.count(replacement.old)
        if found != 1:
            first = replacement.old.strip().splitlines()[0]
            raise PatchError(
                f"mod_wsgi {version}: {replacement.path}: the text to patch ({first!r}) is found "
                f"{found} times instead of once; provisioning/mod_wsgi_patch.py does not fit this source"
            )
        texts[path] = text.replace(replacement.old, replacement.new)
    for path, text in texts.items():
        path.write_text(text)


def sdist_path(version: str) -> Path:
    """Where the controller keeps the patched sdist of ``version`` (made by ``patched_sdist``)."""
    return SDIST_DIR / f"mod_wsgi-{patched_version(version)}.tar.gz"


def _original(version: str) -> Path:
    """The pinned sdist from PyPI, downloaded once; kept only when its sha256 is the pinned one."""
    url, pinned = SDISTS[version]
    path = SDIST_DIR / url.rsplit("/", 1)[-1]
    if path.is_file():
        data = path.read_bytes()
    else:
        try:
            with urllib.request.urlopen(url, timeout=120) as answer:
                data = answer.read()
        except OSError as error:
            raise PatchError(f"mod_wsgi {version}: cannot download {url}: {error}") from error
    found = hashlib.sha256(data).hexdigest()
    if found != pinned:
        path.unlink(missing_ok=True)
        raise PatchError(f"mod_wsgi {version}: {url} has sha256 {found}, not the pinned {pinned}")
    if not path.is_file():
        SDIST_DIR.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=SDIST_DIR, delete=False) as part:
            part.write(data)
        os.replace(part.name, path)
    return path


def patched_sdist(version: str) -> Path:
    """The patched sdist of ``version`` on the controller (made once; atomic, so parallel runs agree)."""
    target = sdist_path(version)
    if target.is_file():
        return target
    original = _original(version)
    with tempfile.TemporaryDirectory(dir=SDIST_DIR) as work:
        with tarfile.open(original) as archive:  # pinned by sha256: a known, trusted archive
            archive.extractall(work, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        top = Path(work) / f"mod_wsgi-{version}"
        apply(top, version)
        part = Path(work) / target.name
        with tarfile.open(part, "w:gz") as archive:
            archive.add(top, arcname=f"mod_wsgi-{patched_version(version)}")
        os.replace(part, target)
    return target
