"""The tests' probe of the jail: plain Python in a worker, with no static rules and no restricted loader.

Only the tests start it (`run_worker(PROBE, {"code": ...}, ...)`), to show what
the jail and the limits hold on their own against code that got past every
rule; autoreward never does. The code's variable `result` (JSON-ready) is the
job's result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def run_probe_job(payload: dict[str, Any], output_dir: Path, channel) -> Any:
    namespace: dict[str, Any] = {"__name__": "probe"}
    exec(compile(payload["code"], "<probe>", "exec"), namespace)
    return namespace.get("result")
