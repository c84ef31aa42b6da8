"""`make metrics-check`: alert rules and the dashboard name only metrics the platform has.

Runs promtool (Debian's `prometheus` package) over deploy/prometheus/alerts.yml and its
unit tests, then checks that every metric name in the rules and in
deploy/grafana/platform.json is one the code defines.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "platform.json"
SOURCES = [ROOT / "platform", ROOT / "shared_apps"]
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")
NAME = re.compile(r"\b((?:platform|django)_[a-z0-9_]+)\b")


def defined_names() -> set[str]:
    """Metric names the platform and django-prometheus define."""
    names: set[str] = set()
    pattern = re.compile(r"""["']((?:platform|django)_[a-z0-9_]+)["']""")
    for source in SOURCES:
        for path in source.rglob("*.py"):
            names.update(pattern.findall(path.read_text()))
    spec = importlib.util.find_spec("django_prometheus")
    if spec is None or spec.origin is None:
        raise SystemExit("django-prometheus is not installed: make install")
    for path in Path(spec.origin).parent.rglob("*.py"):
        names.update(pattern.findall(path.read_text()))
    # tenancy.metrics builds these from its kinds.
    names.update({"platform_tenant_top_requests", "platform_tenant_top_task_seconds"})
    return names


def base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def main() -> int:
    promtool = shutil.which("promtool")
    if promtool is None:
        print("promtool is missing: apt-get install prometheus", file=sys.stderr)
        return 1
    for args in (["check", "rules", str(RULES)], ["test", "rules", str(RULE_TESTS)]):
        if subprocess.run([promtool, *args], check=False).returncode != 0:
            return 1
    expressions = RULES.read_text()
    panels = json.loads(DASHBOARD.read_text())["panels"]
    expressions += "\n".join(t["expr"] for panel in panels for t in panel["targets"])
    known = {base(name) for name in defined_names()} | defined_names()
    unknown = sorted(
        {
            name
            for name in NAME.findall(expressions)
            if name not in known and base(name) not in known
        }
    )
    if unknown:
        print(
            f"metrics named in rules or dashboard but defined nowhere: {unknown}", file=sys.stderr
        )
        return 1
    print(f"metrics-check: rules and {len(panels)} dashboard panels name known metrics only")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
