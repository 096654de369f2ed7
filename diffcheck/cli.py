"""The ``diffcheck`` command line: a thin layer of click over :mod:`diffcheck.runner` and
the report writers.

The exit code of ``diffcheck run`` is :attr:`diffcheck.results.RunReport.exit_code` and is
computed nowhere else: 0 every case passed, 1 a case failed, 2 a usage error or an invalid
case file, 3 an internal error, 5 no case found, 130 interrupted (Ctrl-C or SIGTERM: what had
finished is still reported and written).
"""

from __future__ import annotations

import os
import platform
import signal
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .version import __version__

from . import runner
from .case import DTYPES
from .errors import MissingDependency
from .runner.keyword import KeywordError, compile_keyword
from .baseline import DEFAULT_FACTOR, RATIO_FLOOR, diff_runs, read_run, render_diff
from .report import STDOUT, append_text, write_text
from .report.ci import github_annotations, github_step_summary_path, junit_xml, step_summary
from .report.console import render_console
from .report.jsonout import write_json
from .report.markdown import write_markdown
from .results import EXIT_INVALID, CaseReport, RunReport, merge_reports
from .runner.shard import parse_shard

#: frames of an unexpected exception's traceback shown on stderr
TRACEBACK_FRAMES = 5


def _check_keyword(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            compile_keyword(value)
        except KeywordError as err:
            raise click.BadParameter(str(err)) from None
    return value


def _check_device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value == "cpu":
        return value  # the one device that needs no torch import to vouch for it
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError) as err:
        raise click.BadParameter(f"{value!r} is not a torch device ({err})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available on this machine; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise click.BadParameter("MPS is not available on this machine; use --device cpu")
    return value


def _check_jobs(ctx: click.Context, param: click.Parameter, value: str | int) -> int | str:
    if str(value).strip().lower() == "auto":
        return "auto"
    try:
        jobs = int(value)
    except (TypeError, ValueError):
        raise click.BadParameter(f"{value!r} is neither a number of jobs nor 'auto'") from None
    if jobs < 1:
        raise click.BadParameter(f"{jobs} is not a number of jobs (1 or more, or 'auto')")
    return jobs


auto_jobs = runner.auto_jobs  # -j auto: the runner's policy (diffcheck.runner.limits)


def _stdout_console(to_stderr: bool = False) -> Console:
    """The console report's console: stdout, or stderr when stdout carries a file (``--json -``).
    Logs (CI) get a fixed, wide table instead of rich's 80 columns; COLUMNS still wins."""
    stream = sys.stderr if to_stderr else sys.stdout
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(width=160 if wide else None, highlight=False, stderr=to_stderr)


def _check_shard(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        return parse_shard(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def _one_stdout(*files: str | None) -> None:
    if sum(f == STDOUT for f in files) > 1:
        raise click.UsageError("only one output can go to stdout ('-')")


def _read_run_or_exit(path: str) -> RunReport:
    """A run's JSON, or exit 2 with the reason (a usage error, like a bad case file)."""
    try:
        return read_run(path)
    except ValueError as err:
        click.echo(f"error: {err}", err=True)
        raise SystemExit(EXIT_INVALID) from None


def _write_outputs(report: RunReport, console: Console, errors_console: Console, verbosity: int,
                   report_dir: str | None, json_file: str | None, junit_file: str | None,
                   output_format: str, plots: bool = True) -> None:
    """Every output a run or a merge asked for. One broken writer does not cost the others:
    it becomes an internal error (exit 3) and the rest are still written."""
    outputs: list[tuple[str, Callable[[], object]]] = []
    if output_format == "github":
        outputs.append(("GitHub annotations", lambda: _print_raw(console, github_annotations(report))))
    outputs.append(("console report", lambda: render_console(report, console, verbosity, errors_console)))
    if report.baseline is not None:
        outputs.append(("baseline comparison", lambda: render_diff(report.baseline, console)))
    if report_dir is not None:
        outputs.append((f"Markdown report {report_dir}", lambda: write_markdown(report, report_dir, plots=plots)))
    if json_file is not None:
        outputs.append((f"JSON file {json_file}", lambda: write_json(report, json_file)))
    if junit_file is not None:
        outputs.append((f"JUnit XML file {junit_file}", lambda: write_text(junit_file, junit_xml(report))))
    summary_file = github_step_summary_path()
    if summary_file:
        outputs.append(("GitHub step summary", lambda: append_text(summary_file, step_summary(report))))
    for what, produce in outputs:
        try:
            produce()
        except Exception:  # one broken writer must not cost the others
            message = f"writing the {what} failed:\n{_short_traceback()}"
            report.internal_errors.append(message)
            errors_console.print("internal error: " + message, markup=False, soft_wrap=True)


def _print_raw(console: Console, text: str) -> None:
    """Lines that must reach the log byte for byte (workflow commands): no wrapping, no markup."""
    console.file.write(text)
    console.file.flush()


@contextmanager
def _progress_display(console: Console, enabled: bool) -> Iterator[Callable[[CaseReport], None]]:
    """A callback for :func:`runner.run` that ticks a progress display on a terminal."""
    if not enabled:
        yield lambda case: None
        return
    columns = (SpinnerColumn(), TextColumn("{task.completed} cases checked"), BarColumn(),
               TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("", total=None)

        def tick(case: CaseReport) -> None:
            progress.update(task, advance=1, description=case.name)
        # the runner announces the number of cases, and the spinner becomes a bar
        tick.set_total = lambda n: progress.update(task, total=n)  # type: ignore[attr-defined]
        yield tick


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI runner cancelling the job, `kill`) ends the run as Ctrl-C does: what has
    finished is reported and written, exit 130."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _short_traceback() -> str:
    """The exception being handled, with only its innermost frames."""
    return traceback.format_exc(limit=-TRACEBACK_FRAMES)


def _crash_report(cases: list[CaseReport], seed: int | None, started: float) -> RunReport:
    """What a run that raised had produced: the cases finished so far and the traceback."""
    try:
        versions = runner.versions()
    except Exception:  # torch or sympy itself is what broke
        versions = {"diffcheck": __version__, "python": platform.python_version()}
    return RunReport(
        results=[r for case in cases for r in case.results],
        cases=list(cases),
        internal_errors=[_short_traceback()],
        seed=seed,
        versions=versions,
        seconds=time.perf_counter() - started,
    )


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """``--version``: diffcheck's and every version a bug report needs, one per line."""
    if not value or ctx.resilient_parsing:
        return
    from .environment import versions

    found = versions(optional_backends=True)
    click.echo(f"diffcheck {found.pop('diffcheck')}")
    for name, version in found.items():
        click.echo(f"  {name} {version or 'not installed'}")
    ctx.exit(0)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the versions of diffcheck, torch, SymPy, Python and the optional backends.")
def main() -> None:
    """Check PyTorch autograd against exact SymPy derivatives, case by case."""
    from .environment import quiet_torch_warnings

    quiet_torch_warnings()


def _with_examples(paths: tuple[str, ...], examples: bool) -> list[str]:
    """PATH... and, with ``--examples``, the example cases shipped with diffcheck."""
    if examples:
        from .environment import examples_dir

        try:
            paths = (*paths, str(examples_dir()))
        except MissingDependency as err:
            raise click.ClickException(str(err)) from None
    if not paths:
        raise click.UsageError("give a PATH of case files or folders, or --examples for the "
                               "example cases shipped with diffcheck")
    return list(paths)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True), metavar="PATH...")
@click.option("--examples", is_flag=True,
              help="Also check the example cases shipped with diffcheck (see `diffcheck init`).")
@click.option("-k", "keyword", metavar="EXPR", callback=_check_keyword,
              help="Only cases whose name matches EXPR, e.g. 'softmax and not log'.")
@click.option("--dtype", "dtypes", multiple=True, type=click.Choice(DTYPES),
              help="Check in this dtype instead of each case's own (repeatable).")
@click.option("--seed", type=int, metavar="N", help="Seed every case's random points with this.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Write a Markdown report to DIR/index.md, with plots in DIR/plots/.")
@click.option("--no-plots", "no_plots", is_flag=True,
              help="Write the --report without plots (drawing them takes about a second of CPU "
                   "per ten cases; they need matplotlib, the `plots` extra).")
@click.option("--json", "json_file", type=click.Path(dir_okay=False),
              help="Write the results as JSON to FILE ('-': stdout, the console then goes to stderr).")
@click.option("--junit-xml", "junit_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write JUnit XML to FILE for CI servers: one testcase per case ('-': stdout).")
@click.option("--format", "output_format", type=click.Choice(["console", "github"]), default="console",
              show_default=True,
              help="github: also print a GitHub Actions ::error annotation on the line of each failing "
                   "case and each case-file error.")
@click.option("--baseline", "baseline_file", type=click.Path(exists=True, dir_okay=False), metavar="OLD.json",
              help="Compare with an earlier run's JSON: a case that got worse, appeared or disappeared, "
                   "or whose error ÷ allowed grew, fails the run (exit 1).")
@click.option("--ratio-factor", type=click.FloatRange(min=1.0), default=DEFAULT_FACTOR, show_default=True,
              metavar="F", help="With --baseline or compare: an error ÷ allowed that grows more than F times "
                                f"(to at least {RATIO_FLOOR}) is a regression.")
@click.option("--shard", "shard", callback=_check_shard, metavar="K/N",
              help="Check only shard K of N (a stable split of the cases by file and name, for a CI "
                   "matrix); join the shards' JSON with `diffcheck merge`.")
@click.option("-x", "--fail-fast", is_flag=True, help="Stop at the first failing case.")
@click.option("-v", "--verbose", count=True, help="Say more (repeatable).")
@click.option("-q", "--quiet", count=True, help="Show only failures and the summary.")
@click.option("--device", default="cpu", show_default=True, callback=_check_device,
              metavar="DEVICE",
              help="Torch device to run autograd on: cpu, cuda, cuda:1, mps…")
@click.option("--search", is_flag=True, help="Search each domain for the worst point.")
@click.option("-j", "--jobs", default="auto", show_default=True, metavar="N|auto", callback=_check_jobs,
              help="Check this many cases at once, each in a worker process under a time and memory "
                   "limit; auto: one per CPU (at most 8).")
@click.option("--in-process", is_flag=True,
              help="Check every case in this process (for a debugger): no hard time or memory limit, "
                   "and a crash ends the run.")
@click.option("--no-cache", is_flag=True, help="Recompute exact derivatives; ignore the cache.")
@click.option("--allow-imports", is_flag=True, default=None,
              help="Let `imports:` in case files import and run Python modules (code you trust). "
                   "Also: allow-imports = true under [tool.diffcheck] in ./pyproject.toml.")
@click.pass_context
def run(ctx: click.Context, paths: tuple[str, ...] | list[str], examples: bool, keyword: str | None,
        dtypes: tuple[str, ...], seed: int | None, report_dir: str | None, no_plots: bool,
        json_file: str | None, junit_file: str | None, output_format: str, baseline_file: str | None,
        ratio_factor: float, shard: tuple[int, int] | None, fail_fast: bool, verbose: int, quiet: int,
        device: str, search: bool, jobs: int | str, in_process: bool, no_cache: bool,
        allow_imports: bool | None) -> None:
    """Check the cases in PATH... (YAML files, or folders searched for them)."""
    verbosity = max(-1, verbose - quiet)
    paths = _with_examples(paths, examples)
    _one_stdout(json_file, junit_file)
    baseline = _read_run_or_exit(baseline_file) if baseline_file else None
    options = runner.RunOptions(
        keyword=keyword, dtypes=dtypes, seed=seed, fail_fast=fail_fast, verbose=verbosity,
        device=device, search=search, jobs=jobs, in_process=in_process, cache=not no_cache,
        allow_imports=True if allow_imports else None, shard=shard,
    )
    console = _stdout_console(to_stderr=STDOUT in (json_file, junit_file))
    errors_console = Console(stderr=True, highlight=False)
    finished: list[CaseReport] = []
    started = time.perf_counter()
    with _progress_display(console, console.is_terminal and verbosity >= 0) as tick:
        def progress(case: CaseReport) -> None:
            finished.append(case)
            tick(case)
        if hasattr(tick, "set_total"):
            progress.set_total = tick.set_total  # type: ignore[attr-defined]

        try:
            with _terminate_as_interrupt():
                report = runner.run(paths, options, progress)
        except Exception:  # an internal error still reports what was produced, exit 3
            report = _crash_report(finished, seed, started)
    if report.interrupted:
        errors_console.print(f"interrupted: {len(report.cases)} cases checked, {len(report.not_run)} not run",
                             markup=False)

    if baseline is not None:
        report.baseline = diff_runs(baseline, report, ratio_factor)
    _write_outputs(report, console, errors_console, verbosity, report_dir, json_file, junit_file,
                   output_format, plots=not no_plots)
    ctx.exit(report.exit_code)


def entry() -> None:
    """The ``diffcheck`` script and ``python -m diffcheck``: :func:`main`, then an immediate exit.

    Tearing the interpreter down after torch (and torch._dynamo, which forward-mode AD
    imports) costs about 0.5 s on the project machine, a quarter of the time of a small run.
    Every result is written by then, so the process flushes its streams and leaves with
    ``os._exit``. Under coverage, which writes its data at exit, it exits normally.
    """
    try:
        main(prog_name="diffcheck")
        code = 0
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            code = done.code or 0
        else:  # click exits with a message in a few places
            print(done.code, file=sys.stderr)
            code = 1
    if "coverage" in sys.modules:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can reach it
            pass
    os._exit(code)


@main.command("list")
@click.argument("paths", nargs=-1, type=click.Path(exists=True), metavar="PATH...")
@click.option("--examples", is_flag=True, help="Also list the example cases shipped with diffcheck.")
@click.option("-k", "keyword", metavar="EXPR", callback=_check_keyword,
              help="Only cases whose name matches EXPR.")
@click.pass_context
def list_(ctx: click.Context, paths: tuple[str, ...], examples: bool, keyword: str | None) -> None:
    """List the cases in PATH... without checking them."""
    cases, errors = runner.list_cases(_with_examples(paths, examples), keyword)
    for case in cases:
        click.echo(f"{case.location.file}:{case.location.line} {case.name} — {case.expr}")
    for error in errors:
        click.echo(str(error), err=True)
    # The exit code has one home, RunReport.exit_code: 2 invalid files, 5 none found.
    listed = RunReport(cases=[CaseReport(c.name, c.file) for c in cases], errors=list(errors))
    ctx.exit(listed.exit_code)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False), metavar="DIR")
@click.option("--force", is_flag=True, help="Overwrite case files that are already there.")
def init(directory: str, force: bool) -> None:
    """Write the example cases shipped with diffcheck into DIR, to run and to edit."""
    from .environment import example_files, examples_dir

    try:
        source, target = examples_dir(), Path(directory)
    except MissingDependency as err:
        raise click.ClickException(str(err)) from None
    names = example_files()
    clashes = [n for n in names if (target / n).exists()]
    if clashes and not force:
        raise click.ClickException(
            f"{len(clashes)} of the example files are already in {directory} "
            f"({', '.join(map(str, clashes[:3]))}{', …' if len(clashes) > 3 else ''}); "
            "pass --force to overwrite them")
    for name in names:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes((source / name).read_bytes())
    click.echo(f"wrote {len(names)} case files to {directory}; run them with: "
               f"diffcheck run {directory}")


@main.command()
@click.argument("old", type=click.Path(exists=True, dir_okay=False), metavar="OLD.json")
@click.argument("new", type=click.Path(exists=True, dir_okay=False), metavar="NEW.json")
@click.option("--ratio-factor", type=click.FloatRange(min=1.0), default=DEFAULT_FACTOR, show_default=True,
              metavar="F", help="An error ÷ allowed that grows more than F times (to at least "
                                f"{RATIO_FLOOR}) is a regression.")
@click.pass_context
def compare(ctx: click.Context, old: str, new: str, ratio_factor: float) -> None:
    """What changed from the run OLD.json to the run NEW.json (both written by --json).

    A result regresses when its status gets worse, when it appears or disappears, or when its
    error ÷ allowed grows more than --ratio-factor times. Exit 1 on a regression, 0 otherwise,
    2 when a file is not a diffcheck JSON report."""
    diff = diff_runs(_read_run_or_exit(old), _read_run_or_exit(new), ratio_factor)
    render_diff(diff, _stdout_console())
    ctx.exit(diff.exit_code)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False),
                metavar="SHARD.json...")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Write the Markdown report of the whole run to DIR/index.md, with the plots a "
                   "single run draws (from the shards' JSON) in DIR/plots/.")
@click.option("--no-plots", "no_plots", is_flag=True,
              help="Write the --report without plots (drawing them takes about a second of CPU "
                   "per ten cases; they need matplotlib, the `plots` extra).")
@click.option("--json", "json_file", type=click.Path(dir_okay=False),
              help="Write the merged results as JSON to FILE ('-': stdout).")
@click.option("--junit-xml", "junit_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write JUnit XML of the whole run to FILE ('-': stdout).")
@click.option("--format", "output_format", type=click.Choice(["console", "github"]), default="console",
              show_default=True, help="github: also print GitHub Actions ::error annotations.")
@click.option("-v", "--verbose", count=True, help="Say more (repeatable).")
@click.option("-q", "--quiet", count=True, help="Show only failures and the summary.")
@click.pass_context
def merge(ctx: click.Context, files: tuple[str, ...], report_dir: str | None, no_plots: bool, json_file: str | None,
          junit_file: str | None, output_format: str, verbose: int, quiet: int) -> None:
    """Join the JSON files of the shards of one suite (run --shard K/N) into one run: one
    console report, one Markdown report, one JSON and one exit code, as a single run gives."""
    _one_stdout(json_file, junit_file)
    runs = [_read_run_or_exit(f) for f in files]
    report = merge_reports(runs)
    errors_console = Console(stderr=True, highlight=False)
    versions = {tuple(sorted(r.versions.items())) for r in runs}
    if len(versions) > 1:
        errors_console.print("warning: the shards ran with different versions; the first one's are kept",
                             markup=False)
    console = _stdout_console(to_stderr=STDOUT in (json_file, junit_file))
    _write_outputs(report, console, errors_console, max(-1, verbose - quiet), report_dir, json_file,
                   junit_file, output_format, plots=not no_plots)
    ctx.exit(report.exit_code)
