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


_QUOTES = "'\u2018\u2019\u201a\u201b"  # PowerShell ends a verbatim string at any of them


def assigned_verbatim_strings(script: str, variable: str) -> list[str]:
    """The values of every ``$variable = '...'`` in ``script``, as the grammar reads them: the assigned
    value must be one verbatim string literal (not a string that ends early, followed by more code)."""
    source = script.encode("utf-8")
    values: list[str] = []
    stack = [_parser().parse(source).root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type != "assignment_expression":
            continue
        left = node.child_by_field_name("value")
        target = node.children[0].text.decode("utf-8").strip()
        if target != f"${variable}" or left is None:
            continue
        literal = left
        while literal.named_child_count == 1 and literal.type != "string_literal":
            literal = literal.named_children[0]
        text = literal.text.decode("utf-8")
        if literal.type != "string_literal" or text != left.text.decode("utf-8").strip():
            values.append(f"<not one string literal: {left.text.decode('utf-8')!r}>")
            continue
        inner = text[1:-1]
        for quote in _QUOTES:
            inner = inner.replace(quote + quote, quote)
        values.append(inner)
    return values
