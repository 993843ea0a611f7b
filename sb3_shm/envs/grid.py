"""Shared engine of the three-phase grid worlds (VisualMatch, KeyToDoor) of Hung et al. (2019).

A plain-numpy re-implementation of the pycolab games of DeepMind's TVT code, as used by Ni et al. (2023, Memory-RL)
and the SHM paper (``envs/key_to_door/{common,objects}.py``). An episode is three phases, each lasting exactly a fixed
number of steps (a timer: collecting a reward does not end a phase early):

1. explore (game specific: see a colour / pick up a key),
2. distractor: a 7x11 room with apples worth ``apple_reward`` that respawn ``apple_respawn`` steps after being eaten,
3. final (game specific: the reward room).

The agent sees a 5x5 egocentric RGB crop centred on the player, padded with the background colour.
As in pycolab's ``Story``, the last frame of the first two phases is never observed: the step that ends a phase
returns the first frame of the next one.
"""

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

# Actions, as in the source: north, south, west, east.
MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]])

# Palette indices of the cells of a room.
BACKGROUND, WALL, PLAYER, KEY, DOOR, APPLE, INDICATOR = range(7)
# First of the three palette entries of the VisualMatch colours (red, green, blue).
COLOURS = 7
# Colours on pycolab's 0..1000 scale, turned into uint8 as in the source (colour * 255 / 1000, truncated).
PALETTE = (
    np.array(
        [
            (800, 800, 800),  # background
            (100, 100, 100),  # wall
            (898, 584, 430),  # player
            (627, 321, 176),  # key
            (529, 808, 922),  # door
            (550, 700, 0),  # apple
            (1000, 1000, 1000),  # indicator
            (1000, 0, 0),  # hue 0
            (0, 1000, 0),  # hue 1/3
            (0, 0, 1000),  # hue 2/3
        ]
    )
    * 255
    // 1000
).astype(np.uint8)
# One character per palette entry, for the "human" (text) rendering.
CHARS = " #+kdaiRGB"

ROWS, COLS = 7, 11
CROP = 5  # side of the egocentric view, the player is always at its centre
RENDER_SCALE = 16  # pixels per cell of the full-room "rgb_array" rendering

DISTRACTOR_GRID = (
    "###########",
    "#a a a a a#",
    "# a a a a #",
    "#a a a a a#",
    "# a a a a #",
    "#a a + a a#",
    "###########",
)

PHASES = ("explore", "distractor", "final")


def cells(grid: tuple[str, ...], char: str) -> np.ndarray:
    """
    :param grid: a room as rows of characters
    :param char: the character to look for
    :return: the ``(row, col)`` positions of ``char`` in ``grid``, shape ``(n, 2)``
    """
    return np.argwhere(np.array([list(row) for row in grid]) == char)


def wall_mask(grid: tuple[str, ...]) -> np.ndarray:
    """
    :param grid: a room as rows of characters, walls are ``#``
    :return: boolean mask of the walls, shape ``(ROWS, COLS)``
    """
    return np.array([list(row) for row in grid]) == "#"


APPLE_CELLS = cells(DISTRACTOR_GRID, "a")  # (22, 2)


def check_int(name: str, value: Any, low: int) -> None:
    """
    Raise a ``ValueError`` naming the allowed range unless ``value`` is an integer ``>= low``.

    :param name: argument name, for the message
    :param value: the value to check
    :param low: smallest allowed value
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


class PhasedGridEnv(gym.Env[np.ndarray, np.int64]):
    """
    Base class of VisualMatch and KeyToDoor: phase timer, distractor phase, egocentric observations, rendering.

    Subclasses implement the explore and final phases (``_start_*``, ``_update_*``, ``_paint_*``).

    :param distractor_length: steps of the distractor phase (>= 0), the delay the agent must bridge
    :param explore_length: steps of the explore phase (>= 1)
    :param final_length: steps of the final phase (>= 1)
    :param final_reward: reward of a success in the final phase (> 0)
    :param apple_reward: reward of an apple in the distractor phase (>= 0)
    :param n_apples: apples in the distractor room, on random cells among 22 (0..22)
    :param apple_respawn: an eaten apple reappears after this many steps (0: never)
    :param obs_mode: ``"flat"``: ``Box(0, 1, (75,), float32)``, the CHW crop flattened and scaled to [0, 1]
        (as the source's ``flatten_img=True``, scaled because SB3 does not rescale flat uint8 observations);
        ``"image"``: ``Box(0, 255, (5 * image_scale, 5 * image_scale, 3), uint8)``, an HWC image for ``CnnShmPolicy``
    :param image_scale: pixels per cell in ``"image"`` mode (>= 1); SB3's NatureCNN needs images of at least 36x36,
        so the default 8 gives 40x40 images
    :param render_mode: ``"rgb_array"`` (the whole room, 16 pixels per cell), ``"human"`` (prints the room as text)
        or None
    """

    metadata: dict[str, Any] = {"render_modes": ["human", "rgb_array"], "render_fps": 8}  # noqa: RUF012  (gymnasium's type)

    def __init__(
        self,
        distractor_length: int,
        explore_length: int,
        final_length: int,
        final_reward: float,
        apple_reward: float = 1.0,
        n_apples: int = 10,
        apple_respawn: int = 20,
        obs_mode: str = "flat",
        image_scale: int = 8,
        render_mode: str | None = None,
    ) -> None:
        check_int("distractor_length", distractor_length, 0)
        check_int("explore_length", explore_length, 1)
        check_int("final_length", final_length, 1)
        check_int("apple_respawn", apple_respawn, 0)
        check_int("image_scale", image_scale, 1)
        check_int("n_apples", n_apples, 0)
        if n_apples > len(APPLE_CELLS):
            raise ValueError(f"n_apples must be in 0..{len(APPLE_CELLS)}, got {n_apples}")
        if not final_reward > 0:
            raise ValueError(f"final_reward must be > 0 (success means a positive final reward), got {final_reward}")
        if not apple_reward >= 0:
            raise ValueError(f"apple_reward must be >= 0, got {apple_reward}")
        if obs_mode not in ("flat", "image"):
            raise ValueError(f"obs_mode must be one of 'flat', 'image', got {obs_mode!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.phase_lengths = (explore_length, distractor_length, final_length)
        self.final_reward = float(final_reward)
        self.apple_reward = float(apple_reward)
        self.n_apples = n_apples
        self.apple_respawn = apple_respawn
        self.obs_mode = obs_mode
        self.image_scale = image_scale
        self.render_mode = render_mode

        self.action_space = spaces.Discrete(len(MOVES))
        if obs_mode == "flat":
            self.observation_space = spaces.Box(0.0, 1.0, (3 * CROP * CROP,), np.float32)
        else:
            side = CROP * image_scale
            self.observation_space = spaces.Box(0, 255, (side, side, 3), np.uint8)

        self._running = False
        self._phase = 0
        self._frame = 0
        self._success = False
        self._walls = np.zeros((ROWS, COLS), dtype=bool)
        self._player = np.zeros(2, dtype=int)
        self._apples = np.zeros((ROWS, COLS), dtype=bool)
        # Frame of the last pickup per cell: inf where an apple was never eaten, -1 where no apple ever was.
        self._last_pickup = np.full((ROWS, COLS), -1.0)

    @property
    def episode_length(self) -> int:
        """Steps of every episode: the sum of the phase lengths."""
        return sum(self.phase_lengths)

    @property
    def phase(self) -> str:
        """Current phase: ``"explore"``, ``"distractor"`` or ``"final"`` (hidden state, for tests and oracles)."""
        return PHASES[self._phase]

    @property
    def player_position(self) -> tuple[int, int]:
        """``(row, col)`` of the player in the current room (hidden state)."""
        return int(self._player[0]), int(self._player[1])

    @property
    def walls(self) -> np.ndarray:
        """Boolean mask of the cells the player cannot enter in the current room, shape ``(7, 11)`` (hidden state)."""
        return self._blocked().copy()

    @property
    def apples(self) -> np.ndarray:
        """Boolean mask of the apples of the distractor room, shape ``(7, 11)`` (hidden state)."""
        return self._apples.copy()

    # -- subclass hooks ----------------------------------------------------------------------------------------
    def _new_episode(self, seeded: bool) -> None:
        """Draw the episode's hidden variables; ``seeded``: reset got an explicit seed."""

    def _start_explore(self) -> None:
        raise NotImplementedError

    def _start_final(self) -> None:
        raise NotImplementedError

    def _update_explore(self, action: int) -> float:
        raise NotImplementedError

    def _update_final(self, action: int) -> float:
        raise NotImplementedError

    def _paint_explore(self, canvas: np.ndarray) -> None:
        raise NotImplementedError

    def _paint_final(self, canvas: np.ndarray) -> None:
        raise NotImplementedError

    def _blocked(self) -> np.ndarray:
        """Cells the player cannot enter now; subclasses add their obstacles."""
        return self._walls

    # -- gymnasium API -----------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._new_episode(seeded=seed is not None)
        self._success = False
        self._running = True
        self._enter_phase(0)
        if self.render_mode == "human":
            self.render()
        return self._observe(), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._running:
            raise RuntimeError(f"{type(self).__name__}.step() called before reset() or after the episode ended: call reset()")
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an integer in 0..{len(MOVES) - 1}, got {action!r}")
        self._frame += 1
        reward = (self._update_explore, self._update_distractor, self._update_final)[self._phase](int(action))
        terminated = False
        info: dict[str, Any] = {}
        if self._frame >= self.phase_lengths[self._phase]:
            if self._phase == len(PHASES) - 1:
                terminated = True
                self._running = False
                info = {"is_success": self._success, "success": self._success}
            else:
                self._enter_phase(self._phase + 1)
        if self.render_mode == "human":
            self.render()
        return self._observe(), reward, terminated, False, info

    def render(self) -> np.ndarray | None:
        """
        :return: for ``"rgb_array"``, the whole current room, shape ``(7 * 16, 11 * 16, 3)``, uint8;
            for ``"human"``, prints the room as text and returns None
        """
        if self.render_mode == "rgb_array":
            return np.kron(PALETTE[self._room()], np.ones((RENDER_SCALE, RENDER_SCALE, 1), dtype=np.uint8))
        if self.render_mode == "human":
            print("\n".join("".join(CHARS[i] for i in row) for row in self._room()) + f"\nphase: {self.phase}\n")
            return None
        gym.logger.warn("render() called without a render_mode: pass render_mode='rgb_array' or 'human' to the env")
        return None

    # -- engine ------------------------------------------------------------------------------------------------
    def _enter_phase(self, phase: int) -> None:
        # A zero-length distractor phase is skipped, as pycolab's Story skips a chapter that ends at once.
        while self.phase_lengths[phase] == 0:
            phase += 1
        self._phase = phase
        self._frame = 0
        (self._start_explore, self._start_distractor, self._start_final)[phase]()

    def _move(self, action: int) -> None:
        """Move the player one cell unless the target cell is blocked or outside the room."""
        row, col = self._player + MOVES[action]
        if 0 <= row < ROWS and 0 <= col < COLS and not self._blocked()[row, col]:
            self._player = np.array([row, col])

    def _start_distractor(self) -> None:
        self._walls = wall_mask(DISTRACTOR_GRID)
        self._player = cells(DISTRACTOR_GRID, "+")[0]
        chosen = APPLE_CELLS[self.np_random.permutation(len(APPLE_CELLS))[: self.n_apples]]
        self._apples = np.zeros((ROWS, COLS), dtype=bool)
        self._apples[tuple(chosen.T)] = True
        self._last_pickup = np.where(self._apples, np.inf, -1.0)

    def _update_distractor(self, action: int) -> float:
        self._move(action)
        reward = 0.0
        position = tuple(self._player)
        if self._apples[position]:
            self._apples[position] = False
            self._last_pickup[position] = self._frame
            reward = self.apple_reward
        if self.apple_respawn:
            self._apples |= (self._frame > self._last_pickup + self.apple_respawn) & (self._last_pickup >= 0)
        return reward

    def _paint_distractor(self, canvas: np.ndarray) -> None:
        canvas[self._apples] = APPLE
        canvas[tuple(self._player)] = PLAYER

    def _room(self) -> np.ndarray:
        """:return: palette indices of the current room, shape ``(7, 11)``"""
        canvas = np.where(self._walls, WALL, BACKGROUND)
        (self._paint_explore, self._paint_distractor, self._paint_final)[self._phase](canvas)
        return canvas

    def _observe(self) -> np.ndarray:
        padded = np.pad(self._room(), CROP // 2, constant_values=BACKGROUND)  # (11, 15): the crop never leaves it
        row, col = self._player
        rgb = PALETTE[padded[row : row + CROP, col : col + CROP]]  # (5, 5, 3) HWC, player at the centre
        if self.obs_mode == "flat":
            return rgb.transpose(2, 0, 1).reshape(-1).astype(np.float32) / 255.0  # CHW order, as the source
        return np.kron(rgb, np.ones((self.image_scale, self.image_scale, 1), dtype=np.uint8))
