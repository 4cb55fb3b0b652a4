"""Print the URLs to open after a deploy: `python -m provisioning.urls [inventory.py]`.

One line per site of every host of the inventory (default: ./inventory.py), from the same
validated settings the deploy uses; sites shared by several hosts are printed once.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import gevent.monkey
from pyinfra.api import Config, State
from pyinfra.context import ctx_state

from provisioning.settings import SettingsError, load_settings


@contextmanager
def gevent_unpatched() -> Iterator[None]:
    """Import ``pyinfra_cli`` modules without the ``gevent.monkey.patch_all()`` its package runs.

    The patch turns every thread of the importing process into a greenlet: harmless in the pyinfra
    command, but in a test session it starves any thread that never yields (a pytest run importing
    this module or ``pyinfra_testing`` hung the deploy tests' background sampler that way)."""
    patch_all = gevent.monkey.patch_all
    gevent.monkey.patch_all = lambda *args, **kwargs: None
    try:
        yield
    finally:
        gevent.monkey.patch_all = patch_all


with gevent_unpatched():
    from pyinfra_cli.inventory import make_inventory


def inventory_urls(inventory_file: str = "inventory.py") -> list[str]:
    """The URLs of every site of every host, in inventory order, without duplicates."""
    # pyinfra's inventory loader runs inventory.py and group_data/ inside a state, as the CLI does.
    state = State()
    with ctx_state.use(state):
        inventory = make_inventory(inventory_file)
        state.init(inventory, Config())
    urls: list[str] = []
    for host in inventory:
        for url in load_settings(host).site_urls():
            if url not in urls:
                urls.append(url)
    return urls


def main(argv: list[str]) -> int:
    try:
        urls = inventory_urls(argv[0] if argv else "inventory.py")
    except SettingsError as error:
        print(f"impots: bad host data: {error}", file=sys.stderr)
        return 2
    print("\n".join(urls))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
