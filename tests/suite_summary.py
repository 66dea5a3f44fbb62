"""The last line of `make test`: the three pytest suites counted together.

    python tests/suite_summary.py RESULTS_DIR unit real reliability

Each suite NAME left RESULTS_DIR/NAME.xml (pytest --junitxml) and RESULTS_DIR/NAME.rc (pytest's
exit status). Prints one line such as

    make test: 812 passed, 0 failed, 3 skipped in 534 s (unit: 700 passed, 2 skipped, 78 s; ...)

and exits 1 when any suite did not exit 0 or did not run, so the line never reads as a pass
when a suite failed. Standard library only; it does not run tests itself.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

# pytest's exit statuses other than 0 (all passed) and 1 (some failed).
EXIT = {2: "interrupted", 3: "internal error", 4: "usage error", 5: "collected nothing"}


def suite_counts(xml: Path) -> dict[str, float]:
    """passed / failed / errors / skipped / seconds of one pytest JUnit XML file."""
    root = ET.parse(xml).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "seconds": 0.0}
    for s in suites:
        failed, errors, skipped = (int(s.get(k, 0)) for k in ("failures", "errors", "skipped"))
        counts["passed"] += int(s.get("tests", 0)) - failed - errors - skipped
        counts["failed"] += failed
        counts["errors"] += errors
        counts["skipped"] += skipped
        counts["seconds"] += float(s.get("time", 0.0))
    return counts


def describe(counts: dict[str, float], always: tuple[str, ...]) -> str:
    """"3 passed, 1 failed" with the kinds in `always` even when zero; errors only if any."""
    words = {"errors": "error" if counts["errors"] == 1 else "errors"}
    return ", ".join(f"{int(counts[k])} {words.get(k, k)}"
                     for k in ("passed", "failed", "errors", "skipped") if k in always or counts[k])


def summary(results: Path, names: list[str]) -> tuple[str, bool]:
    """The line, and whether every suite ran and exited 0."""
    total = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "seconds": 0.0}
    parts, ok = [], True
    for name in names:
        xml, rc_file = results / f"{name}.xml", results / f"{name}.rc"
        rc = int(rc_file.read_text().strip() or -1) if rc_file.is_file() else None
        if rc is None or not xml.is_file():
            ok = False
            parts.append(f"{name}: " + ("not run" if rc is None else f"no results (exit {rc})"))
            continue
        try:
            counts = suite_counts(xml)
        except ET.ParseError:  # pytest killed while writing it
            ok = False
            parts.append(f"{name}: unreadable results (exit {rc})")
            continue
        for key in total:
            total[key] += counts[key]
        line = f"{name}: {describe(counts, ('passed',))}, {counts['seconds']:.0f} s"
        if rc != 0:
            ok = False
            line += f", {EXIT.get(rc, f'pytest exited {rc}')}" if rc != 1 else ", FAILED"
        parts.append(line)
    everything = describe(total, ("passed", "failed", "skipped"))
    return f"make test: {everything} in {total['seconds']:.0f} s ({'; '.join(parts)})", ok


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python tests/suite_summary.py RESULTS_DIR SUITE...", file=sys.stderr)
        return 2
    line, ok = summary(Path(argv[0]), argv[1:])
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
