"""
Callbacks for ShmPPO: :class:`MemoryDiagnosticsCallback` logs what the Stable Hadamard Memory is doing.

Use it like any SB3 callback (``model.learn(..., callback=MemoryDiagnosticsCallback(log_freq=1000))``) or from an
RL Zoo hyperparameter file::

    CartPoleNoVel-v1:
      callback:
        - sb3_shm.callbacks.MemoryDiagnosticsCallback:
            log_freq: 1000

See ``docs/callbacks.md`` for what each value means and what the standard SB3 / RL Zoo callbacks do with ShmPPO.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import obs_as_tensor

from sb3_shm.common.memory.shm import ShmCell

if TYPE_CHECKING:
    from sb3_shm.shm_ppo import ShmPPO

__all__ = ["MemoryDiagnosticsCallback"]


class MemoryDiagnosticsCallback(BaseCallback):
    """
    Log diagnostics of the SHM memories to the model's logger (stdout, csv, tensorboard: whatever it writes to).

    Every ``log_freq`` calls (one call = one step of all the ``n_envs`` environments, as ``eval_freq`` of
    ``EvalCallback``), for the actor's memory (``shm/actor/...``) and, when the critic has its own, the critic's
    (``shm/critic/...``):

    - ``memory_abs_max``, ``memory_abs_mean``: max and mean of ``|M|`` over all environments and entries, for the
      memory the agent carries at that step (``model._last_memory_states``);
    - ``calib_near_0``, ``calib_near_2``: share of the calibration entries ``C = decay * (1 + tanh(outer(theta, v_c)))``
      of that step (:meth:`ShmCell.gates <sb3_shm.common.memory.shm.ShmCell.gates>` of the current observation and
      the calibration indices drawn for it) below ``saturation_eps`` (the memory is erased there) or above
      ``2 * decay - saturation_eps`` (at its maximum: it nearly doubles there with the paper's ``decay`` of 1);
    - ``clamp_hit``: share of the entries of ``M`` that sit at the clamp bound (``|M| >= memory_clamp``), and
      ``clamp_hit_envs``: share of environments with at least one such entry (not logged without a clamp);
    - ``eta_mean``: mean write strength ``eta = sigmoid(w_eta . x)`` over the environments at that step;
    - ``grad_norm``: L2 norm of the gradient of the memory's parameters in the last minibatch of the last update,
      as applied (after ``max_grad_norm`` clipping), and ``grad_share``: its ratio to the norm of the whole policy's
      gradient (not changed by the clipping). Not logged before the first update.

    and, for the calibration bank shared by the memories (``calibration="random"`` or ``"fixed"``):

    - ``shm/theta_evenness``: normalised entropy (0: one row, 1: uniform) of how often each row of the bank was
      drawn in the rollouts completed since the last log (counted from the rollout buffer's ``theta_indices``);
      ``shm/theta_rows_used``: share of the rows drawn at least once. With few draws per row the entropy of even
      a uniform draw is below 1 (about 0.87 for 2 draws per row on average).

    Cost: the values come from tensors the model already holds; the calibration is recomputed for one step
    (``n_envs * H * H`` tanh) at each log, and the bank usage costs one ``bincount`` per rollout. The callback
    draws no random numbers, so training is the same with or without it.

    :param log_freq: log every ``log_freq`` calls of the callback (>= 1)
    :param saturation_eps: distance to 0 and to 2 under which a calibration entry counts as saturated, in (0, 1)
    :param verbose: verbosity level
    :raises ValueError: for a ``log_freq`` that is not an integer >= 1, or a ``saturation_eps`` outside (0, 1)
    :raises TypeError: at ``init_callback`` (the start of ``learn``), for a model that is not an ShmPPO with an
        SHM policy
    """

    model: ShmPPO  # checked by _init_callback

    def __init__(self, log_freq: int = 1000, saturation_eps: float = 0.05, verbose: int = 0):
        super().__init__(verbose)
        if isinstance(log_freq, bool) or not isinstance(log_freq, (int, np.integer)) or log_freq < 1:
            raise ValueError(f"log_freq must be an integer >= 1 (calls between two logs), got {log_freq!r}")
        if not (isinstance(saturation_eps, (int, float)) and 0 < saturation_eps < 1):
            raise ValueError(f"saturation_eps must be a number in (0, 1), got {saturation_eps!r}")
        self.log_freq = int(log_freq)
        self.saturation_eps = float(saturation_eps)
        self._theta_counts: np.ndarray | None = None
        # Only used when the step's calibration indices are not available: never touches the global generators
        self._generator = th.Generator().manual_seed(0)

    # ------------------------------------------------------------------------------------------------------------
    # Callback events
    # ------------------------------------------------------------------------------------------------------------
    def _init_callback(self) -> None:
        from sb3_shm.shm_ppo import ShmPPO

        if not isinstance(self.model, ShmPPO):
            raise TypeError(
                f"{type(self).__name__} needs an ShmPPO model (it reads the SHM memories), got {type(self.model).__name__}"
            )
        if not isinstance(getattr(self.model.policy, "memory_actor", None), ShmCell):
            raise TypeError(
                f"{type(self).__name__} needs a policy with an SHM memory (`memory_actor` ShmCell), "
                f"got {type(self.model.policy).__name__}"
            )
        self._theta_counts = np.zeros(self._bank_size(), dtype=np.int64)

    def _on_rollout_end(self) -> None:
        buffer = self.model.rollout_buffer
        indices = getattr(buffer, "theta_indices", None)
        if indices is None or not buffer.full or self._theta_counts is None:
            return
        if self.model.policy.memory_actor.calibration != "none":
            self._theta_counts += np.bincount(indices.ravel(), minlength=self._theta_counts.size)[: self._theta_counts.size]

    def _on_step(self) -> bool:
        if self.n_calls % self.log_freq == 0:
            for key, value in self.diagnostics().items():
                self.logger.record(key, value)
        return True

    # ------------------------------------------------------------------------------------------------------------
    # The values
    # ------------------------------------------------------------------------------------------------------------
    def _bank_size(self) -> int:
        return self.model.policy.memory_actor.bank_size

    def _cells(self) -> list[tuple[str, ShmCell, th.Tensor, int]]:
        """(name, cell, memory, index of its features) for each memory of its own."""
        policy = self.model.policy
        states = self.model._last_memory_states
        assert states is not None, "ShmPPO sets its memory when it is built"
        cells = [("actor", policy.memory_actor, states.pi, 0)]
        if policy.memory_critic is not None:
            cells.append(("critic", policy.memory_critic, states.vf, 1))
        return cells

    def _step_inputs(self) -> tuple[Any, th.Tensor]:
        """Observation and calibration indices of the current step (as the rollout used them when available)."""
        obs = self.locals.get("obs_tensor") if self.locals else None
        theta_idx = self.locals.get("theta_idx") if self.locals else None
        states = self.model._last_memory_states
        assert states is not None, "ShmPPO sets its memory when it is built"
        if obs is None:
            obs = obs_as_tensor(self.model._last_obs, self.model.device)  # type: ignore[arg-type]  # never None or a tuple here
        n_envs = states.pi.shape[0]
        if theta_idx is None or theta_idx.shape[0] != n_envs:
            cell = self.model.policy.memory_actor
            if cell.calibration == "random":
                theta_idx = th.randint(0, cell.bank_size, (n_envs,), generator=self._generator).to(self.model.device)
            else:
                theta_idx = th.zeros(n_envs, dtype=th.long, device=self.model.device)
        return obs, theta_idx

    @staticmethod
    def _grad_norm(parameters: Any) -> float | None:
        grads = [p.grad.detach() for p in parameters if p.grad is not None]
        if not grads:
            return None
        if hasattr(th.nn.utils, "get_total_norm"):  # torch >= 2.6: one fused call
            return float(th.nn.utils.get_total_norm(grads))
        return float(th.linalg.vector_norm(th.stack([grad.norm() for grad in grads])))

    @th.no_grad()
    def diagnostics(self) -> dict[str, float]:
        """Compute the diagnostics now (what :meth:`_on_step` logs every ``log_freq`` calls)."""
        policy = self.model.policy
        values: dict[str, float] = {}
        obs, theta_idx = self._step_inputs()
        extracted = policy.extract_features(obs)  # type: ignore[call-arg]  # ActorCriticPolicy's override, no extractor
        features = extracted if isinstance(extracted, tuple) else (extracted, extracted)
        total_grad = self._grad_norm(policy.parameters())
        eps = self.saturation_eps
        for name, cell, memory, which in self._cells():
            prefix = f"shm/{name}/"
            magnitude = memory.abs()
            values[prefix + "memory_abs_max"] = float(magnitude.max())
            values[prefix + "memory_abs_mean"] = float(magnitude.mean())
            if cell.clamp is not None:
                hit = magnitude >= cell.clamp
                values[prefix + "clamp_hit"] = float(hit.float().mean())
                values[prefix + "clamp_hit_envs"] = float(hit.flatten(1).any(dim=1).float().mean())
            gates = cell.gates(features[which], theta_idx)
            values[prefix + "calib_near_0"] = float((gates.calibration < eps).float().mean())
            values[prefix + "calib_near_2"] = float((gates.calibration > 2.0 * cell.decay - eps).float().mean())
            values[prefix + "eta_mean"] = float(gates.eta.mean())
            grad = self._grad_norm(cell.parameters())
            if grad is not None:
                values[prefix + "grad_norm"] = grad
                values[prefix + "grad_share"] = grad / total_grad if total_grad else 0.0
        counts = self._theta_counts
        if counts is not None and counts.sum() > 0:
            share = counts[counts > 0] / counts.sum()
            entropy = float(-(share * np.log(share)).sum())
            values["shm/theta_evenness"] = entropy / float(np.log(counts.size)) if counts.size > 1 else 1.0
            values["shm/theta_rows_used"] = float((counts > 0).mean())
            counts[:] = 0
        return values
