"""Sessions: lint, typing, tests, bench, demo. ``nox -s tests`` is the README's test command."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["lint", "typing", "tests"]

PYTHON = "3.11"


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typing(session: nox.Session) -> None:
    """mypy --strict over the package and the typing tests of the public API."""
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite against the in-process emulator, with branch coverage."""
    session.install("-e", ".[dev]")
    session.run(
        "pytest",
        "--cov=aurous_async",
        "--cov-branch",
        "--cov-report=term:skip-covered",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Ratio benchmarks; prints tables and writes benchmarks/RESULTS.md (``-- --quick``)."""
    session.install("-e", ".[dev,bench]")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The main job: ``aurous batch`` of the sample requests against the embedded emulator.

    ``--emulator`` starts the emulator in-process (the default anyway without an
    ``AUROUS_API_KEY``), so the demo never spends a real account's credits. Re-running
    resumes, and here skips, what ``out/`` already holds.
    """
    session.install("-e", ".")
    args = session.posargs or ["examples/batch.jsonl", "--out", "out", "--yes"]
    session.run("aurous", "batch", *args, "--emulator")
