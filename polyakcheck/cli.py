"""Command line: ``polyakcheck verify``.

Exit status: 0 when no check is violated, 1 when one is, 2 for invalid input.
"""

import argparse
import logging
import sys
import time

from polyakcheck.methods.spec import METHOD_NAMES
from polyakcheck.problems.datasets import BUNDLED, load_dataset
from polyakcheck.run import SAMPLINGS
from polyakcheck.verify import DEFAULT_METHODS, DEFAULT_SEEDS, verify

logger = logging.getLogger("polyakcheck")

EXIT_OK = 0
EXIT_VIOLATED = 1
EXIT_INVALID = 2


class InputError(ValueError):
    """Invalid command-line input, reported as one line with exit status 2."""


def _int_list(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid integer list {text!r}; write comma-separated integers like 0,1,2"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("empty list; write for example 0,1,2")
    return values


def _name_list(text):
    return [v.strip() for v in text.split(",") if v.strip()]


def build_parser():
    """Return the argparse parser of the ``polyakcheck`` command."""
    parser = argparse.ArgumentParser(
        prog="polyakcheck",
        description="Check the theory of stochastic Polyak step sizes numerically.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser(
        "verify",
        help="run SPS*, IAM and baselines on data sets and check every statement",
    )
    v.add_argument(
        "--data", type=_name_list, default=sorted(BUNDLED),
        help=f"comma-separated bundled data sets (default: all of {sorted(BUNDLED)})",
    )
    v.add_argument(
        "--methods", type=_name_list, default=list(DEFAULT_METHODS),
        help=f"comma-separated methods from {', '.join(METHOD_NAMES)} "
        "(default: sps_star,iam,iam_const,sgd)",
    )
    length = v.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="steps per run (default: 15 epochs)")
    length.add_argument("--epochs", type=float, help="passes over the n samples per run")
    v.add_argument("--batch-size", type=int, default=1, help="samples per step (default 1)")
    v.add_argument(
        "--sampling", choices=SAMPLINGS, default="uniform",
        help="how samples are drawn: uniform with replacement (default; the theory's "
        "setting), shuffle (a permutation per epoch) or cyclic",
    )
    seeds = v.add_mutually_exclusive_group()
    seeds.add_argument(
        "--seeds", type=_int_list, default=None,
        help="comma-separated seeds, or one integer N for seeds 0..N-1 (default 50 seeds)",
    )
    v.add_argument(
        "--confidence", type=float, default=0.99,
        help="family-wise confidence level of each expectation verdict (default 0.99)",
    )
    v.add_argument(
        "--output", default="reports/verify.html",
        help="HTML report path; the JSON goes beside it with suffix .json "
        "(default reports/verify.html)",
    )
    v.add_argument("--quiet", action="store_true", help="print only the verdict table")
    return parser


def _seeds_from(arg):
    """Return a seed count or list: one value N means seeds 0..N-1."""
    if arg is None:
        return DEFAULT_SEEDS
    if len(arg) > 1:
        return arg
    if arg[0] < 1:
        raise InputError(f"--seeds {arg[0]} is invalid; pass N >= 1 or a list like 0,1,2")
    return arg[0]


def format_table(verifications):
    """Return the verdict table as plain text, one row per verdict."""
    header = f"{'data':<14} {'method':<12} {'stmt':<5} {'status':<14} {'margin':>9}  where"
    lines = [header, "-" * len(header)]
    for ver in verifications:
        for v in ver.verdicts:
            margin = "" if v.margin != v.margin else f"{v.margin:9.3g}"
            lines.append(
                f"{ver.problem['name']:<14} {v.method:<12} {v.statement:<5} "
                f"{v.status:<14} {margin:>9}  {v.where}"
            )
    return "\n".join(lines)


def cmd_verify(args):
    """Run ``verify`` on every selected data set and write the report."""
    from polyakcheck.report import provenance_info, write_report

    for name in args.data:
        if name not in BUNDLED:
            raise InputError(
                f"unknown data set {name!r}; choose from {', '.join(sorted(BUNDLED))}"
            )
    for name in args.methods:
        key = name.lower().replace("-", "_")
        if key not in METHOD_NAMES and key not in ("sps", "sps*"):
            raise InputError(
                f"unknown method {name!r}; choose from {', '.join(METHOD_NAMES)}"
            )
    if args.steps is not None and args.steps < 1:
        raise InputError(f"--steps {args.steps} is invalid; pass a step count >= 1")
    if args.epochs is not None and not args.epochs > 0:
        raise InputError(f"--epochs {args.epochs} is invalid; pass a number > 0")
    if args.batch_size < 1:
        raise InputError(f"--batch-size {args.batch_size} is invalid; pass >= 1")
    if not 0.5 < args.confidence < 1:
        raise InputError(
            f"--confidence {args.confidence} is invalid; pass a level in (0.5, 1)"
        )
    seeds = _seeds_from(args.seeds)
    if not args.output.endswith(".html"):
        raise InputError(f"--output {args.output!r} must end in .html")

    started = time.perf_counter()
    verifications = []
    for name in args.data:
        problem = load_dataset(name)
        logger.info("verifying %s (n=%d, d=%d, %s)", name, problem.n, problem.d,
                    problem.loss)
        verifications.append(verify(
            problem, methods=args.methods, steps=args.steps, epochs=args.epochs,
            batch_size=args.batch_size, seeds=seeds, confidence=args.confidence,
            progress=not args.quiet, sampling=args.sampling,
        ))
    json_path = args.output[: -len(".html")] + ".json"
    provenance = provenance_info(
        argv=["polyakcheck"] + sys.argv[1:],
        seeds=verifications[0].settings["seeds"],
        solver=verifications[0].solution.get("solver"),
    )
    write_report(verifications, args.output, json_path, provenance)
    print(format_table(verifications))
    counts = {}
    for ver in verifications:
        for v in ver.verdicts:
            counts[v.status] = counts.get(v.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    print(f"\n{summary}; {time.perf_counter() - started:.1f} s")
    print(f"report: {args.output}\ndata:   {json_path}")
    violated = any(ver.violated for ver in verifications)
    return EXIT_VIOLATED if violated else EXIT_OK


def main(argv=None):
    """Entry point of the ``polyakcheck`` console script; returns the exit status."""
    from polyakcheck.oracle import OracleError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "verify":
            return cmd_verify(args)
    except (InputError, ValueError, TypeError, OracleError) as exc:
        print(f"polyakcheck: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    parser.error(f"unknown command {args.command!r}")


if __name__ == "__main__":
    sys.exit(main())
