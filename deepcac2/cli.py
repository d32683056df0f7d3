"""The ``deepcac2`` console script.

Each subcommand lives in its own module with ``build_parser(parser)`` and
``main(args) -> int``. Modules are imported only when their command runs, so
``deepcac2 --help`` stays fast (torch and dask are slow to import).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys

from deepcac2._version import __version__
from deepcac2.errors import DeepCACError, ErrorCode, disk_full

#: name -> (module, one-line help). The order is the order of a release build.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("deepcac2.pipeline.synth.cli", "generate synthetic NLST-like chest CT with exact ground truth"),
    "cohort": ("deepcac2.pipeline.cohort.cli", "select series from the IDC index or index a local DICOM folder"),
    "fetch": ("deepcac2.pipeline.sources.cli", "download or stage the series of a cohort into a bounded cache"),
    "load": ("deepcac2.pipeline.loader.cli", "load one DICOM series, report geometry and problems"),
    "infer": ("deepcac2.pipeline.infer_cli", "run a heart/CAC model on one series and save the masks"),
    "train": ("deepcac2.pipeline.dev.unet_train_cli", "train the DeepCAC2 U-Net on synthetic series"),
    "score": ("deepcac2.pipeline.scoring.cli", "score a given CAC mask (SEG, NRRD, NIfTI) on its CT series"),
    "evaluate": (
        "deepcac2.release.evaluate_cli",
        "compare two scorings: correlation, kappa, ICC, Bland-Altman",
    ),
    "qa": ("deepcac2.qa.cli", "check a run or release: conformance, round trips, integrity, statistics"),
    "convert": ("deepcac2.pipeline.convert.cli", "write DICOM SEG, DICOM SR and Parquet rows for one series"),
    "release": ("deepcac2.release.cli", "build, verify and diff versioned releases"),
    "query": ("deepcac2.release.query_cli", "run SQL against a release's tables"),
    "run": ("deepcac2.pipeline.orchestrate.cli", "process a cohort end to end on a local or remote Dask cluster"),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deepcac2", description="Coronary artery calcium release toolkit for NLST.")
    p.add_argument("--version", action="version", version=f"deepcac2 {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv or ["--help"])
        return 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    sub = argparse.ArgumentParser(prog=f"deepcac2 {name}", description=COMMANDS[name][1])
    module.build_parser(sub)
    args = sub.parse_args(rest)
    args.command_argv = [name, *rest]  # what was typed: a stopped run prints the exact command to continue
    try:
        return int(module.main(args) or 0)
    except DeepCACError as exc:
        print(f"deepcac2 {name}: error {exc.code.value}: {exc.message}", file=sys.stderr)
        return 3
    except OSError as exc:
        coded = _os_error(exc)
        if coded is None:
            raise
        print(f"deepcac2 {name}: error {coded.code.value}: {coded.message}", file=sys.stderr)
        return 3


#: OS errors that mean "this path cannot be written here" (or read: the message names the path either way)
_ACCESS_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.EEXIST})


def _os_error(exc: OSError) -> DeepCACError | None:
    """A file-system error no command caught, as a coded one-line error; None for anything else (a bug)."""
    if disk_full(exc) is not None:
        return DeepCACError(ErrorCode.E_DISK_FULL, f"no space left writing {exc.filename or 'a file'}")
    if exc.errno in _ACCESS_ERRNOS:
        return DeepCACError(
            ErrorCode.E_OUTPUT_UNWRITABLE, f"cannot access {exc.filename or 'a path'}: {exc.strerror or exc}"
        )
    return None


if __name__ == "__main__":
    sys.exit(main())
