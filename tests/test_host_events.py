"""An agent's events: a long-lived server process's examined events are dropped without
losing one that a wait under way has not looked at yet. No process: events are fed in."""

import trio
import trio.testing

from harness.host import AgentProcess
from harness.targets import BUILTIN


def feed(agent: AgentProcess, *events: dict) -> None:
    agent.events.extend(events)
    agent._notify()


def test_dropping_examined_events_keeps_what_a_wait_has_not_seen(tmp_path):
    agent = AgentProcess(BUILTIN["stdlib"], {}, tmp_path)
    found = {}

    async def wait(name: str, cid: int) -> None:
        found[name] = await agent.wait_for(lambda e: e.get("id") == cid, 5.0)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait, "early", 1)
            await trio.testing.wait_all_tasks_blocked()
            feed(agent, *({"ev": "noise", "id": 100 + n} for n in range(50)))
            await trio.testing.wait_all_tasks_blocked()  # the wait has looked at all 50
            nursery.start_soon(wait, "late", 2)
            await trio.testing.wait_all_tasks_blocked()
            assert agent.drop_examined_events() == 50
            assert agent.events == []
            feed(agent, {"ev": "command:returned", "id": 2}, {"ev": "x", "id": 3})
            await trio.testing.wait_all_tasks_blocked()
            # "late" found its event; "early" looked at both new ones: both can go.
            assert agent.drop_examined_events() == 2
            feed(agent, {"ev": "command:returned", "id": 1})

    trio.run(main)
    assert found == {
        "early": {"ev": "command:returned", "id": 1},
        "late": {"ev": "command:returned", "id": 2},
    }
    assert agent.drop_examined_events() == 1  # no wait under way: everything goes


def test_a_wait_that_started_behind_keeps_its_events(tmp_path):
    agent = AgentProcess(BUILTIN["stdlib"], {}, tmp_path)
    feed(agent, *({"ev": "noise", "id": n} for n in range(10)))
    seen = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:

            async def wait() -> None:
                seen.append(await agent.wait_for(lambda e: e.get("id") == 99, 5.0, start=4))

            nursery.start_soon(wait)
            await trio.testing.wait_all_tasks_blocked()
            assert agent.drop_examined_events() == 10  # it looked from 4 to the end
            feed(agent, {"ev": "late", "id": 99})

    trio.run(main)
    assert seen == [{"ev": "late", "id": 99}]
