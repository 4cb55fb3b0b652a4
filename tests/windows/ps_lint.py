"""A small static check of generated PowerShell 5.1 (nobody can run PowerShell on this machine).

It tokenises strings ('...' with '' escapes, "..." with backtick escapes, here-strings) and comments,
then checks what is easy to get wrong when writing PowerShell from Python (``lint`` also parses the
script with a real PowerShell grammar first, see ps_grammar.py):

- brackets (), {}, [] balanced outside strings;
- no ``&&`` / ``||`` (pipeline chain operators exist only from PowerShell 7);
- no redirected stderr (``2>``): with ``$ErrorActionPreference = 'Stop'``, Windows PowerShell 5.1 turns
  the first stderr line of a native program into a terminating error;
- no ``?.``/``??`` (PowerShell 7 only);
- every native program call (``& $var ...`` or ``& name.exe ...``) inside
  ``& { $ErrorActionPreference = 'Continue'; ... }``, so that its stderr cannot stop the script.
"""

from __future__ import annotations

import re

from ps_grammar import grammar_errors

_PAIRS = {")": "(", "}": "{", "]": "["}


def code_outside_strings(script: str) -> str:
    """The script with string contents and comments blanked out (brackets inside them ignored)."""
    out = []
    i = 0
    n = len(script)
    while i < n:
        c = script[i]
        if script.startswith("@'", i) and script[i + 2 : i + 3] == "\n":
            end = script.find("\n'@", i)
            if end < 0:
                raise AssertionError("unterminated here-string @'")
            out.append("''")
            i = end + 3
        elif script.startswith('@"', i) and script[i + 2 : i + 3] == "\n":
            end = script.find('\n"@', i)
            if end < 0:
                raise AssertionError('unterminated here-string @"')
            out.append('""')
            i = end + 3
        elif c in "'\u2018\u2019\u201a\u201b":
            j = i + 1
            while True:
                if j >= n:
                    raise AssertionError(f"unterminated '...' string at {script[i : i + 40]!r}")
                if script[j] in "'\u2018\u2019\u201a\u201b":
                    if j + 1 < n and script[j + 1] in "'\u2018\u2019\u201a\u201b":
                        j += 2
                        continue
                    break
                j += 1
            out.append("''")
            i = j + 1
        elif c == '"':
            j = i + 1
            depth = 0
            while True:
                if j >= n:
                    raise AssertionError(f'unterminated "..." string at {script[i : i + 40]!r}')
                if script[j] == "`":
                    j += 2
                    continue
                if script.startswith("$(", j):
                    depth += 1
                    j += 2
                    continue
                if script[j] == ")" and depth:
                    depth -= 1
                elif script[j] == '"' and not depth:
                    break
                j += 1
            out.append('""')
            i = j + 1
        elif c == "#" and (i == 0 or script[i - 1] in " \t\n;"):
            end = script.find("\n", i)
            i = n if end < 0 else end
        else:
            out.append(c)
            i += 1
    return "".join(out)


def lint(script: str) -> list[str]:
    """What is wrong with ``script``: the checks above, then every ERROR/MISSING node of a real PowerShell
    grammar (``ps_grammar``)."""
    problems = grammar_errors(script)
    code = code_outside_strings(script)
    stack = []
    for position, c in enumerate(code):
        if c in "({[":
            stack.append(c)
        elif c in ")}]":
            if not stack or stack[-1] != _PAIRS[c]:
                problems.append(f"unbalanced {c!r} near {code[max(0, position - 40) : position + 1]!r}")
                return problems
            stack.pop()
    if stack:
        problems.append(f"unclosed {stack!r}")
    for match in re.finditer(r"&\s+(\$\w+|[\w.-]+\.exe)\b", script):
        before = script[max(0, match.start() - 45) : match.start()]
        if not before.endswith("& { $ErrorActionPreference = 'Continue'; "):
            problems.append(
                f"native call outside a Continue block: {script[match.start() : match.start() + 40]!r}"
            )
    for pattern, why in (
        (r"&&|\|\|", "&& / || need PowerShell 7"),
        (r"(?<![\w$])2>", "redirected stderr turns into a terminating error under Stop in 5.1"),
        (r"\?\.|\?\?", "?. and ?? need PowerShell 7"),
    ):
        if re.search(pattern, code):
            problems.append(why)
    return problems
