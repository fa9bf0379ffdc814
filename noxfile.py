"""Sessions: lint, typing, tests, bench, docs, demo, and the interpreter matrix tests_all.

``nox -s demo`` and ``nox -s tests`` are the README's two commands. Every session but
``tests_all`` runs on the interpreter that runs nox (a machine may have only 3.12 or
3.13); ``tests_all`` runs the suite on each supported interpreter that is present and
skips the others (``nox -s tests_all -p 3.10`` picks one).
"""

from __future__ import annotations

import os

import nox

nox.needs_version = ">=2024.4.15"
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typing", "tests"]
# Absent interpreters are skipped, under CI too (where nox's own default is to fail), and
# never downloaded: the matrix covers what the machine has.
nox.options.error_on_missing_interpreters = False
nox.options.download_python = "never"
# A session venv left by another interpreter (nox run by 3.12 yesterday, 3.13 today) is
# rebuilt instead of reused.
os.environ.setdefault("NOX_ENABLE_STALENESS_CHECK", "1")

SUPPORTED_PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
# pytest's "no tests collected" (a -k that matches nothing) is not a failure.
PYTEST_SUCCESS_CODES = [0, 5]
# On Ctrl-C (or CI's time limit) pytest gets this long to print where it was and its summary.
PYTEST_INTERRUPT_TIMEOUT = 15.0


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict over the package and the typing tests of the public API."""
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite against the in-process emulator, with branch coverage."""
    session.install("-e", ".[dev]")
    session.run(
        "pytest",
        "--cov=aurous_async",
        "--cov-branch",
        "--cov-report=term:skip-covered",
        *session.posargs,
        success_codes=PYTEST_SUCCESS_CODES,
        interrupt_timeout=PYTEST_INTERRUPT_TIMEOUT,
    )


@nox.session(python=SUPPORTED_PYTHONS)
def tests_all(session: nox.Session) -> None:
    """The test suite on one supported interpreter, without coverage."""
    session.install("-e", ".[dev]")
    session.run(
        "pytest",
        *session.posargs,
        success_codes=PYTEST_SUCCESS_CODES,
        interrupt_timeout=PYTEST_INTERRUPT_TIMEOUT,
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Ratio benchmarks; prints tables and writes benchmarks/RESULTS.md (``-- --quick``)."""
    session.install("-e", ".[dev,bench]")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The reference site: ``mkdocs build --strict`` into ``site/`` (``-- serve`` previews)."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", *(session.posargs or ["build", "--strict"]))


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: ``aurous batch`` of the sample requests against the embedded emulator.

    ``--emulator`` starts the emulator in-process (the default anyway without an
    ``AUROUS_API_KEY``), so the demo never spends a real account's credits. Re-running
    resumes, and here skips, what ``out/`` already holds.
    """
    session.install("-e", ".")
    args = session.posargs or ["examples/batch.jsonl", "--out", "out", "--yes"]
    session.run("aurous", "batch", *args, "--emulator")
