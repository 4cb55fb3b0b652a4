"""Parse PowerShell with the real grammar (tree-sitter-powershell), when it is installed."""

from __future__ import annotations


def grammar_errors(script: str) -> list[str]:
    """Each ERROR or MISSING node of the parse tree, with its line and the text it covers."""
    import tree_sitter
    import tree_sitter_powershell

    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    source = script.encode("utf-8")
    problems = []
    stack = [parser.parse(source).root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            text = source[node.start_byte : node.end_byte].decode("utf-8", errors="replace")[:80]
            kind = "missing " + node.type if node.is_missing else "cannot parse"
            problems.append(f"line {node.start_point[0] + 1}: {kind} {text!r}")
        stack.extend(node.children)
    return problems
