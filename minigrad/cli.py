"""The ``minigrad`` command. It only parses arguments and calls the library.

Each subcommand is a ``cmd_<name>(args) -> int`` function plus a few lines in :func:`build_parser`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence


def cmd_gradcheck(args: argparse.Namespace) -> int:
    """Gradcheck every op of the battery in float64 and print one line per op."""
    from minigrad.gradcheck import BATTERY, run_case

    rows = []
    for case in BATTERY:
        start = time.perf_counter()
        try:
            err = run_case(case, seed=args.seed)
            row = {"op": case.name, "ok": True, "max_abs_error": err}
        except Exception as exc:  # report every op, then fail
            row = {"op": case.name, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        row["seconds"] = round(time.perf_counter() - start, 4)
        rows.append(row)
        if not args.json:
            detail = f"max |autograd - finite diff| = {row['max_abs_error']:.1e}" if row["ok"] \
                else row["error"]
            print(f"{'OK  ' if row['ok'] else 'FAIL'} {case.name:<34} {detail}")
    failed = [r["op"] for r in rows if not r["ok"]]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"\n{len(rows) - len(failed)}/{len(rows)} ops OK (float64, central differences, "
              f"eps=1e-6, seed {args.seed})" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def cmd_derive(args: argparse.Namespace) -> int:
    """Check every claim of the seed documents three ways and print one row per claim."""
    from minigrad.derivations import format_table, inconsistencies, run_all

    claims = run_all()
    if args.json:
        print(json.dumps([c.as_dict() for c in claims], indent=2, ensure_ascii=False))
    else:
        print(format_table(claims))
        differ = sum(c.verdict == "differs" for c in claims)
        gaps = [abs(c.computed - c.finite_difference) for c in claims
                if c.finite_difference is not None]
        print(f"\n{len(claims)} claims: {len(claims) - differ} match, {differ} differ. "
              f"Derivatives: max |computed - finite difference| = {max(gaps):.1e} "
              f"(float64, central differences, eps=1e-6); '—' marks a value, not a derivative.")
    bad = inconsistencies(claims)
    for line in bad:
        print(f"INCONSISTENT {line}", file=sys.stderr)
    return 1 if bad else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minigrad", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("gradcheck", help="check every op's gradient against finite differences")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--seed", type=int, default=0, help="seed for the random inputs")
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser("derive", help="compute the seed documents' formulas and printed numbers")
    p.add_argument("--json", action="store_true", help="print the claims as JSON")
    p.set_defaults(func=cmd_derive)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
