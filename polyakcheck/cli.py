"""Command line: ``polyakcheck verify | reproduce | sweep``.

Exit status of ``verify``: 0 when no check is violated, 1 when one is, 2 for invalid
input, 130 when interrupted.
"""

import argparse
import logging
import math
import os
import sqlite3
import sys
import tempfile
import time

from polyakcheck.methods.spec import METHOD_NAMES
from polyakcheck.problems.datasets import BUNDLED, COMPATIBLE, load_dataset
from polyakcheck.problems.families import FAMILIES
from polyakcheck.run import SAMPLINGS
from polyakcheck.verify import DEFAULT_METHODS, DEFAULT_SEEDS, verify

logger = logging.getLogger("polyakcheck")

EXIT_OK = 0
EXIT_VIOLATED = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130

# The two real data sets of the default run: one least-squares, one logistic.
DEFAULT_DATA = ("breast_cancer", "diabetes")

# Maximum number of samples per run accepted from the command line. The sample indices of a run are drawn
# up front, 8 bytes per sample, so 10^8 steps of batch 1 take 0.8 GB.
MAX_SAMPLES_PER_RUN = 10**8


class InputError(ValueError):
    """Invalid command-line input, reported as one line with exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """Argument parser whose errors are one line and exit status 2."""

    def error(self, message):
        """Print ``polyakcheck: error: MESSAGE`` and exit with status 2."""
        self.exit(EXIT_INVALID, f"polyakcheck: error: {message}\n")


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


def _add_verify_parser(sub):
    v = sub.add_parser(
        "verify",
        help="run SPS*, IAM and the SGD baselines and check every statement",
        description="Run SPS*, IAM and the SGD baselines on data sets and check every "
        "statement of the theory that each method claims.",
    )
    v.add_argument(
        "--data", type=_name_list, default=list(DEFAULT_DATA),
        help=f"comma-separated bundled data sets from {', '.join(sorted(BUNDLED))}, or "
        f"paths of svmlight/LIBSVM files (default: {','.join(DEFAULT_DATA)})",
    )
    v.add_argument(
        "--loss", default=None, choices=sorted(FAMILIES),
        help="loss family (default: least_squares for regression sets, logistic for "
        "classification sets); must be compatible with every --data set",
    )
    v.add_argument(
        "--reg", type=float, default=None,
        help="L2 regularization strength >= 0 (default: 0.01 for classification "
        "losses, 0 for regression losses)",
    )
    v.add_argument(
        "--loss-param", type=float, default=None,
        help="Huber's delta in units of the standardized target (default 1.0)",
    )
    v.add_argument(
        "--methods", type=_name_list, default=list(DEFAULT_METHODS),
        help=f"comma-separated methods from {', '.join(METHOD_NAMES)} "
        f"(default: {','.join(DEFAULT_METHODS)})",
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
        "--seeds", type=int, default=None,
        help=f"number of seeds, run as seeds 0..N-1 (default {DEFAULT_SEEDS})",
    )
    seeds.add_argument(
        "--seed-list", type=_int_list, default=None,
        help="comma-separated seeds to run, for example 3,7 (replays use this)",
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


def build_parser():
    """Return the argparse parser of the ``polyakcheck`` command."""
    from polyakcheck.experiments import add_reproduce_parser
    from polyakcheck.sweep import add_sweep_parser

    parser = OneLineParser(
        prog="polyakcheck",
        description="Check the theory of stochastic Polyak step sizes numerically.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    _add_verify_parser(sub)
    add_reproduce_parser(sub)
    add_sweep_parser(sub)
    return parser


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
            if v.status != "holds":
                # The reason of a verdict other than holds, on its own line.
                lines.append(f"{'':<14} {'':<12} {'':<5} {v.message}")
    return "\n".join(lines)


def _check_writable(path):
    """Raise InputError unless the directory of ``path`` can take a new file."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise InputError(
            f"cannot write the report to {path!r}: {exc.strerror or exc}; "
            "pass --output in a writable directory"
        ) from None


def _validate_verify(args):
    """Check every option before any computation; return (seeds, output paths)."""
    if not args.data:
        raise InputError("--data is empty; pass one or more of " + ", ".join(sorted(BUNDLED)))
    for name in args.data:
        looks_like_path = os.sep in name or "." in os.path.basename(name)
        if name not in BUNDLED and looks_like_path and not os.path.isfile(name):
            raise InputError(
                f"data file {name!r} not found; pass an existing svmlight file or one "
                f"of {', '.join(sorted(BUNDLED))}"
            )
        if name not in BUNDLED and not os.path.isfile(name):
            raise InputError(
                f"unknown data set {name!r}; choose from {', '.join(sorted(BUNDLED))} "
                "or pass the path of an svmlight file"
            )
        if args.loss is not None and name in COMPATIBLE and args.loss not in COMPATIBLE[name]:
            raise InputError(
                f"--loss {args.loss} does not fit data set {name!r}; compatible losses: "
                f"{', '.join(COMPATIBLE[name])}"
            )
    if args.loss_param is not None and args.loss != "huber":
        raise InputError(
            f"--loss-param {args.loss_param:g} sets Huber's delta only; pass it with "
            "--loss huber or drop it"
        )
    if args.reg is not None and not (math.isfinite(args.reg) and args.reg >= 0):
        raise InputError(f"--reg {args.reg:g} is invalid; pass a finite number >= 0")
    if args.loss_param is not None and not (
        math.isfinite(args.loss_param) and args.loss_param > 0
    ):
        raise InputError(f"--loss-param {args.loss_param:g} is invalid; pass a number > 0")
    if not args.methods:
        raise InputError("--methods is empty; pass for example sps_star,iam")
    for name in args.methods:
        key = name.lower().replace("-", "_")
        if key not in METHOD_NAMES and key not in ("sps", "sps*"):
            raise InputError(
                f"unknown method {name!r}; choose from {', '.join(METHOD_NAMES)}"
            )
    if len(set(args.methods)) != len(args.methods):
        raise InputError(f"--methods lists a method twice: {','.join(args.methods)}")
    if args.steps is not None and args.steps < 1:
        raise InputError(f"--steps {args.steps} is invalid; pass a step count >= 1")
    if args.epochs is not None and not (math.isfinite(args.epochs) and args.epochs > 0):
        raise InputError(f"--epochs {args.epochs:g} is invalid; pass a finite number > 0")
    if args.batch_size < 1:
        raise InputError(f"--batch-size {args.batch_size} is invalid; pass >= 1")
    if not 0.5 < args.confidence < 1:
        raise InputError(
            f"--confidence {args.confidence:g} is invalid; pass a level in (0.5, 1)"
        )
    if args.seed_list is not None:
        seeds = args.seed_list
        if len(set(seeds)) != len(seeds) or min(seeds) < 0:
            raise InputError(
                f"--seed-list {','.join(map(str, seeds))} is invalid; pass distinct "
                "seeds >= 0"
            )
    elif args.seeds is not None:
        if args.seeds < 1:
            raise InputError(f"--seeds {args.seeds} is invalid; pass a count >= 1")
        seeds = args.seeds
    else:
        seeds = DEFAULT_SEEDS
    if not args.output.lower().endswith(".html"):
        raise InputError(f"--output {args.output!r} is invalid; give a path ending in .html")
    _check_writable(args.output)
    return seeds, args.output, args.output[: -len(".html")] + ".json"


def _check_run_length(problem, args):
    steps = args.steps
    if steps is None:
        epochs = 15 if args.epochs is None else args.epochs
        steps = epochs * problem.n / args.batch_size
    samples = (steps + 1) * args.batch_size
    if samples > MAX_SAMPLES_PER_RUN:
        raise InputError(
            f"a run of {steps:.3g} steps of batch {args.batch_size} draws {samples:.3g} "
            f"samples, more than the {MAX_SAMPLES_PER_RUN:.0e} the command line allows; "
            "pass fewer --steps or --epochs"
        )


def cmd_verify(args):
    """Run ``verify`` on every selected data set and write the report."""
    from polyakcheck.report import provenance_info, write_report

    seeds, html_path, json_path = _validate_verify(args)
    started = time.perf_counter()
    problems = [
        load_dataset(name, loss=args.loss, reg=args.reg, loss_param=args.loss_param)
        for name in args.data
    ]
    for problem in problems:
        _check_run_length(problem, args)
    verifications = []
    for problem in problems:
        logger.info("verifying %s (n=%d, d=%d, %s)", problem.name, problem.n, problem.d,
                    problem.loss)
        verifications.append(verify(
            problem, methods=args.methods, steps=args.steps, epochs=args.epochs,
            batch_size=args.batch_size, seeds=seeds, confidence=args.confidence,
            progress=not args.quiet, sampling=args.sampling,
        ))
    provenance = provenance_info(
        argv=["polyakcheck"] + sys.argv[1:],
        seeds=verifications[0].settings["seeds"],
        solver=verifications[0].solution.get("solver"),
    )
    try:
        write_report(verifications, html_path, json_path, provenance)
    except OSError as exc:
        raise InputError(
            f"cannot write the report to {html_path!r}: {exc}; pass --output in a "
            "writable directory"
        ) from None
    print(format_table(verifications))
    counts = {}
    for ver in verifications:
        for v in ver.verdicts:
            counts[v.status] = counts.get(v.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    print(f"\n{summary}; {time.perf_counter() - started:.1f} s")
    print(f"report: {html_path}\ndata:   {json_path}")
    violated = any(ver.violated for ver in verifications)
    return EXIT_VIOLATED if violated else EXIT_OK


def main(argv=None):
    """Entry point of the ``polyakcheck`` console script; returns the exit status."""
    from polyakcheck.experiments import cmd_reproduce
    from polyakcheck.oracle import OracleError
    from polyakcheck.sweep import cmd_sweep

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # argparse exits for --help (0) and for invalid arguments (2, one line).
        return exc.code
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    commands = {"verify": cmd_verify, "reproduce": cmd_reproduce, "sweep": cmd_sweep}
    try:
        return commands[args.command](args)
    except (InputError, ValueError, TypeError, OracleError) as exc:
        print(f"polyakcheck: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except (OSError, sqlite3.DatabaseError) as exc:
        # Paths that cannot be written, a results store that is not SQLite, or a
        # Dask scheduler that does not respond.
        print(f"polyakcheck: error: {exc}; check the paths and addresses passed",
              file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("polyakcheck: interrupted; no report was written", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
