"""The image's runtime dependency set, from pyproject.toml at requirements.lock's versions.

requirements.lock is one resolution of the runtime and the dev dependencies together (what
the tests ran against). The image needs the runtime part only; re-resolving it without
the dev extra could pick other versions. Instead the build installs pyproject's
`[project.dependencies]` with the lock as a constraints file, then checks that every
installed distribution is pinned by the lock at that version.

    python deploy/runtime_requirements.py requirements   pyproject's runtime requirements
    python deploy/runtime_requirements.py constraints    the lock as a pip constraints file
    python deploy/runtime_requirements.py verify         exit 1 unless the venv matches the lock
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;]+)")
# Installed by `python -m venv` itself, not by the requirements.
TOOLING = {"pip", "setuptools", "wheel"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: Path = ROOT / "requirements.lock") -> dict[str, str]:
    """Return the lock's pins, canonical name to version (option and comment lines skipped)."""
    pins = {}
    for line in lock.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            pins[canonical(match.group(1))] = match.group(3)
    return pins


def runtime_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])


def conditional_requirers(name: str) -> list[str]:
    """Installed distributions that require `name` only under an environment marker."""
    found, unconditional = [], False
    for dist in metadata.distributions():
        for requirement in dist.requires or []:
            spec, _, marker = requirement.partition(";")
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
            if not match or canonical(match.group(1)) != name or "extra ==" in marker:
                continue
            if marker.strip():
                found.append(f"{dist.metadata['Name']} ({marker.strip()})")
            else:
                unconditional = True
    return [] if unconditional else found


def verify() -> int:
    pins = locked()
    problems = []
    count = 0
    for dist in metadata.distributions():
        name = canonical(dist.metadata["Name"])
        if name in TOOLING:
            continue
        count += 1
        if name not in pins:
            # The lock was resolved on another interpreter: a backport required only below
            # some Python version (redis wants async-timeout before 3.11.3) is legitimate.
            requirers = conditional_requirers(name)
            if requirers:
                print(
                    f"runtime dependencies: {name}=={dist.version} for this Python only, "
                    f"required by {', '.join(requirers)}"
                )
            else:
                problems.append(f"{name}=={dist.version} is not in requirements.lock")
        elif pins[name] != dist.version:
            problems.append(f"{name}=={dist.version}, but requirements.lock pins {pins[name]}")
    for problem in problems:
        print(f"runtime dependencies: {problem}", file=sys.stderr)
    if not problems:
        print(f"runtime dependencies: {count} distributions, each at its locked version")
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    action = argv[0] if argv else ""
    if action == "requirements":
        print("\n".join(runtime_requirements()))
        return 0
    if action == "constraints":
        # Constraints files take no extras: `celery[redis]==5.7.0` becomes `celery==5.7.0`.
        print("\n".join(f"{name}=={version}" for name, version in sorted(locked().items())))
        return 0
    if action == "verify":
        return verify()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
