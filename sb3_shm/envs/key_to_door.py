"""Key-to-Door (Hung et al. 2019; ``SR-{N}-v0`` in Memory-RL, ``KeytoDoor-SR-v0`` in SHM)."""

from typing import Any

import numpy as np

from sb3_shm.envs.grid import DOOR, INDICATOR, KEY, PLAYER, PhasedGridEnv, cells, wall_mask

EXPLORE_GRID = (
    "  #######  ",
    "  #kkkkk#  ",
    "  #kkkkk#  ",
    "  ##   ##  ",
    "  #+++++#  ",
    "  #+++++#  ",
    "  #######  ",
)
FINAL_GRID = (
    "           ",
    "   ##d##   ",
    "   #   #   ",
    "   # + #   ",
    "   #   #   ",
    "   #####   ",
    "           ",
)
KEY_CELLS = cells(EXPLORE_GRID, "k")  # (10, 2)
START_CELLS = cells(EXPLORE_GRID, "+")  # (10, 2)
INDICATOR_CELL = (0, 5)
DOOR_CELL = tuple(cells(FINAL_GRID, "d")[0])


class KeyToDoorEnv(PhasedGridEnv):
    """
    Key-to-Door: pick up a key early, get rewarded for it only after a long distractor phase (credit assignment).

    1. explore: a 7x11 room; the key lies on a random cell of a 2x5 upper area, the player starts on a random cell
       of a 2x5 lower area. Stepping on the key takes it (no reward) and shows a white indicator at the top of the
       room for that one step.
    2. distractor: collect apples (``apple_reward`` each) in the apple room.
    3. final: a small room with a door two cells north of the player. The door blocks the player unless it holds the
       key; stepping onto it with the key gives ``final_reward`` once. ``info["is_success"]`` (and
       ``info["success"]``, the source's key) at the last step says whether the door was opened.

    Every episode lasts ``explore_length + distractor_length + final_length`` steps. Whether the player holds the key
    is not observed in the final phase, but "always go north" needs no memory there: this task tests credit
    assignment over the delay rather than memory. The chance level is a random policy's success rate.

    Defaults follow the SHM code (phases 10 / N / 3, ``final_reward=10``); Memory-RL used phases 15 / N / 10 with
    ``final_reward=5``. The default distractor length 15 is short for CPU runs; the papers used 250 and 500.

    :param distractor_length: steps of the distractor phase (>= 0)
    :param explore_length: steps of the explore phase (>= 1; the oracle needs up to 8 to reach the key)
    :param final_length: steps of the final phase (>= 1; the oracle needs 2)
    :param final_reward: reward for opening the door (> 0)
    :param kwargs: apple, observation and render options of :class:`sb3_shm.envs.grid.PhasedGridEnv`
    """

    def __init__(
        self,
        distractor_length: int = 15,
        explore_length: int = 10,
        final_length: int = 3,
        final_reward: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(distractor_length, explore_length, final_length, final_reward, **kwargs)
        self._key = KEY_CELLS[0]
        self._key_visible = True
        self._indicator_visible = False
        self._has_key = False
        self._door_open = False

    @property
    def key_position(self) -> tuple[int, int]:
        """``(row, col)`` of the key in the explore room (hidden state)."""
        return int(self._key[0]), int(self._key[1])

    @property
    def has_key(self) -> bool:
        """Whether the player holds the key (hidden state; it is spent when the door opens)."""
        return self._has_key

    def _new_episode(self, seeded: bool) -> None:
        self._has_key = False

    def _blocked(self) -> np.ndarray:
        if self._phase == 2 and not self._door_open:
            blocked = self._walls.copy()
            blocked[DOOR_CELL] = True
            return blocked
        return self._walls

    def _start_explore(self) -> None:
        self._walls = wall_mask(EXPLORE_GRID)
        self._key = KEY_CELLS[self.np_random.integers(len(KEY_CELLS))]
        self._player = START_CELLS[self.np_random.integers(len(START_CELLS))]
        self._key_visible = True
        self._indicator_visible = False

    def _update_explore(self, action: int) -> float:
        self._move(action)
        self._indicator_visible = False
        if self._key_visible and (self._player == self._key).all():
            self._key_visible = False
            self._has_key = True
            self._indicator_visible = True
        return 0.0

    def _paint_explore(self, canvas: np.ndarray) -> None:
        if self._key_visible:
            canvas[tuple(self._key)] = KEY
        if self._indicator_visible:
            canvas[INDICATOR_CELL] = INDICATOR
        canvas[tuple(self._player)] = PLAYER

    def _start_final(self) -> None:
        self._walls = wall_mask(FINAL_GRID)
        self._player = cells(FINAL_GRID, "+")[0]
        self._door_open = False

    def _update_final(self, action: int) -> float:
        # As in the source, the door stops blocking for the rest of the phase once the player holds the key.
        self._door_open |= self._has_key
        self._move(action)
        if self._has_key and tuple(self._player) == DOOR_CELL:
            self._has_key = False
            self._success = True
            return self.final_reward
        return 0.0

    def _paint_final(self, canvas: np.ndarray) -> None:
        canvas[tuple(self._player)] = PLAYER
        canvas[DOOR_CELL] = DOOR  # drawn over the player, as the source's z-order
