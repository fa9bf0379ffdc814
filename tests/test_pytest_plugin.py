"""The pytest plugin shipped in aurous_async.testing, run in an inner pytest as users run it."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "test_with_emulator.py"
PLUGIN = "aurous_async.testing._pytest_plugin"
# The inner run's configuration: what a careful user's suite has.
INI = "[pytest]\nfilterwarnings = error\n"


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    """Installing the package makes pytest load the plugin by itself."""
    plugins = {e.name: e.value for e in entry_points(group="pytest11")}
    assert plugins.get("aurous_async") == PLUGIN


def test_the_recipe_suite_passes_with_the_auto_loaded_plugin(pytester: pytest.Pytester) -> None:
    """examples/test_with_emulator.py passes with no conftest: the fixtures come by themselves."""
    pytester.makeini(INI)
    pytester.makepyfile(test_recipe=EXAMPLE.read_text(encoding="utf-8"))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


def test_the_fixtures_can_be_overridden_and_share_one_clock(pytester: pytest.Pytester) -> None:
    """Overriding aurous_emulator_settings changes the emulator; aurous_env points AsyncAurous()."""
    pytester.makeini(INI)
    pytester.makepyfile(
        test_override="""
        import attrs
        import pytest
        from aurous_async import AsyncAurous

        pytestmark = pytest.mark.anyio

        @pytest.fixture
        def aurous_emulator_settings(aurous_emulator_settings):
            return attrs.evolve(aurous_emulator_settings, initial_credits=7.0)

        async def test_settings(aurous_client, aurous_emulator, aurous_clock):
            assert (await aurous_client.balance.get()).available_credits == 7.0
            assert aurous_emulator.clock is aurous_clock

        async def test_env(aurous_env):
            async with AsyncAurous() as client:
                assert client.base_url == aurous_env.base_url
                assert (await client.team.get()).id == aurous_env.team_id
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_suite_that_uses_no_fixture_is_untouched(pytester: pytest.Pytester) -> None:
    """The plugin only adds fixtures: a plain synchronous suite runs as before."""
    pytester.makeini(INI)
    pytester.makepyfile(test_plain="def test_one():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--fixtures")
    result.stdout.fnmatch_lines(["*aurous_emulator*", "*aurous_client*"])
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
