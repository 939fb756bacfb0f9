"""The verdict of .ci/run's dependency audit, from pip-audit's JSON report.

Exit 0 with "ci: audit passed ..." when every locked dependency was looked up
and none has a known advisory; exit 0 with "ci: DEPENDENCY AUDIT NOT RUN ..."
when none could be looked up (the advisory source is out of reach); exit 1,
naming them, for advisories or for some dependencies left unaudited.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def verdict(report: dict[str, Any], status: int) -> tuple[int, str]:
    deps = report.get("dependencies", [])
    vulnerable = [f"{d['name']} {d['version']}: {', '.join(v['id'] for v in d['vulns'])}"
                  for d in deps if d.get("vulns")]
    skipped = [d for d in deps if "skip_reason" in d]
    if vulnerable:
        return 1, "ci: known advisories in requirements.lock:\n  " + "\n  ".join(vulnerable)
    if deps and len(skipped) == len(deps):
        return 0, ("ci: DEPENDENCY AUDIT NOT RUN: pip-audit could look up none of the "
                   f"{len(deps)} locked dependencies ({skipped[0]['skip_reason']}): its "
                   "advisory source is out of reach from this machine")
    if skipped or status != 0 or not deps:
        reasons = "; ".join(d["skip_reason"] for d in skipped) or f"pip-audit exited {status}"
        return 1, f"ci: dependency audit failed: {reasons}"
    return 0, f"ci: audit passed: no known advisory in the {len(deps)} locked dependencies"


def main(path: str, status: str) -> int:
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"ci: dependency audit failed: no report from pip-audit ({exc})")
        return 1
    code, message = verdict(report, int(status))
    print(message)
    return code


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
