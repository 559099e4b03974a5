"""Re-render a scenario's Markdown from its results file, measuring nothing.

    python -m bench.render bench/results/serving.json       # → bench/RESULTS.md
    python -m bench.render bench/results/gateway.json       # → bench/GATEWAY.md
    python -m bench.render FILE.json --out OTHER.md

An unpublishable results file (run with --allow-dirty) renders beside itself unless --out
says where, so that it never overwrites the published Markdown.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from bench.lib import render_batching, render_gateway, render_serving, results
from bench.lib.report import Results

RENDERERS: dict[str, tuple[str, Callable[[Results, Path], str]]] = {
    "serving": ("RESULTS.md", render_serving.render),
    "gateway": ("GATEWAY.md", render_gateway.render),
    "batching": ("BATCHING.md", render_batching.render),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.render",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("results_json", type=Path)
    p.add_argument("--out", type=Path, help="where to write the Markdown")
    args = p.parse_args(argv)
    res = results.load(args.results_json)
    scenario = res.get("scenario")
    if scenario not in RENDERERS:
        p.error(f"{args.results_json}: scenario {scenario!r} is none of {sorted(RENDERERS)}")
    name, render = RENDERERS[scenario]
    default_dir = results.BENCH if res["published"] else args.results_json.parent
    out = args.out or default_dir / name
    out.write_text(render(res, args.results_json))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
