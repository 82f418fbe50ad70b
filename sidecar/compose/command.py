"""``secrets-sidecar compose``: read a task definition, write the compose project, report what differs from ECS.

Exit codes: 0 written; 2 the input is not a task definition, or an option is wrong (an --image that names no
image of the task); 4 the project could not be written (a previous one is left as it was).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from typing import Final, TextIO

from sidecar.compose.translate import DEFAULT_MOTO_IMAGE, Options, translate
from sidecar.errors import EXIT_CONFIG, EXIT_OK, EXIT_WRITE
from sidecar.lint.document import UnreadableTaskDefinition, parse_task_definition

PROJECT_FILE: Final = "compose.yaml"  # JSON, which every YAML parser, and so compose, reads
STDIN: Final = "-"
PROGRAM: Final = "secrets-sidecar compose"


def compose_command(
    path: str,
    output_dir: str | None,
    *,
    moto: bool = False,
    images: Sequence[str] = (),
    unseeded: Sequence[str] = (),
    region: str | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    source = "<stdin>" if path == STDIN else path
    try:
        mapping = _image_mapping(images)
        task = parse_task_definition(_read(path, stdin or sys.stdin), source)
    except (UnreadableTaskDefinition, ValueError) as exc:
        print(f"{PROGRAM}: {exc}", file=stderr)
        return EXIT_CONFIG
    options = Options(images=mapping, moto=moto, unseeded=frozenset(unseeded), region=region)
    try:
        translation = translate(task, options)
    except ValueError as exc:
        print(f"{PROGRAM}: {exc}", file=stderr)
        return EXIT_CONFIG
    if translation.unused_images:
        known = sorted({str(c.get("image")) for c in task["containerDefinitions"] if isinstance(c, dict)}
                       | ({DEFAULT_MOTO_IMAGE} if moto else set()))
        for unused in translation.unused_images:
            close = difflib.get_close_matches(unused, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f" (images: {', '.join(known)})"
            print(f"{PROGRAM}: --image {unused}=...: no container uses that image{hint}", file=stderr)
        return EXIT_CONFIG
    text = json.dumps(translation.document, indent=2) + "\n"
    if output_dir is None:
        stdout.write(text)
    else:
        try:
            target = _write(output_dir, text)
        except OSError as exc:
            print(f"{PROGRAM}: cannot write {os.path.join(output_dir, PROJECT_FILE)}: {exc.strerror}", file=stderr)
            return EXIT_WRITE
        project = re.sub(r"[^a-z0-9_-]", "-", str(task.get("family") or "task").lower())
        print(f"wrote {target}: docker-compose -p {project} -f {target} up", file=stdout)
    for note in translation.notes:
        print(note.line(), file=stderr)
    return EXIT_OK


def _image_mapping(pairs: Sequence[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        original, _, local = pair.partition("=")
        if not original or not local:
            raise ValueError(f"--image {pair}: expected IMAGE=LOCAL_IMAGE (the image as the task definition "
                             "names it, then the local image to run instead)")
        mapping[original] = local
    return mapping


def _read(path: str, stdin: TextIO) -> str | bytes:
    if path == STDIN:
        return stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read()
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise UnreadableTaskDefinition(f"cannot read {path}: {exc.strerror}") from None


def _write(directory: str, text: str) -> str:
    """Write the project file whole or not at all: a temporary file in the same directory, then a rename."""
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, PROJECT_FILE)
    handle, temporary = tempfile.mkstemp(prefix=f".{PROJECT_FILE}.", dir=directory)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except OSError:
        os.unlink(temporary)
        raise
    return target
