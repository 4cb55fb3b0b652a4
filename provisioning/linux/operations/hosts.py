"""The hosts file: our names in one marked block, every other line kept as it is."""

from __future__ import annotations

from io import StringIO

from pyinfra import host, logger, state
from pyinfra.api import FileUploadCommand, operation
from pyinfra.facts.files import FileContents
from pyinfra.operations.util.files import generate_color_diff

from provisioning.linux.facts import cached_fact

BEGIN = "# BEGIN impots-provisioning"
END = "# END impots-provisioning"


def with_block(lines: list[str], address: str, names: list[str]) -> list[str]:
    """``lines`` without any previous block, then the new block at the end."""
    kept: list[str] = []
    inside = False
    for line in lines:
        if line.strip() == BEGIN:
            inside = True
        elif line.strip() == END and inside:
            inside = False
        elif not inside:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    block = [BEGIN, *(f"{address} {name}" for name in names), END]
    return [*kept, "", *block] if kept else block


@operation()
def hosts_block(address: str, names: list[str], path: str = "/etc/hosts"):
    """
    Map every name to ``address`` in a marked block of the hosts file, keeping all other lines
    (``localhost`` included). The file is rewritten in place: in containers it is a bind mount that
    cannot be replaced by a rename.

    + address: IP address the names resolve to
    + names: host names (the sites)
    + path: the hosts file

    **Example:**

    .. code:: python

        hosts_block(name="Site names", address="127.0.0.1", names=["date-time-server"])
    """
    current = cached_fact(FileContents, path=path) or []
    wanted = with_block(current, address, names)
    if wanted == current:
        host.noop(f"{path} already maps {', '.join(names)} to {address}")
        return
    if state.config.DIFF:
        host.log(f"Will modify {path}", logger.info)
        for line in generate_color_diff([f"{x}\n" for x in current], [f"{x}\n" for x in wanted]):
            logger.info("  %s", line)
    staged = f"{path}.impots-new"
    yield FileUploadCommand(StringIO("\n".join(wanted) + "\n"), staged)
    yield f"cat {staged} > {path} && rm -f {staged}"
