import math
import pathlib
import warnings
from collections.abc import Iterable
from copy import deepcopy
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import FloatSchedule, obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv

from sb3_shm.common.checkpoint import ExactResume
from sb3_shm.common.spaces import check_spaces
from sb3_shm.common.recurrent.buffers import ShmDictRolloutBuffer, ShmRolloutBuffer
from sb3_shm.common.recurrent.policies import ShmActorCriticPolicy
from sb3_shm.common.recurrent.type_aliases import ShmStates
from sb3_shm.shm_ppo.policies import CnnShmPolicy, MlpShmPolicy, MultiInputShmPolicy

SelfShmPPO = TypeVar("SelfShmPPO", bound="ShmPPO")

# What a checkpoint needs besides SB3's optional parts: SB3's load fails with a KeyError on a missing optimizer
CHECKPOINT_ENTRIES = ("data", "policy.pth", "policy.optimizer.pth")
# Below this, truncated backpropagation through time cuts memory gradients too often to learn long dependencies
SHORT_SEQUENCE = 16


class ShmPPO(ExactResume, RecurrentPPO):
    """
    Proximal Policy Optimization (clip) with a Stable Hadamard Memory policy (Le et al., ICLR 2025).

    Reuses sb3-contrib's ``RecurrentPPO`` (its PPO update is unchanged); what differs for SHM:

    - the rollout buffer keeps the memory only at training-sequence starts and the calibration index of every
      step (:class:`~sb3_shm.common.recurrent.buffers.ShmRolloutBuffer`), so training replays the exact memory
      the agent acted with and the PPO ratio is 1 before the first update;
    - training sequences are the rollout cut into equal chunks of ``sequence_length`` steps per environment,
      with memory resets inside a sequence at episode starts instead of padding (every minibatch is a dense
      grid for the whole-sequence scan, and no compute goes to padding);
    - a saved model is a resume point: it holds the rollout's last memory and the random generators' states
      too, and a save made during a rollout (``CheckpointCallback``, ``EvalCallback``) holds the state at the
      start of that rollout, so ``load(..., env=env, force_reset=False)`` followed by
      ``learn(..., reset_num_timesteps=False)`` continues exactly (see ``docs/callbacks.md``).

    :param policy: The policy model to use (MlpShmPolicy, CnnShmPolicy, MultiInputShmPolicy)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: The learning rate, it can be a function of the current progress remaining (from 1 to 0)
    :param n_steps: The number of steps to run for each environment per update
    :param batch_size: Minibatch size in transitions; a multiple of ``sequence_length``
    :param n_epochs: Number of epoch when optimizing the surrogate loss
    :param gamma: Discount factor
    :param gae_lambda: Factor for trade-off of bias vs variance for Generalized Advantage Estimator
    :param clip_range: Clipping parameter, it can be a function of the current progress remaining (from 1 to 0).
    :param clip_range_vf: Clipping parameter for the value function, None (default) for no clipping
    :param normalize_advantage: Whether to normalize or not the advantage
    :param ent_coef: Entropy coefficient for the loss calculation, it can be a function of the current progress
        remaining (from 1 to 0), as ``clip_range`` (RecurrentPPO takes a number only)
    :param vf_coef: Value function coefficient for the loss calculation
    :param max_grad_norm: The maximum value for the gradient clipping
    :param use_sde: Whether to use generalized State Dependent Exploration (gSDE)
    :param sde_sample_freq: Sample a new noise matrix every n steps when using gSDE (-1: only at rollout start)
    :param target_kl: Limit the KL divergence between updates (None: no limit)
    :param sequence_length: length T of training sequences (truncated BPTT); must divide ``n_steps``.
        None picks ``gcd(n_steps, batch_size)``: the longest sequences that fill minibatches exactly.
    :param stats_window_size: Window size for the rollout logging
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation (``memory_size``,
        ``calibration``, ``bank_size``, ``memory_clamp``, ``memory_decay``, ``critic_memory``, ...)
    :param verbose: the verbosity level: 0 no output, 1 info, 2 debug
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run.
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpShmPolicy": MlpShmPolicy,
        "CnnShmPolicy": CnnShmPolicy,
        "MultiInputShmPolicy": MultiInputShmPolicy,
    }
    checkpoint_policy_class = ShmActorCriticPolicy
    checkpoint_entries = CHECKPOINT_ENTRIES
    policy: ShmActorCriticPolicy
    rollout_buffer: ShmRolloutBuffer | ShmDictRolloutBuffer

    def __init__(
        self,
        policy: str | type[ShmActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        n_steps: int = 128,
        batch_size: int | None = 128,
        n_epochs: int = 10,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_range: float | Schedule = 0.2,
        clip_range_vf: float | Schedule | None = None,
        normalize_advantage: bool = True,
        ent_coef: float | Schedule = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        target_kl: float | None = None,
        sequence_length: int | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        super().__init__(
            policy,  # type: ignore[arg-type]  # RecurrentPPO annotates its LSTM policy; _setup_model checks ours
            env,
            learning_rate=learning_rate,
            n_steps=n_steps,
            batch_size=batch_size,
            n_epochs=n_epochs,
            gamma=gamma,
            gae_lambda=gae_lambda,
            clip_range=clip_range,
            clip_range_vf=clip_range_vf,
            normalize_advantage=normalize_advantage,
            ent_coef=ent_coef,  # type: ignore[arg-type]  # a schedule too: see train()
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            target_kl=target_kl,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        del self._last_lstm_states  # RecurrentPPO's LSTM state: ShmPPO keeps `_last_memory_states` instead
        self.sequence_length = sequence_length
        self._last_memory_states: ShmStates | None = None
        # `_rollout_start` is None between a train() and the next rollout
        self._init_exact_resume()
        if _init_setup_model:
            self._setup_model()

    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        # Checked here, before BaseAlgorithm's bare `assert` on the action space, to give an error that says the fix
        check_spaces(
            "ShmPPO",
            env.observation_space,
            env.action_space,
            (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary),
            "use Box, Discrete, MultiDiscrete or MultiBinary (for example, wrap the environment to flatten a Tuple action "
            "space into MultiDiscrete)",
        )
        return RecurrentPPO._wrap_env(env, verbose, monitor_wrapper)

    def _check_hyperparameters(self) -> None:
        """Fail early, with the fix, on sizes that cannot cut the rollout into training sequences."""
        for name in ("n_steps", "n_epochs"):
            value = getattr(self, name)
            if not (isinstance(value, (int, np.integer)) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not (callable(self.ent_coef) or (isinstance(self.ent_coef, (int, float)) and not isinstance(self.ent_coef, bool))):
            raise ValueError(
                f"ent_coef must be a number or a schedule (a function of the progress remaining), got {self.ent_coef!r}"
            )
        rollout_size = self.n_steps * self.n_envs
        if self.batch_size is None:
            self.batch_size = rollout_size
        if not (isinstance(self.batch_size, (int, np.integer)) and self.batch_size >= 1):
            raise ValueError(f"batch_size must be an integer >= 1 or None (whole rollout), got {self.batch_size!r}")
        if self.normalize_advantage and self.batch_size == 1:
            raise ValueError("batch_size=1 cannot normalize advantages: use batch_size > 1 or normalize_advantage=False")
        if self.sequence_length is None:
            self.sequence_length = math.gcd(self.n_steps, self.batch_size)
            if self.sequence_length < min(SHORT_SEQUENCE, self.n_steps):
                warnings.warn(
                    f"ShmPPO trains on sequences of gcd(n_steps={self.n_steps}, batch_size={self.batch_size}) = "
                    f"{self.sequence_length} steps, so memory gradients are cut every {self.sequence_length} steps. "
                    "Choose batch_size as a multiple of a longer divisor of n_steps, or set sequence_length."
                )
            return
        if not (isinstance(self.sequence_length, (int, np.integer)) and self.sequence_length >= 1):
            raise ValueError(f"sequence_length must be an integer >= 1 or None, got {self.sequence_length!r}")
        if self.n_steps % self.sequence_length != 0:
            raise ValueError(
                f"sequence_length={self.sequence_length} must divide n_steps={self.n_steps}: training cuts each "
                "environment's rollout into equal sequences"
            )
        if self.batch_size % self.sequence_length != 0:
            raise ValueError(
                f"batch_size={self.batch_size} must be a multiple of sequence_length={self.sequence_length}: "
                "minibatches are made of whole sequences"
            )

    def _setup_model(self) -> None:
        self._check_hyperparameters()
        sequence_length = self.sequence_length
        assert sequence_length is not None, "_check_hyperparameters sets it"
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)

        if not issubclass(self.policy_class, ShmActorCriticPolicy):
            raise TypeError(
                f"ShmPPO needs an SHM policy (MlpShmPolicy, CnnShmPolicy, MultiInputShmPolicy or a subclass of "
                f"ShmActorCriticPolicy), got {self.policy_class.__name__}"
            )
        self.policy = self.policy_class(
            self.observation_space,
            self.action_space,
            self.lr_schedule,
            use_sde=self.use_sde,
            **self.policy_kwargs,
        )
        self.policy = self.policy.to(self.device)
        self._last_memory_states = self.policy.initial_state(self.n_envs)

        buffer_cls = ShmDictRolloutBuffer if isinstance(self.observation_space, spaces.Dict) else ShmRolloutBuffer
        memory_size = self.policy.memory_size
        self.rollout_buffer = buffer_cls(
            self.n_steps,
            self.observation_space,  # type: ignore[arg-type]  # a Dict space exactly when buffer_cls is the Dict buffer
            self.action_space,
            (memory_size, memory_size),
            sequence_length,
            self.device,
            gamma=self.gamma,
            gae_lambda=self.gae_lambda,
            n_envs=self.n_envs,
        )

        self.clip_range = FloatSchedule(self.clip_range)
        if self.clip_range_vf is not None:
            if isinstance(self.clip_range_vf, (float, int)) and self.clip_range_vf <= 0:
                raise ValueError("clip_range_vf must be positive, pass None to deactivate value function clipping")
            self.clip_range_vf = FloatSchedule(self.clip_range_vf)

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: RolloutBuffer,
        n_rollout_steps: int,
    ) -> bool:
        """
        Collect experiences with the current policy, storing the memory at sequence starts and the calibration
        index of every step. Follows ``RecurrentPPO.collect_rollouts``, rewritten rather than overridden at a narrower
        point because sb3-contrib has none: its loop draws the action and stores the step in one body (no hook to
        record the calibration indices in between) and its timeout bootstrap indexes LSTM ``(h, c)`` states.

        :param env: The training environment
        :param callback: Callback that will be called at each step (and at the beginning and end of the rollout)
        :param rollout_buffer: Buffer to fill with rollouts
        :param n_rollout_steps: Number of experiences to collect per environment
        :return: True if function returned with at least `n_rollout_steps` collected, False if callback terminated
            rollout prematurely.
        """
        assert isinstance(rollout_buffer, (ShmRolloutBuffer, ShmDictRolloutBuffer)), "ShmPPO needs an SHM rollout buffer"
        assert self._last_obs is not None, "No previous observation was provided"
        assert self._last_memory_states is not None, "_setup_model sets the memory"
        # What a save during this rollout writes: its steps are not trained on yet, so a resume re-collects them
        self._begin_rollout()
        self.policy.set_training_mode(False)

        n_steps = 0
        rollout_buffer.reset()
        if self.use_sde:
            self.policy.reset_noise(env.num_envs)

        callback.on_rollout_start()
        memory_states = deepcopy(self._last_memory_states)

        while n_steps < n_rollout_steps:
            if self.use_sde and self.sde_sample_freq > 0 and n_steps % self.sde_sample_freq == 0:
                self.policy.reset_noise(env.num_envs)

            with th.no_grad():
                # SB3 annotates _last_obs as Optional (checked above) and VecEnv observations as possibly tuples (not ours)
                obs_tensor = obs_as_tensor(self._last_obs, self.device)  # type: ignore[arg-type]
                episode_starts = th.tensor(self._last_episode_starts, dtype=th.float32, device=self.device)
                # The calibration indices are data: stored so that training replays this exact memory
                theta_idx = self.policy.sample_theta_indices(env.num_envs)
                actions, values, log_probs, memory_states = self.policy(
                    obs_tensor, memory_states, episode_starts, theta_idx=theta_idx
                )

            actions = actions.cpu().numpy()
            clipped_actions = actions
            if isinstance(self.action_space, spaces.Box):
                clipped_actions = np.clip(actions, self.action_space.low, self.action_space.high)

            new_obs, rewards, dones, infos = env.step(clipped_actions)
            self.num_timesteps += env.num_envs

            callback.update_locals(locals())
            if not callback.on_step():
                return False

            self._update_info_buffer(infos, dones)
            n_steps += 1

            if isinstance(self.action_space, spaces.Discrete):
                actions = actions.reshape(-1, 1)

            # Handle timeout by bootstrapping with the value function (SB3 issue #633)
            for idx, done_ in enumerate(dones):
                if (
                    done_
                    and infos[idx].get("terminal_observation") is not None
                    and infos[idx].get("TimeLimit.truncated", False)
                ):
                    terminal_obs = self.policy.obs_to_tensor(infos[idx]["terminal_observation"])[0]
                    with th.no_grad():
                        terminal_value = self.policy.predict_values(
                            terminal_obs,
                            memory_states.vf[idx : idx + 1],
                            th.zeros(1, device=self.device),
                        )[0]
                    rewards[idx] += self.gamma * terminal_value

            rollout_buffer.add(
                self._last_obs,
                actions,
                rewards,
                self._last_episode_starts,
                values,
                log_probs,
                memory_states=self._last_memory_states,
                theta_idx=theta_idx,
            )

            self._last_obs = new_obs  # type: ignore[assignment]  # a VecEnv observation: never a tuple here
            self._last_episode_starts = dones
            self._last_memory_states = memory_states

        with th.no_grad():
            episode_starts = th.tensor(dones, dtype=th.float32, device=self.device)
            new_obs_tensor = obs_as_tensor(new_obs, self.device)  # type: ignore[arg-type]  # never a tuple here
            values = self.policy.predict_values(new_obs_tensor, memory_states.vf, episode_starts)

        rollout_buffer.compute_returns_and_advantage(last_values=values, dones=dones)
        callback.on_rollout_end()
        return True

    def train(self) -> None:
        # RecurrentPPO's loss reads `ent_coef` as a number: give it the schedule's value for this update, then put the
        # schedule back (it is what save() keeps). SB3 schedules learning_rate and clip_range the same way
        ent_coef = self.ent_coef
        self.ent_coef = float(FloatSchedule(ent_coef)(self._current_progress_remaining))
        self.logger.record("train/ent_coef", self.ent_coef)
        try:
            super().train()
        finally:
            self.ent_coef = ent_coef
        # The rollout is consumed: the live state is a resume point again
        self._rollout_start = None

    def learn(
        self: SelfShmPPO,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "ShmPPO",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfShmPPO:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def _excluded_save_params(self) -> list[str]:
        excluded = super()._excluded_save_params()
        # The memory is saved as numpy arrays in `_saved_memory_states` (device independent), see `save`
        return [name for name in excluded if name != "_last_lstm_states"] + ["_last_memory_states"]

    def _resume_point(self) -> dict[str, Any]:
        memory = self._last_memory_states
        return {
            **super()._resume_point(),
            "_saved_memory_states": None if memory is None else tuple(m.detach().cpu().numpy().copy() for m in memory),
        }

    def save(
        self,
        path: str | pathlib.Path | Any,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
    ) -> None:
        """
        Save the model to a zip file, atomically: it is written beside the target and moved into place only once
        complete, so a failure never leaves a half-written file where a good one was.

        What is saved besides SB3's usual content, so that training can continue exactly (see :meth:`load`): the
        rollout's last memory (``_saved_memory_states``) and the states of the random generators of torch, numpy
        and python (``_saved_rng_states``). Saved during a rollout (from a callback), the file holds the state at the
        start of that rollout (``num_timesteps``, last observation, episode starts, memory, generators, episode
        statistics): the parameters have not changed since then, and the rollout's steps are not trained on yet.

        :param path: path to the file (".zip" is appended when it has no suffix) or a file-like object
        :param exclude: names of parameters that should be excluded in addition to the default ones
        :param include: names of parameters that might be excluded but should be included anyway
        """
        super().save(path, exclude=exclude, include=include)

    @classmethod
    def load(
        cls,
        path: str | pathlib.Path | Any,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ):
        """
        Load an ShmPPO model from a zip file (see ``BaseAlgorithm.load`` for the arguments).

        With ``force_reset=False`` and the environment in the state it had at the save, the loaded model continues
        exactly where the saved one was: ``learn(..., reset_num_timesteps=False)`` restores the saved random generator
        states when its first rollout starts (unless ``set_random_seed`` is called in between) and starts from the
        saved memory. With ``force_reset=True`` (the default) the environment is reset, as in SB3.

        ``custom_objects`` replaces entries of the checkpoint's ``data`` instead of unpickling them (e.g. a learning-rate
        schedule whose module is missing here). Loading unpickles the other entries: load only files you trust (see
        ``docs/modules/shm_ppo.md``).

        :raises ValueError: if the file is not a zip, is truncated or incomplete, holds another algorithm's model, or
            has entries pickled with code that cannot be imported here (the message names them and the
            ``custom_objects`` that replaces them)
        """
        model = super().load(
            path,
            env=env,
            device=device,
            custom_objects=custom_objects,
            print_system_info=print_system_info,
            force_reset=force_reset,
            **kwargs,
        )
        memory = model.__dict__.pop("_saved_memory_states", None)
        if model._last_obs is not None:
            # SB3 kept the saved observation (no reset): continue from the saved memory too
            assert model._last_memory_states is not None, "_setup_model sets the memory"
            expected = tuple(model._last_memory_states.pi.shape)
            if memory is not None and all(m.shape == expected for m in memory):
                model._last_memory_states = ShmStates(*(th.as_tensor(m, device=model.device) for m in memory))
        return model
