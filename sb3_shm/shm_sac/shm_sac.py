import io
import pathlib
from collections.abc import Iterable
from copy import deepcopy
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, RolloutReturn, Schedule, TrainFreq
from stable_baselines3.common.utils import obs_as_tensor, polyak_update
from stable_baselines3.common.vec_env import VecEnv

from sb3_shm.common.checkpoint import CheckpointPath, ExactResume, save_checkpoint
from sb3_shm.common.off_policy.buffers import DictEpisodeReplayBuffer, EpisodeReplayBuffer
from sb3_shm.common.off_policy.policies import RecurrentActor, RecurrentCritic, ShmSACPolicy
from sb3_shm.common.off_policy.type_aliases import EpisodeReplayBufferSamples, RolloutMemoryState
from sb3_shm.common.spaces import check_spaces
from sb3_shm.shm_sac.policies import CnnShmPolicy, MlpShmPolicy, MultiInputShmPolicy

SelfShmSAC = TypeVar("SelfShmSAC", bound="ShmSAC")

# What a checkpoint needs besides SB3's optional parts (ent_coef_optimizer only with an automatic entropy coefficient)
CHECKPOINT_ENTRIES = ("data", "policy.pth", "actor.optimizer.pth", "critic.optimizer.pth")


def masked_mean(values: th.Tensor, mask: th.Tensor) -> th.Tensor:
    """
    Mean over the steps where ``mask`` is 1 (padding and burn-in never enter a loss).

    :param values: (n_seq, T)
    :param mask: (n_seq, T) of 0 / 1
    :return: scalar
    """
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def discrete_soft_value(probs: th.Tensor, log_probs: th.Tensor, q_values: th.Tensor, ent_coef: th.Tensor) -> th.Tensor:
    """
    SAC-Discrete's soft state value, an expectation under the policy instead of a sampled action (Christodoulou 2019):
    ``V(h) = sum_a pi(a|h) * (Q(h, a) - alpha * log pi(a|h))``. The critic's target bootstraps from it, and the
    actor's loss is ``-V`` with Q held fixed.

    :param probs: pi(.|h), (..., n_actions)
    :param log_probs: log pi(.|h), (..., n_actions)
    :param q_values: Q(h, .), (..., n_actions)
    :param ent_coef: alpha
    :return: V(h), (...)
    """
    return (probs * (q_values - ent_coef * log_probs)).sum(dim=-1)


class _HeldTransitions:
    """Stands in for the replay buffer during a rollout: keeps copies of what ``add`` is given, in order."""

    def __init__(self) -> None:
        self.transitions: list[tuple[Any, ...]] = []

    def add(self, *args: Any) -> None:
        # Copies: a VecEnv wrapper may update its observation arrays in place (VecFrameStack)
        self.transitions.append(deepcopy(args))


class ShmSAC(ExactResume, SAC):
    """
    Soft Actor-Critic (Box actions) and SAC-Discrete (Discrete actions) with recurrent actor and critic, each with its
    own memory: a Stable Hadamard Memory (Le et al., ICLR 2025), a GRU or an LSTM. The off-policy agent of the SHM
    paper's meta-RL and credit-assignment experiments (the authors' pomdp-baselines code).

    Reuses SB3's SAC / OffPolicyAlgorithm (rollouts, entropy coefficient, save / load, logging); what differs:

    - the replay buffer samples windows of ``sequence_length`` steps inside one episode
      (:class:`~sb3_shm.common.off_policy.buffers.EpisodeReplayBuffer`), and ``batch_size`` counts windows;
    - training runs the memories over whole windows from an empty memory, the losses are averaged over the real
      steps only; the critic target's own memory is recomputed over the window;
    - rollouts step the actor's memory one step at a time, and a saved model keeps that memory
      (``_rollout_state``) with the previous action and reward;
    - a saved model is a resume point, as ShmPPO's: besides SB3's content (parameters, optimizers, entropy coefficient,
      target critic, last observation) it holds the rollout's memory state and the random generators' states (torch,
      numpy, python, the action space's). With the replay buffer saved beside it (``save_replay_buffer``),
      ``load(..., env=env, force_reset=False)``, ``load_replay_buffer`` and ``learn(..., reset_num_timesteps=False)``
      continue exactly (see ``docs/modules/shm_sac.md``);
    - a save during a rollout (the ``train_freq`` steps between two trainings; ``CheckpointCallback`` saves from
      ``on_step``, after the environment stepped) holds the state at the start of that rollout, as ShmPPO's: the
      parameters have not changed since, and a resume collects the rollout's steps again. So the rollout's
      transitions enter the replay buffer when it ends (before training, which is the only reader), and a replay
      buffer saved during the rollout is the one at its start too, matching the model saved with it;
    - Discrete actions: SAC-Discrete, with ``target_entropy = target_entropy_ratio * log(n_actions)`` when ``"auto"``.

    :param policy: The policy model to use (MlpShmPolicy, CnnShmPolicy, MultiInputShmPolicy)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: learning rate for adam optimizer, the same learning rate will be used for all networks
        (Q-Values, Actor and Value function); it can be a function of the current progress remaining (from 1 to 0)
    :param buffer_size: size of the replay buffer, in transitions
    :param learning_starts: how many steps of the model to collect transitions for before learning starts
        (at least ``sequence_length``; a few episodes is sensible)
    :param batch_size: Minibatch size for each gradient update, in windows of ``sequence_length`` steps
    :param tau: the soft update coefficient ("Polyak update", between 0 and 1)
    :param gamma: the discount factor
    :param train_freq: Update the model every ``train_freq`` steps. Alternatively pass a tuple of frequency and unit
        like ``(5, "step")`` or ``(2, "episode")``.
    :param gradient_steps: How many gradient steps to do after each rollout (see ``train_freq``); -1: as many as
        environment steps in the rollout
    :param action_noise: the action noise type (None by default), Box actions only
    :param replay_buffer_class: an :class:`EpisodeReplayBuffer` subclass, None for the default
    :param replay_buffer_kwargs: Keyword arguments to pass to the replay buffer on creation
    :param ent_coef: Entropy regularization coefficient (alpha); ``"auto"`` learns it (``"auto_0.1"``: starting at 0.1)
    :param target_update_interval: update the target network every ``target_network_update_freq`` gradient steps
    :param target_entropy: target entropy when learning ``ent_coef``; ``"auto"``: ``-dim(A)`` (Box) or
        ``target_entropy_ratio * log(n_actions)`` (Discrete)
    :param target_entropy_ratio: SAC-Discrete's fraction of the maximum entropy ``log(n_actions)``, in (0, 1)
    :param sequence_length: steps per training window; episodes are cut into chunks of this length (set it to the
        episode length to train on whole episodes, as pomdp-baselines does)
    :param burn_in: up to this many steps before a window that starts mid-episode, read by the memory, not trained on
    :param stats_window_size: Window size for the rollout logging
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation (``actor_memory_type``,
        ``critic_memory_type``, ``memory_inputs``, ``memory_size``, ``calibration``, ... see ShmSACPolicy)
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
    checkpoint_policy_class = ShmSACPolicy
    checkpoint_entries = CHECKPOINT_ENTRIES
    # SAC annotates its feed-forward classes; ShmSAC's are the recurrent ones (ignores: narrowing SB3's annotations)
    policy: ShmSACPolicy  # type: ignore[assignment]
    actor: RecurrentActor  # type: ignore[assignment]
    critic: RecurrentCritic  # type: ignore[assignment]
    critic_target: RecurrentCritic  # type: ignore[assignment]
    replay_buffer: EpisodeReplayBuffer | DictEpisodeReplayBuffer  # type: ignore[assignment]

    def __init__(
        self,
        policy: str | type[ShmSACPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 1000,
        batch_size: int = 32,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        ent_coef: str | float = "auto",
        target_update_interval: int = 1,
        target_entropy: str | float = "auto",
        target_entropy_ratio: float = 0.7,
        sequence_length: int = 64,
        burn_in: int = 0,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        # SAC.__init__ accepts only Box actions: set up as it does, with Discrete allowed (SAC-Discrete)
        OffPolicyAlgorithm.__init__(
            self,
            policy,
            env,
            learning_rate,
            buffer_size,
            learning_starts,
            batch_size,
            tau,
            gamma,
            train_freq,
            gradient_steps,
            action_noise,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            sde_support=False,
            supported_action_spaces=(spaces.Box, spaces.Discrete),
            support_multi_env=True,
        )
        self.target_entropy = target_entropy
        self.target_entropy_ratio = target_entropy_ratio
        self.log_ent_coef = None  # type: th.Tensor | None
        self.ent_coef = ent_coef
        self.target_update_interval = target_update_interval
        self.ent_coef_optimizer: th.optim.Adam | None = None
        self.sequence_length = sequence_length
        self.burn_in = burn_in
        self._rollout_state: RolloutMemoryState | None = None
        # The rollout's transitions until it ends (None outside a rollout)
        self._held_transitions: _HeldTransitions | None = None
        self._init_exact_resume()
        if _init_setup_model:
            self._setup_model()

    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        # Checked here, before BaseAlgorithm's bare `assert` on the action space, to give an error that says the fix
        check_spaces(
            "ShmSAC",
            env.observation_space,
            env.action_space,
            (spaces.Box, spaces.Discrete),
            "use Box (SAC) or Discrete (SAC-Discrete), or ShmPPO for MultiDiscrete / MultiBinary actions",
        )
        return SAC._wrap_env(env, verbose, monitor_wrapper)

    def _check_hyperparameters(self) -> None:
        """Fail early, naming the option, on sizes that cannot make training windows."""
        for name, minimum in (("sequence_length", 1), ("burn_in", 0), ("batch_size", 1), ("learning_starts", 0)):
            value = getattr(self, name)
            if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum):
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if self.learning_starts < self.sequence_length:
            raise ValueError(
                f"learning_starts={self.learning_starts} is smaller than one sequence (sequence_length="
                f"{self.sequence_length}): collect at least one window before training (a few episodes is sensible)"
            )
        if self.buffer_size // self.n_envs < self.sequence_length + self.burn_in:
            raise ValueError(
                f"buffer_size={self.buffer_size} holds {self.buffer_size // self.n_envs} transitions per environment "
                f"(n_envs={self.n_envs}), fewer than one window of burn_in + sequence_length = "
                f"{self.burn_in + self.sequence_length} steps: increase buffer_size"
            )
        if isinstance(self.action_space, spaces.Discrete) and not 0.0 < self.target_entropy_ratio < 1.0:
            raise ValueError(f"target_entropy_ratio must be in (0, 1), got {self.target_entropy_ratio!r}")

    def _setup_model(self) -> None:
        self._check_hyperparameters()
        if not (isinstance(self.policy_class, type) and issubclass(self.policy_class, ShmSACPolicy)):
            name = getattr(self.policy_class, "__name__", repr(self.policy_class))
            raise ValueError(
                f"ShmSAC needs a recurrent SAC policy (MlpShmPolicy, CnnShmPolicy, MultiInputShmPolicy or a subclass of "
                f"ShmSACPolicy), got {name}"
            )
        default_buffer = DictEpisodeReplayBuffer if isinstance(self.observation_space, spaces.Dict) else EpisodeReplayBuffer
        if self.replay_buffer_class is None:
            self.replay_buffer_class = default_buffer
        elif not issubclass(self.replay_buffer_class, (EpisodeReplayBuffer, DictEpisodeReplayBuffer)):
            raise ValueError(
                f"ShmSAC samples sequences: replay_buffer_class must be a subclass of {default_buffer.__name__}, "
                f"got {self.replay_buffer_class.__name__}"
            )
        self.replay_buffer_kwargs = {
            **self.replay_buffer_kwargs,
            "sequence_length": self.sequence_length,
            "burn_in": self.burn_in,
        }
        automatic_target = self.target_entropy == "auto"
        super()._setup_model()
        if automatic_target and isinstance(self.action_space, spaces.Discrete):
            # SAC-Discrete (pomdp-baselines' sacd): a fraction of the uniform policy's entropy
            self.target_entropy = float(self.target_entropy_ratio * np.log(self.action_space.n))

    # --- rollouts: the actor's memory steps with the environment -------------------------------------------------
    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        # Overridden because the environments may be reset here: the memory and the buffer's open episodes end too
        env_reset = reset_num_timesteps or self._last_obs is None
        # SB3 resets the action noise at every learn(); where the episodes go on, so does an Ornstein-Uhlenbeck noise's
        # state (exact resume), as it would without the interruption
        noise = None if env_reset else deepcopy(self.action_noise)
        result = super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)
        if noise is not None and type(noise) is type(self.action_noise):
            self.action_noise = noise
        state = self._rollout_state
        if env_reset or state is None or state.memory.shape[0] != self.n_envs:
            memory, prev_actions, prev_rewards = self.policy.initial_state(self.n_envs)
            self._rollout_state = RolloutMemoryState(
                memory.cpu().numpy(), prev_actions.cpu().numpy(), prev_rewards.cpu().numpy()
            )
            self._last_episode_starts = np.ones(self.n_envs, dtype=bool)
        if env_reset:
            self.replay_buffer.end_episodes()
        return result

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        train_freq: TrainFreq,
        replay_buffer: ReplayBuffer,
        action_noise: ActionNoise | None = None,
        learning_starts: int = 0,
        log_interval: int | None = None,
    ) -> RolloutReturn:
        """
        SB3's rollout, as a resume point: a save during it (from a callback) holds the state at its start, and its
        transitions are added to ``replay_buffer`` when it ends (also when it stops early or fails), so that the
        buffer is the one at the rollout's start until then.

        :param env: The training environment
        :param callback: Callback that will be called at each step (and at the beginning and end of the rollout)
        :param train_freq: How much experience to collect (steps or episodes)
        :param replay_buffer: the replay buffer the transitions are added to
        :param action_noise: Action noise that will be used for exploration (Box actions)
        :param learning_starts: Number of steps before learning for the warm-up phase
        :param log_interval: Log data every ``log_interval`` episodes
        :return: SB3's RolloutReturn
        """
        self._begin_rollout()
        self._held_transitions = _HeldTransitions()
        try:
            return super().collect_rollouts(
                env, callback, train_freq, replay_buffer, action_noise, learning_starts, log_interval
            )
        finally:
            held, self._held_transitions = self._held_transitions, None
            for transition in held.transitions:
                replay_buffer.add(*transition)
            # The live state is the resume point again: the rollout's steps are in the buffer
            self._rollout_start = None

    def _sample_action(
        self,
        learning_starts: int,
        action_noise: ActionNoise | None = None,
        n_envs: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        # Overridden to step the actor's memory: it steps during the warm-up too, so that it holds the episode so far
        # when learning starts
        assert self._last_obs is not None and self._rollout_state is not None, "call learn() to set up the rollout"
        state = self._rollout_state
        with th.no_grad():
            buffer_actions, memory = self.policy.step(
                obs_as_tensor(self._last_obs, self.device),  # type: ignore[arg-type]  # SB3: Optional, checked above
                th.as_tensor(state.memory, device=self.device),
                th.as_tensor(state.prev_actions, device=self.device),
                th.as_tensor(state.prev_rewards, device=self.device),
                th.as_tensor(self._last_episode_starts, dtype=th.float32, device=self.device),
            )
        self._rollout_state = state._replace(memory=memory.cpu().numpy())
        if self.num_timesteps < learning_starts:
            unscaled_action = np.array([self.action_space.sample() for _ in range(n_envs)])
            if isinstance(self.action_space, spaces.Box):
                scaled_action = self.policy.scale_action(unscaled_action)
            else:
                return unscaled_action, unscaled_action
        elif isinstance(self.action_space, spaces.Box):
            scaled_action = buffer_actions.cpu().numpy()
        else:
            action = buffer_actions.cpu().numpy().reshape(-1)
            return action, action
        if action_noise is not None:
            scaled_action = np.clip(scaled_action + action_noise(), -1, 1)
        return self.policy.unscale_action(scaled_action), scaled_action

    def _store_transition(
        self,
        replay_buffer: ReplayBuffer,
        buffer_action: np.ndarray,
        new_obs: np.ndarray | dict[str, np.ndarray],
        reward: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        # Overridden to remember what the memory reads next: the action taken, its reward, and where episodes start;
        # during a rollout the transition is held until the rollout ends (see collect_rollouts)
        target = replay_buffer if self._held_transitions is None else self._held_transitions
        super()._store_transition(target, buffer_action, new_obs, reward, dones, infos)  # type: ignore[arg-type]
        assert self._rollout_state is not None
        self._rollout_state = self._rollout_state._replace(
            prev_actions=np.asarray(buffer_action).reshape(self.n_envs, -1).astype(self._rollout_state.prev_actions.dtype),
            prev_rewards=np.asarray(reward, dtype=np.float32).reshape(self.n_envs),
        )
        self._last_episode_starts = np.asarray(dones, dtype=bool)

    # --- training --------------------------------------------------------------------------------------------------
    def _critic_targets(
        self, data: EpisodeReplayBufferSamples, policy_outputs: tuple[th.Tensor, th.Tensor], ent_coef: th.Tensor
    ) -> th.Tensor:
        """``r_t + gamma * (1 - done_t) * V_target(h_{t+1})``, (n_seq, S), from the target critic's own memory."""
        with th.no_grad():
            latent = self.critic_target.latent_sequence(data.observations, data.prev_actions, data.prev_rewards)[:, 1:]
            if isinstance(self.action_space, spaces.Discrete):
                probs, log_probs = (output[:, 1:] for output in policy_outputs)
                next_q = th.min(th.stack(self.critic_target.q_values(latent)), dim=0).values  # (n_seq, S, n_actions)
                next_value = discrete_soft_value(probs, log_probs, next_q, ent_coef)
            else:
                actions, log_prob = (output[:, 1:] for output in policy_outputs)
                next_q = th.min(th.stack(self.critic_target.q_values(latent, actions)), dim=0).values.squeeze(-1)
                next_value = next_q - ent_coef * log_prob
            return data.rewards + (1.0 - data.dones) * self.gamma * next_value

    def _current_q_values(self, data: EpisodeReplayBufferSamples) -> list[th.Tensor]:
        """Q_i(h_t, a_t) of the stored actions, each (n_seq, S)."""
        latent = self.critic.latent_sequence(data.observations, data.prev_actions, data.prev_rewards)[:, :-1]
        if isinstance(self.action_space, spaces.Discrete):
            index = data.actions.long()  # (n_seq, S, 1)
            return [q.gather(-1, index).squeeze(-1) for q in self.critic.q_values(latent)]
        return [q.squeeze(-1) for q in self.critic.q_values(latent, data.actions.float())]

    def _actor_loss(
        self, data: EpisodeReplayBufferSamples, policy_outputs: tuple[th.Tensor, th.Tensor], ent_coef: th.Tensor
    ) -> th.Tensor:
        """SAC's ``alpha * log pi(a~|h) - min Q(h, a~)``, or SAC-Discrete's ``-V(h)``, averaged over the real steps."""
        # The critic's memory is not trained by the actor loss: run it without a graph (cheaper), heads on top
        with th.no_grad():
            latent = self.critic.latent_sequence(data.observations, data.prev_actions, data.prev_rewards)[:, :-1]
        if isinstance(self.action_space, spaces.Discrete):
            probs, log_probs = (output[:, :-1] for output in policy_outputs)
            min_q = th.min(th.stack(self.critic.q_values(latent)), dim=0).values.detach()
            return masked_mean(-discrete_soft_value(probs, log_probs, min_q, ent_coef), data.mask)
        actions, log_prob = (output[:, :-1] for output in policy_outputs)
        min_q = th.min(th.stack(self.critic.q_values(latent, actions)), dim=0).values.squeeze(-1)
        return masked_mean(ent_coef * log_prob - min_q, data.mask)

    def train(self, gradient_steps: int, batch_size: int = 32) -> None:
        # Overridden because every loss is over windows of steps: memories over the whole window, masked means
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers += [self.ent_coef_optimizer]
        self._update_learning_rate(optimizers)
        discrete = isinstance(self.action_space, spaces.Discrete)

        ent_coef_losses, ent_coefs, actor_losses, critic_losses = [], [], [], []
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            # One actor pass over the S + 1 positions: positions 0..S-1 act on the window's steps (actor loss),
            # positions 1..S on their next observations (critic target)
            latent_pi = self.actor.latent_sequence(data.observations, data.prev_actions, data.prev_rewards)
            if discrete:
                probs, log_probs = self.actor.action_probs(latent_pi)  # (n_seq, S + 1, n_actions)
                policy_outputs = (probs, log_probs)
                # -entropy, the discrete counterpart of log pi(a~|h)
                log_prob = (probs * log_probs).sum(dim=-1)
            else:
                actions_pi, log_prob = self.actor.action_log_prob(latent_pi)  # (n_seq, S + 1, A), (n_seq, S + 1)
                policy_outputs = (actions_pi, log_prob)

            ent_coef_loss = None
            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                ent_coef = th.exp(self.log_ent_coef.detach())
                ent_coef_loss = -masked_mean(
                    self.log_ent_coef * (log_prob[:, :-1] + float(self.target_entropy)).detach(), data.mask
                )
                ent_coef_losses.append(ent_coef_loss.item())
            else:
                ent_coef = self.ent_coef_tensor
            ent_coefs.append(ent_coef.item())
            if ent_coef_loss is not None and self.ent_coef_optimizer is not None:
                self.ent_coef_optimizer.zero_grad()
                ent_coef_loss.backward()
                self.ent_coef_optimizer.step()

            detached = (policy_outputs[0].detach(), policy_outputs[1].detach())
            target_q = self._critic_targets(data, detached, ent_coef)
            current_q = self._current_q_values(data)
            critic_loss = 0.5 * sum(masked_mean((q - target_q) ** 2, data.mask) for q in current_q)
            assert isinstance(critic_loss, th.Tensor)
            critic_losses.append(critic_loss.item())
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            actor_loss = self._actor_loss(data, policy_outputs, ent_coef)
            actor_losses.append(actor_loss.item())
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            self._n_updates += 1
            if self._n_updates % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", np.mean(ent_coefs))
        self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        if ent_coef_losses:
            self.logger.record("train/ent_coef_loss", np.mean(ent_coef_losses))

    # --- inference, save / load -------------------------------------------------------------------------------------
    def _resume_point(self) -> dict[str, Any]:
        return {
            **super()._resume_point(),
            "_last_original_obs": deepcopy(self._last_original_obs),
            "_rollout_state": deepcopy(self._rollout_state),
            # Ornstein-Uhlenbeck noise has a state (its previous value): a save during a rollout holds the rollout start's
            "action_noise": deepcopy(self.action_noise),
        }

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_held_transitions"]

    def predict(  # type: ignore[override]  # takes reward= too (a memory that reads rewards)
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        reward: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """
        Get the policy action from an observation and the actor's state (see :meth:`ShmSACPolicy.predict`).

        :param observation: the input observation, (n_envs, ...) or a single observation
        :param state: ``(memory, prev_actions)`` from the previous call; None starts new episodes
        :param episode_start: (n_envs,) True where an episode starts; None for all False
        :param deterministic: Whether or not to return deterministic actions.
        :param reward: (n_envs,) the previous step's rewards, needed when the memory reads rewards
        :return: the model's action and the next state
        """
        return self.policy.predict(observation, state, episode_start, deterministic, reward=reward)

    def learn(
        self: SelfShmSAC,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "ShmSAC",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfShmSAC:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def save_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        """
        Save the replay buffer as a pickle file, atomically for a path (``sb3_shm.common.checkpoint.atomic_save``): a
        failure (a full disk, a kill) never leaves a half-written buffer where a good one was. SB3 writes it in place.

        Saved during a rollout (``CheckpointCallback(save_replay_buffer=True)``), it holds the buffer at the rollout's
        start, like the model saved with it: the rollout's transitions enter the buffer when the rollout ends.

        :param path: path to the file (".pkl" is appended when it has no suffix, as SB3 does) or a file-like object
        """
        save_checkpoint(super().save_replay_buffer, path, suffix=".pkl")

    def load_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase, truncate_last_traj: bool = True) -> None:
        """
        Load a replay buffer saved by :meth:`save_replay_buffer`; its windows follow this model's ``sequence_length``
        and ``burn_in``.

        :param path: Path to the pickled replay buffer.
        :param truncate_last_traj: unused (HerReplayBuffer only); the next ``learn`` that resets the environments
            ends the buffer's open episodes
        """
        super().load_replay_buffer(path, truncate_last_traj)
        if not isinstance(self.replay_buffer, (EpisodeReplayBuffer, DictEpisodeReplayBuffer)):
            raise ValueError(
                f"ShmSAC needs an episode replay buffer, the file holds a {type(self.replay_buffer).__name__} "
                "(saved by another algorithm?)"
            )
        self.replay_buffer.set_window(self.sequence_length, self.burn_in)

    @classmethod
    def load(
        cls,
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ):
        """
        Load an ShmSAC model from a zip file (see ``BaseAlgorithm.load`` for the arguments). ``custom_objects``
        replaces entries instead of unpickling them, as for ShmPPO (see ``docs/modules/shm_ppo.md``, untrusted files).

        With ``force_reset=False``, the environment in the state it had at the save and the replay buffer saved with
        the model (:meth:`load_replay_buffer`), ``learn(..., reset_num_timesteps=False)`` continues exactly: it starts
        from the saved rollout memory and restores the saved random generator states when its first rollout starts
        (unless ``set_random_seed`` is called in between). With ``force_reset=True`` (the default) the environment is
        reset, as in SB3, and the memory and the buffer's open episodes start again.

        :raises ValueError: if the file is not a zip, is truncated or incomplete, holds another algorithm's model
            (e.g. ShmPPO's), or has entries pickled with code that cannot be imported here
        """
        return super().load(
            path,
            env=env,
            device=device,
            custom_objects=custom_objects,
            print_system_info=print_system_info,
            force_reset=force_reset,
            **kwargs,
        )

    def save(
        self,
        path: CheckpointPath,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
    ) -> None:
        """
        Save the model to a zip file atomically, as ShmPPO does (``sb3_shm.common.checkpoint.atomic_save``): a failure
        never leaves a half-written file where a good one was.

        The file is a resume point (see :meth:`load`): besides SB3's content it holds the rollout's memory state
        (``_rollout_state``) and the states of the random generators (``_saved_rng_states``). Saved during a rollout
        (from a callback), it holds the state at the start of that rollout. The replay buffer is saved separately,
        with :meth:`save_replay_buffer`.

        :param path: path to the file (".zip" is appended when it has no suffix) or a file-like object
        :param exclude: names of parameters that should be excluded in addition to the default ones
        :param include: names of parameters that might be excluded but should be included anyway
        """
        super().save(path, exclude=exclude, include=include)
