"""Passive Visual Match (Hung et al. 2019; ``passive-visual-{N}-v0`` in Memory-RL, ``VisualMatch-SR-v0`` in SHM)."""

from collections.abc import Sequence
from typing import Any

import numpy as np

from sb3_shm.envs.grid import COLOURS, COLS, PLAYER, ROWS, PhasedGridEnv, cells, wall_mask

EXPLORE_GRID = (
    "           ",
    "    ppp    ",
    "    p+p    ",
    "    ppp    ",
    "           ",
    "           ",
    "           ",
)
FINAL_GRID = (
    "###########",
    "# b  c  e #",
    "#         #",
    "#         #",
    "####   ####",
    "   # + #   ",
    "   #####   ",
)
RING_CELLS = cells(EXPLORE_GRID, "p")  # (8, 2)
# Door positions, left to right: (1, 2), (1, 5), (1, 8).
DOOR_CELLS = np.concatenate([cells(FINAL_GRID, door) for door in "bce"])


class VisualMatchEnv(PhasedGridEnv):
    """
    Passive Visual Match: remember a colour across a distractor phase, then walk to the door of that colour.

    1. explore: the player is locked inside a 3x3 ring of walls; one ring cell shows the target colour (one of three
       pure colours: red, green, blue). The player cannot move.
    2. distractor: collect apples (``apple_reward`` each) in the apple room.
    3. final: three coloured doors at the top of the reward room (4 moves to the middle one, 7 to a side one).
       Touching the door of the target colour gives ``final_reward``; touching any door makes all doors vanish
       (one try). ``info["is_success"]`` (and ``info["success"]``, the source's key) at the last step says whether
       the target door was touched.

    Every episode lasts ``explore_length + distractor_length + final_length`` steps. The target is drawn uniformly
    per episode, so a policy without memory succeeds with probability 1/3 at best.

    Colour-to-door map: one map for every instance, ``door_colours=(0, 1, 2)`` (red, green, blue from left to right)
    by default, so that all the envs of a VecEnv and the evaluation env pose the same task. That is the source's
    training task: it trained and evaluated on one env instance (``learner.py``: ``eval_env = train_env``), so its agent
    only ever saw one map and could pick the door from the remembered colour alone. Any permutation poses the same task
    up to a relabelling of the colours. Deviation: the source drew its instance's map from an unseeded RNG; a fixed
    default keeps runs reproducible and agents portable between runs.

    ``door_colours=None`` draws a map per instance instead (what the source's env does when several instances exist),
    from ``self.np_random`` at the first reset and again at every reset given a seed. The 8 instances of an SB3 VecEnv
    then show up to 6 different maps, which adds a second skill: looking at the doors (only one or two are in view at
    a time) and comparing them with the remembered colour: a harder task than the paper's (``docs/envs.md``).

    Defaults follow the SHM code (phases 15 / N / 10, ``final_reward=10``); Memory-RL used phases 15 / N / 15 with
    ``final_reward=5``. The default distractor length 15 is short for CPU runs; the papers used 250 and 500.

    :param distractor_length: steps of the distractor phase (>= 0)
    :param explore_length: steps of the explore phase (>= 1)
    :param final_length: steps of the final phase (>= 1; the oracle needs 7)
    :param final_reward: reward for touching the target door (> 0)
    :param door_colours: colours (0 red, 1 green, 2 blue) of the doors left to right, a permutation of
        ``(0, 1, 2)`` used by every episode of every instance (default ``(0, 1, 2)``: the source's one-map task);
        None draws a map per instance (a harder task, see above)
    :param kwargs: apple, observation and render options of :class:`sb3_shm.envs.grid.PhasedGridEnv`
    """

    def __init__(
        self,
        distractor_length: int = 15,
        explore_length: int = 15,
        final_length: int = 10,
        final_reward: float = 10.0,
        door_colours: Sequence[int] | None = (0, 1, 2),
        **kwargs: Any,
    ) -> None:
        super().__init__(distractor_length, explore_length, final_length, final_reward, **kwargs)
        if door_colours is not None and sorted(np.asarray(door_colours).ravel().tolist()) != [0, 1, 2]:
            raise ValueError(
                f"door_colours must be a permutation of (0, 1, 2) (red, green, blue, doors left to right) or None, "
                f"got {door_colours!r}"
            )
        self.fixed_door_colours = None if door_colours is None else np.asarray(door_colours, dtype=int).ravel()
        self._door_colours: np.ndarray | None = self.fixed_door_colours
        self._target_door = 0
        self._target_cell = RING_CELLS[0]
        self._doors_visible = True
        self._touched_door: int | None = None

    @property
    def door_colours(self) -> np.ndarray:
        """Colour (0 red, 1 green, 2 blue) of each door, left to right, shape ``(3,)`` (hidden state)."""
        if self._door_colours is None:
            raise RuntimeError("door_colours is drawn at the first reset(): call reset() first")
        return self._door_colours.copy()

    @property
    def target_door(self) -> int:
        """Index (0 left, 1 middle, 2 right) of this episode's target door (hidden state)."""
        return self._target_door

    @property
    def touched_door(self) -> int | None:
        """Index (0 left, 1 middle, 2 right) of the door touched in this episode's final phase, None before."""
        return self._touched_door

    @property
    def target_colour(self) -> int:
        """Colour (0 red, 1 green, 2 blue) shown in the explore phase (hidden state)."""
        return int(self.door_colours[self._target_door])

    def _new_episode(self, seeded: bool) -> None:
        if self.fixed_door_colours is None and (seeded or self._door_colours is None):
            self._door_colours = self.np_random.permutation(3)
        self._target_door = int(self.np_random.integers(3))
        self._touched_door = None

    def _start_explore(self) -> None:
        self._target_cell = RING_CELLS[self.np_random.integers(len(RING_CELLS))]
        # The ring is walls but for the target cell, which is impassable too: all ring cells block the player.
        self._walls = np.zeros((ROWS, COLS), dtype=bool)
        self._walls[tuple(RING_CELLS.T)] = True
        self._player = cells(EXPLORE_GRID, "+")[0]

    def _update_explore(self, action: int) -> float:
        self._move(action)  # always blocked: the player is walled in
        return 0.0

    def _paint_explore(self, canvas: np.ndarray) -> None:
        canvas[tuple(self._target_cell)] = COLOURS + self.target_colour
        canvas[tuple(self._player)] = PLAYER

    def _start_final(self) -> None:
        self._walls = wall_mask(FINAL_GRID)
        self._player = cells(FINAL_GRID, "+")[0]
        self._doors_visible = True

    def _update_final(self, action: int) -> float:
        self._move(action)
        if not self._doors_visible:
            return 0.0
        touched = np.flatnonzero((DOOR_CELLS == self._player).all(axis=1))
        if len(touched) == 0:
            return 0.0
        self._doors_visible = False
        self._touched_door = int(touched[0])
        if touched[0] == self._target_door:
            self._success = True
            return self.final_reward
        return 0.0

    def _paint_final(self, canvas: np.ndarray) -> None:
        canvas[tuple(self._player)] = PLAYER
        if self._doors_visible:
            canvas[tuple(DOOR_CELLS.T)] = COLOURS + self.door_colours
