"""The pytest plugin's fixtures, as a user's test suite meets them."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _ini(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )


@pytest.mark.parametrize(
    "signature",
    ["luma_emulator, luma_virtual_time", "luma_virtual_time, luma_emulator"],
)
def test_emulator_and_virtual_time_together_fail_at_setup_saying_why(
    pytester: pytest.Pytester, signature: str
) -> None:
    pytester.makepyfile(
        f"""
        import asyncio
        from luma_async import LumaSession

        def test_both({signature}):
            async def main():
                async with LumaSession(
                    luma_emulator.api_key, base_url=luma_emulator.base_url
                ) as luma:
                    task = await luma.generate("a fox")
                    await luma.wait(task.id)
            asyncio.run(main())
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:socket")
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "do not mix" in out
    assert "async with LumaEmulator()" in out  # what to use instead
    assert "PollTimeoutError" in out  # what would have gone wrong
    assert "Traceback" not in out


def test_each_fixture_alone_still_works(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from luma_async import _clock

        @pytest.mark.luma_emulator(time_scale=0.01)
        def test_emulator(luma_emulator):
            assert luma_emulator.base_url.startswith("http://127.0.0.1:")

        def test_virtual_time(luma_virtual_time):
            before = _clock.monotonic()
            luma_virtual_time.advance(5)
            assert _clock.monotonic() - before >= 5
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:socket")
    result.assert_outcomes(passed=2)
