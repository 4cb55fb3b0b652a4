"""A stand-in for ``powershell.exe`` behind a real sshd (installed on PATH as ``powershell``).

It accepts exactly what the @winssh connector sends -- ``-NoProfile -NonInteractive -EncodedCommand
<base64 of UTF-16LE>`` -- decodes the script (reading it from stdin for the long-script loader), logs it,
and answers what ``answers.json`` says for that script (by SHA256), with Windows' CRLF line ends.
Anything else exits 64 with an error, so a malformed command line fails the test.

Environment: ``FAKE_PS_DIR`` = folder of ``answers.json`` and ``received.jsonl``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys


def main() -> int:
    folder = os.environ["FAKE_PS_DIR"]
    args = sys.argv[1:]
    if len(args) != 4 or args[:3] != ["-NoProfile", "-NonInteractive", "-EncodedCommand"]:
        sys.stderr.write(f"fake powershell: unexpected arguments {args!r}\n")
        return 64
    script = base64.b64decode(args[3]).decode("utf-16-le")
    stdin = sys.stdin.read()
    record = {"script": script, "stdin": stdin}
    if "[Console]::In.ReadToEnd()" in script:
        record["script"] = script = base64.b64decode(stdin.strip()).decode("utf-8")
    with open(os.path.join(folder, "received.jsonl"), "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")
    with open(os.path.join(folder, "answers.json"), encoding="utf-8") as answers_file:
        answers = json.load(answers_file)
    answer = answers.get(hashlib.sha256(script.encode("utf-8")).hexdigest())
    if answer is None:
        sys.stderr.write("fake powershell: no answer for this script\n")
        return 65
    sys.stdout.buffer.write(
        answer.get("stdout", "").replace("\n", "\r\n").encode(answer.get("encoding", "utf-8"))
    )
    sys.stderr.buffer.write(answer.get("stderr", "").replace("\n", "\r\n").encode("utf-8"))
    return int(answer.get("status", 0))


if __name__ == "__main__":
    sys.exit(main())
