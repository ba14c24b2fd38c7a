"""Where a generator's choices come from: hypothesis draws, or a seeded ``random.Random``.

Every generator of the fuzzer (``harness.fuzz.grammar``, ``harness.fuzz.site``) is written
once, against a ``Chooser``; ``Drawn`` makes its choices with hypothesis (so that they
shrink), ``Seeded`` with a ``random.Random`` (cheap: a seeded case costs a few
microseconds, a hypothesis draw about a hundred). Both read the same tables, so the
seeded cases are of the same grammar as the drawn ones, never a hand-kept copy of it.

Shrinking (``Drawn``): ``pick`` towards the first item, ``between`` towards ``low`` (or
0 when in range), ``weighted`` towards the first weight, ``chance`` towards False,
``binary`` towards ``b""``. Each table lists its simplest item first.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hypothesis import strategies as st

T = TypeVar("T")


class Chooser:
    """The choices a generator makes (see the module docstring for the shrink order)."""

    def pick(self, items: Sequence[T]) -> T:
        """One of ``items``."""
        raise NotImplementedError

    def between(self, low: int, high: int) -> int:
        """An integer in ``[low, high]``."""
        raise NotImplementedError

    def weighted(self, weights: Sequence[int]) -> int:
        """An index into ``weights``, each with probability weight/sum (seeded)."""
        raise NotImplementedError

    def chance(self, percent: float) -> bool:
        """True ``percent`` times in a hundred (seeded)."""
        raise NotImplementedError

    def binary(self, low: int, high: int) -> bytes:
        """``low`` to ``high`` arbitrary bytes."""
        raise NotImplementedError

    def choose(self, options: Sequence[tuple[int, T]]) -> T:
        """The value of one ``(weight, value)`` option."""
        return options[self.weighted(tuple(w for w, _ in options))][1]


class Seeded(Chooser):
    """Choices from ``random.Random(seed)``: the same seed, the same choices."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._random = self.rng.random

    def pick(self, items: Sequence[T]) -> T:
        """One of ``items``, uniformly."""
        return items[int(self._random() * len(items))]

    def between(self, low: int, high: int) -> int:
        """An integer in ``[low, high]``, uniformly."""
        return low + int(self._random() * (high - low + 1))

    def weighted(self, weights: Sequence[int]) -> int:
        """An index, with probability weight/sum."""
        point = self._random() * sum(weights)
        for index, weight in enumerate(weights):
            point -= weight
            if point < 0:
                return index
        return len(weights) - 1

    def chance(self, percent: float) -> bool:
        """True ``percent`` times in a hundred."""
        return self._random() * 100 < percent

    def choose(self, options: Sequence[tuple[int, T]]) -> T:
        """The value of one ``(weight, value)`` option, with probability weight/sum
        (``weighted`` without building the weights: this runs for every seeded case)."""
        point = self._random() * sum(weight for weight, _ in options)
        for weight, value in options:
            point -= weight
            if point < 0:
                return value
        return options[-1][1]

    def binary(self, low: int, high: int) -> bytes:
        """Random bytes, of a uniform length."""
        return self.rng.randbytes(self.between(low, high))


# Building a strategy validates it, which costs more than a draw: they are made once.
_STRATEGIES: dict[Any, st.SearchStrategy[Any]] = {}


def _cached(key: Any, make: Callable[[], st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    strategy = _STRATEGIES.get(key)
    if strategy is None:
        if len(_STRATEGIES) > 4096:  # positions in long data: keep the table bounded
            _STRATEGIES.clear()
        strategy = _STRATEGIES[key] = make()
    return strategy


class Drawn(Chooser):
    """Choices drawn by hypothesis (``draw`` of an ``st.composite``), which shrink."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self.draw = draw

    def pick(self, items: Sequence[T]) -> T:
        """One of ``items``; shrinks towards the first."""
        items = tuple(items)
        return self.draw(_cached(("pick", items), lambda: st.sampled_from(items)))

    def between(self, low: int, high: int) -> int:
        """An integer in range; shrinks towards ``low`` (0 when in range)."""
        return self.draw(_cached(("int", low, high), lambda: st.integers(low, high)))

    def weighted(self, weights: Sequence[int]) -> int:
        """An index; shrinks towards 0."""
        point = self.between(0, sum(weights) - 1)
        for index, weight in enumerate(weights):
            point -= weight
            if point < 0:
                return index
        return len(weights) - 1

    def chance(self, percent: float) -> bool:
        """True about ``percent`` times in a hundred; shrinks towards False."""
        return self.between(0, 999) >= 1000 - int(percent * 10)

    def binary(self, low: int, high: int) -> bytes:
        """Bytes; shrinks towards ``b""`` (or ``low`` zero bytes)."""
        return self.draw(
            _cached(("bin", low, high), lambda: st.binary(min_size=low, max_size=high))
        )


def strategy(generate: Callable[..., T], *args: Any) -> st.SearchStrategy[T]:
    """A hypothesis strategy of ``generate(chooser, *args)``."""
    return st.composite(lambda draw: generate(Drawn(draw), *args))()
