"""``polyakcheck reproduce NAME``: the experiments of the SPS*/IAM paper, with claims.

Each experiment module has ``run_experiment(quick, seed, out_dir, progress=False)``,
which writes ``NAME.html`` and ``NAME.json`` into ``out_dir`` and returns a dict with
the claims table. ``REGISTRY`` maps the command-line name to that function.

The command line wires in with two calls in ``polyakcheck.cli``:
``add_reproduce_parser(subparsers)`` in the parser, and ``cmd_reproduce(args)`` for
``args.command == "reproduce"``.
"""

import logging
import time

from polyakcheck.experiments import diabetes, distill, role_of_f_star
from polyakcheck.experiments.common import count_matched, format_claims

logger = logging.getLogger(__name__)

REGISTRY = {
    "diabetes": diabetes.run_experiment,
    "role-of-f-star": role_of_f_star.run_experiment,
    "distill": distill.run_experiment,
}
ALL = "all"
DEFAULT_OUTPUT_DIR = "reports"

EXIT_OK = 0
EXIT_NOT_MATCHED = 1


def add_reproduce_parser(subparsers):
    """Add the ``reproduce`` subcommand to an argparse ``subparsers`` object.

    Returns
    -------
    argparse.ArgumentParser
        The subcommand's parser.
    """
    parser = subparsers.add_parser(
        "reproduce",
        help="run an experiment of the paper and write its HTML and JSON report",
        description=(
            "Run one experiment (or all) and write NAME.html and NAME.json with its "
            "figures, the numbers behind them and a claims table."
        ),
    )
    parser.add_argument(
        "name", choices=[*REGISTRY, ALL],
        help="experiment to run, or 'all' for every experiment in turn",
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="small settings that finish in seconds (for tests and smoke runs)",
    )
    parser.add_argument(
        "--seed", type=int, default=0,
        help="first seed; runs use seed, seed + 1, ... (default 0)",
    )
    parser.add_argument(
        "--output-dir", default=DEFAULT_OUTPUT_DIR,
        help="directory of the reports, created when missing "
        f"(default {DEFAULT_OUTPUT_DIR})",
    )
    parser.add_argument(
        "--strict", action="store_true",
        help="exit with status 1 when any claim is not matched",
    )
    parser.add_argument(
        "--quiet", action="store_true",
        help="print only the claims tables, without progress bars",
    )
    return parser


def cmd_reproduce(args):
    """Run the experiments selected by ``args`` and print their claims tables.

    Returns
    -------
    int
        0, or 1 with ``--strict`` when some claim is not matched.

    Raises
    ------
    ValueError
        If the name is unknown or the seed is negative.
    """
    if args.name != ALL and args.name not in REGISTRY:
        raise ValueError(
            f"unknown experiment {args.name!r}; choose from "
            f"{', '.join(REGISTRY)} or {ALL}"
        )
    if args.seed < 0:
        raise ValueError(f"--seed {args.seed} is invalid; pass a seed >= 0")
    names = list(REGISTRY) if args.name == ALL else [args.name]
    any_failed = False
    for name in names:
        started = time.perf_counter()
        logger.info("reproduce %s (quick=%s, seed=%d)", name, args.quick, args.seed)
        outcome = REGISTRY[name](
            quick=args.quick, seed=args.seed, out_dir=args.output_dir,
            progress=not args.quiet,
        )
        matched, failed, skipped = count_matched(outcome["claims"])
        any_failed |= failed > 0
        print(f"== {name}: {matched} matched, {failed} not matched, "
              f"{skipped} not evaluated; {time.perf_counter() - started:.1f} s")
        print(format_claims(outcome["claims"]))
        print(f"report: {outcome['html_path']}\ndata:   {outcome['json_path']}\n")
    if args.strict and any_failed:
        return EXIT_NOT_MATCHED
    return EXIT_OK
