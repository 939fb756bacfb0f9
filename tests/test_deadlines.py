"""collector/deadlines.py: one sweep for many deadlines."""

from __future__ import annotations

import asyncio

from collector.deadlines import DeadlineSweep


async def test_a_deadline_fires_once_within_a_tick_unless_finished_first() -> None:
    expired: list[str] = []
    sweep: DeadlineSweep[str] = DeadlineSweep(0.3, expired.append)
    loop = asyncio.get_running_loop()
    started = loop.time()
    sweep.start("late")
    sweep.start("done")
    sweep.finish("done")
    while not expired:
        await asyncio.sleep(0.02)
    assert expired == ["late"]
    assert 0.3 <= loop.time() - started <= 0.3 + 2 * DeadlineSweep.TICK_S
    await asyncio.sleep(2 * DeadlineSweep.TICK_S)
    assert expired == ["late"]


async def test_the_sweep_stops_when_nothing_waits_and_starts_again() -> None:
    expired: list[int] = []
    sweep: DeadlineSweep[int] = DeadlineSweep(0.1, expired.append)
    sweep.start(1)
    await asyncio.sleep(0.1 + 2 * DeadlineSweep.TICK_S)
    assert expired == [1]
    assert sweep._sweeper is None  # no task left running for an idle server
    sweep.start(2)
    await asyncio.sleep(0.1 + 2 * DeadlineSweep.TICK_S)
    assert expired == [1, 2]
    sweep.close()
