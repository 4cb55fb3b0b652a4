"""Parse PowerShell with a real grammar (tree-sitter-powershell): the check every generated script passes.

``ps_lint`` checks Windows PowerShell 5.1 habits; this one checks that the text is PowerShell at all, as
a parser reads it: any ERROR node (text the grammar cannot place) or MISSING node (a token the parser had
to invent, e.g. an unclosed brace or quote) is reported with its line and the text around it.
"""

from __future__ import annotations

from functools import cache

import tree_sitter_powershell
from tree_sitter import Language, Node, Parser


@cache
def _parser() -> Parser:
    return Parser(Language(tree_sitter_powershell.language()))


def grammar_errors(script: str) -> list[str]:
    """Every ERROR or MISSING node of ``script``'s parse tree, as ``line N: kind near '...'``."""
    source = script.encode("utf-8")
    tree = _parser().parse(source)
    problems: list[str] = []

    def visit(node: Node) -> None:
        if node.is_error or node.is_missing:
            kind = f"MISSING {node.type}" if node.is_missing else "ERROR"
            near = source[max(0, node.start_byte - 30) : node.end_byte + 30].decode("utf-8", "replace")
            problems.append(f"line {node.start_point[0] + 1}: {kind} near {near!r}")
        elif node.has_error:
            for child in node.children:
                visit(child)

    visit(tree.root_node)
    return problems
