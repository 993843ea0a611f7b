"""
Recurrent SAC / SAC-Discrete policy: a recurrent actor and a recurrent twin critic with separate memories.

Each network reads, at every position ``t``, embeddings of the previous action ``a_{t-1}``, the previous reward
``r_{t-1}`` and the current observation ``o_t`` (after SB3's features extractor), as pomdp-baselines' separate-RNN
agent does, runs them through its own memory (:mod:`sb3_shm.common.off_policy.memories`: SHM, GRU or LSTM), and
concatenates the memory's output with the current observation's embedding before its MLP heads::

    x_t = [ReLU(W_a a_{t-1}), ReLU(W_r r_{t-1}), ReLU(W_o features(o_t))]   (each part switchable)
    h_t = memory(x_{0..t})
    actor:  [h_t, ReLU(W_o features(o_t))] -> MLP -> squashed Gaussian (Box) or categorical (Discrete)
    critic: [h_t, ReLU(W_o features(o_t)), a_t] -> MLP -> Q (Box), or [h_t, ...] -> MLP -> Q of every action (Discrete)
"""

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.policies import BaseModel, BasePolicy
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    NatureCNN,
    create_mlp,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn
from torch.nn import functional as F

from sb3_shm.common.memory.scan import ScanImpl
from sb3_shm.common.memory.shm import Calibration
from sb3_shm.common.off_policy.memories import MemoryKind, SequenceMemory, check_memory_options, make_memory

# As SB3's SAC actor
LOG_STD_MAX = 2
LOG_STD_MIN = -20
MEMORY_INPUTS = ("action", "reward", "observation")


def _flatten_time(obs: PyTorchObs) -> tuple[PyTorchObs, tuple[int, int]]:
    """``(n_seq, T, *shape)`` (or a dict of those) -> ``(n_seq * T, *shape)``, and (n_seq, T)."""
    if isinstance(obs, dict):
        leading = next(iter(obs.values())).shape[:2]
        return {key: value.reshape(-1, *value.shape[2:]) for key, value in obs.items()}, (leading[0], leading[1])
    return obs.reshape(-1, *obs.shape[2:]), (obs.shape[0], obs.shape[1])


class MemoryNetwork(BaseModel):
    """
    Features extractor, input embeddings and a memory: the trunk of the recurrent actor and critic.

    :param observation_space: Observation space
    :param action_space: Action space (Box or Discrete)
    :param features_extractor: this network's own features extractor
    :param features_dim: its output size
    :param normalize_images: Whether to normalize images or not, dividing by 255.0
    :param memory: ``"shm"``, ``"gru"`` or ``"lstm"``
    :param memory_inputs: which of ``"action"``, ``"reward"``, ``"observation"`` the memory reads
    :param obs_embed_dim: size of the observation embedding (memory input and shortcut to the heads)
    :param action_embed_dim: size of the previous action's embedding
    :param reward_embed_dim: size of the previous reward's embedding
    :param rnn_hidden_size: hidden size of a GRU / LSTM memory
    :param shm_options: the SHM memory's options (``memory_size``, ``bank_size``, ``calibration``, ``memory_clamp``,
        ``memory_decay``, ``scan_impl``)
    """

    features_extractor: BaseFeaturesExtractor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        normalize_images: bool,
        memory: MemoryKind,
        memory_inputs: tuple[str, ...],
        obs_embed_dim: int,
        action_embed_dim: int,
        reward_embed_dim: int,
        rnn_hidden_size: int,
        shm_options: dict[str, Any],
    ):
        super().__init__(
            observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images
        )
        self.memory_inputs = tuple(memory_inputs)
        self.discrete = isinstance(action_space, spaces.Discrete)
        # Discrete actions enter the memory one-hot
        self.action_input_dim = (
            int(action_space.n) if isinstance(action_space, spaces.Discrete) else get_action_dim(action_space)
        )
        self.obs_embed = nn.Sequential(nn.Linear(features_dim, obs_embed_dim), nn.ReLU())
        # Only the inputs the memory reads get an embedding (no parameters without gradients)
        self.action_embed = (
            nn.Sequential(nn.Linear(self.action_input_dim, action_embed_dim), nn.ReLU()) if "action" in memory_inputs else None
        )
        self.reward_embed = nn.Sequential(nn.Linear(1, reward_embed_dim), nn.ReLU()) if "reward" in memory_inputs else None
        input_dim = (
            action_embed_dim * ("action" in memory_inputs)
            + reward_embed_dim * ("reward" in memory_inputs)
            + obs_embed_dim * ("observation" in memory_inputs)
        )
        self.memory: SequenceMemory = make_memory(memory, input_dim, rnn_hidden_size, **shm_options)
        self.latent_dim = self.memory.output_dim + obs_embed_dim

    def _inputs(self, features: th.Tensor, prev_actions: th.Tensor, prev_rewards: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """(..., F), (..., action_dim), (...) -> the memory's input (..., D) and the observation embedding (..., E)."""
        obs_embedding = self.obs_embed(features)
        parts = []
        if self.action_embed is not None:
            if self.discrete:
                actions = F.one_hot(prev_actions.long().squeeze(-1), self.action_input_dim).to(features.dtype)
            else:
                actions = prev_actions.to(features.dtype)
            parts.append(self.action_embed(actions))
        if self.reward_embed is not None:
            parts.append(self.reward_embed(prev_rewards.to(features.dtype).unsqueeze(-1)))
        if "observation" in self.memory_inputs:
            parts.append(obs_embedding)
        return th.cat(parts, dim=-1), obs_embedding

    def latent_sequence(self, obs: PyTorchObs, prev_actions: th.Tensor, prev_rewards: th.Tensor) -> th.Tensor:
        """
        Whole windows from an empty memory (training).

        :param obs: ``(n_seq, T, *obs_shape)``, or a dict of those
        :param prev_actions: (n_seq, T, action_dim) (Discrete: indices, (n_seq, T, 1))
        :param prev_rewards: (n_seq, T)
        :return: memory output and observation embedding, (n_seq, T, latent_dim)
        """
        flat_obs, (n_seq, n_steps) = _flatten_time(obs)
        features = self.extract_features(flat_obs, self.features_extractor)
        # (n_seq * T, F) -> (n_seq, T, F)
        features = features.reshape(n_seq, n_steps, -1)
        x, obs_embedding = self._inputs(features, prev_actions, prev_rewards)
        return th.cat([self.memory(x), obs_embedding], dim=-1)

    def latent_step(
        self,
        obs: PyTorchObs,
        prev_actions: th.Tensor,
        prev_rewards: th.Tensor,
        state: th.Tensor,
        episode_starts: th.Tensor,
    ) -> tuple[th.Tensor, th.Tensor]:
        """
        One step for every environment (rollouts and ``predict``); at an episode start the memory and the previous
        action and reward are zero, as at the first position of a training window.

        :param obs: ``(n_envs, *obs_shape)``, or a dict of those
        :param prev_actions: (n_envs, action_dim)
        :param prev_rewards: (n_envs,)
        :param state: the memory, ``(n_envs, *state_shape)``
        :param episode_starts: (n_envs,) 1.0 where an episode starts
        :return: latent (n_envs, latent_dim) and the new memory state
        """
        features = self.extract_features(obs, self.features_extractor)
        keep = 1.0 - episode_starts.to(features.dtype)
        prev_actions = prev_actions * keep.view(-1, 1).to(prev_actions.dtype)
        x, obs_embedding = self._inputs(features, prev_actions, prev_rewards.to(features.dtype) * keep)
        output, state = self.memory.step(x, state, episode_starts)
        return th.cat([output, obs_embedding], dim=-1), state


class RecurrentActor(MemoryNetwork):
    """
    The recurrent actor: a squashed Gaussian (Box, SAC) or a categorical distribution (Discrete, SAC-Discrete).

    :param net_arch: hidden layers of the MLP after the memory
    :param activation_fn: activation of that MLP
    :param kwargs: :class:`MemoryNetwork`'s arguments
    """

    def __init__(self, net_arch: list[int], activation_fn: type[nn.Module], **kwargs: Any):
        super().__init__(**kwargs)
        self.net_arch = net_arch
        self.latent_pi = nn.Sequential(*create_mlp(self.latent_dim, -1, net_arch, activation_fn))
        last_dim = net_arch[-1] if net_arch else self.latent_dim
        if self.discrete:
            self.logits = nn.Linear(last_dim, self.action_input_dim)
        else:
            self.action_dist = SquashedDiagGaussianDistribution(self.action_input_dim)
            self.mu = nn.Linear(last_dim, self.action_input_dim)
            self.log_std = nn.Linear(last_dim, self.action_input_dim)

    def _gaussian(self, latent: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """(N, latent_dim) -> mean and clamped log std, each (N, action_dim)."""
        hidden = self.latent_pi(latent)
        return self.mu(hidden), th.clamp(self.log_std(hidden), LOG_STD_MIN, LOG_STD_MAX)

    def action_log_prob(self, latent: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        Box: reparameterised actions and their log-probability.

        :param latent: (..., latent_dim)
        :return: actions in [-1, 1] (..., action_dim) and log pi (...)
        """
        leading = latent.shape[:-1]
        # SB3's distribution sums log-probs over dim 1: flatten (n_seq, T) first
        actions, log_prob = self.action_dist.log_prob_from_params(*self._gaussian(latent.reshape(-1, latent.shape[-1])))
        return actions.reshape(*leading, -1), log_prob.reshape(leading)

    def action_probs(self, latent: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        Discrete: the policy's probabilities and log-probabilities of every action.

        :param latent: (..., latent_dim)
        :return: probs and log probs, each (..., n_actions)
        """
        log_probs = F.log_softmax(self.logits(self.latent_pi(latent)), dim=-1)
        return log_probs.exp(), log_probs

    def act(self, latent: th.Tensor, deterministic: bool = False) -> th.Tensor:
        """
        :param latent: (N, latent_dim)
        :param deterministic: the mode instead of a sample
        :return: (N, action_dim) actions in buffer form: scaled to [-1, 1] (Box), or indices (Discrete, (N, 1))
        """
        if self.discrete:
            logits = self.logits(self.latent_pi(latent))
            if deterministic:
                return logits.argmax(dim=-1, keepdim=True)
            return th.distributions.Categorical(logits=logits).sample().unsqueeze(-1)
        return self.action_dist.actions_from_params(*self._gaussian(latent), deterministic=deterministic)


class RecurrentCritic(MemoryNetwork):
    """
    ``n_critics`` Q heads on one memory (as pomdp-baselines' ``Critic_RNN``: one RNN, ``qf1`` and ``qf2``).

    :param net_arch: hidden layers of each Q head
    :param activation_fn: activation of the heads
    :param n_critics: number of Q heads
    :param kwargs: :class:`MemoryNetwork`'s arguments
    """

    def __init__(self, net_arch: list[int], activation_fn: type[nn.Module], n_critics: int, **kwargs: Any):
        super().__init__(**kwargs)
        # Box: Q(h, o, a) -> 1; Discrete: Q(h, o, .) -> one value per action
        input_dim = self.latent_dim + (0 if self.discrete else self.action_input_dim)
        output_dim = self.action_input_dim if self.discrete else 1
        self.q_networks = nn.ModuleList(
            [nn.Sequential(*create_mlp(input_dim, output_dim, net_arch, activation_fn)) for _ in range(n_critics)]
        )

    def q_values(self, latent: th.Tensor, actions: th.Tensor | None = None) -> tuple[th.Tensor, ...]:
        """
        :param latent: (..., latent_dim)
        :param actions: Box: (..., action_dim) in [-1, 1]; Discrete: None
        :return: one tensor per head, (..., 1) for Box, (..., n_actions) for Discrete
        """
        inputs = latent if actions is None else th.cat([latent, actions], dim=-1)
        return tuple(q_net(inputs) for q_net in self.q_networks)


class ShmSACPolicy(BasePolicy):
    """
    Policy of ShmSAC: a recurrent actor, a recurrent twin critic and its target, each with its own features
    extractor and its own memory.

    :param observation_space: Observation space
    :param action_space: Action space (Box: SAC; Discrete: SAC-Discrete)
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: hidden layers of the actor and critic MLPs after the memories: a list for both, or
        ``dict(pi=[...], qf=[...])``; default ``[128, 128]``
    :param activation_fn: Activation function of the MLPs
    :param features_extractor_class: Features extractor to use (one instance per network)
    :param features_extractor_kwargs: Keyword arguments to pass to the features extractor
    :param normalize_images: Whether to normalize images or not, dividing by 255.0 (True by default)
    :param optimizer_class: The optimizer to use, ``th.optim.Adam`` by default
    :param optimizer_kwargs: Additional keyword arguments, excluding the learning rate, to pass to the optimizer
    :param n_critics: Number of Q heads on the critic's memory
    :param actor_memory_type: the actor's memory: ``"shm"``, ``"gru"`` or ``"lstm"`` (the SHM authors' agent: ``"gru"``)
    :param critic_memory_type: the critic's memory: ``"shm"``, ``"gru"`` or ``"lstm"``
    :param memory_inputs: what the memories read at each step, a subset of ``("action", "reward", "observation")``:
        the previous action, the previous reward, the current observation. The reward is off by default because SB3's
        ``predict`` is not given rewards: with ``"reward"``, pass ``reward=`` to ``ShmSAC.predict`` (or put the
        previous reward in the observation, as ``PointRobot-v0`` does)
    :param obs_embed_dim: size of the observation embedding
    :param action_embed_dim: size of the previous action's embedding
    :param reward_embed_dim: size of the previous reward's embedding
    :param rnn_hidden_size: hidden size of GRU / LSTM memories
    :param memory_size: H of SHM memories (H x H)
    :param bank_size: L, calibration rows of SHM memories
    :param calibration: ``"random"`` (the paper; the authors' pomdp-baselines cell), ``"fixed"`` or ``"none"``, see
        :class:`~sb3_shm.common.memory.shm.ShmCell`
    :param memory_clamp: bound on |M| at every step (the authors' guard), None to disable
    :param memory_decay: forgetting factor in (0, 1]; 1 is the paper's cell
    :param scan_impl: implementation of SHM's whole-sequence form (see :mod:`sb3_shm.common.memory.scan`)
    """

    actor: RecurrentActor
    critic: RecurrentCritic
    critic_target: RecurrentCritic

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_critics: int = 2,
        actor_memory_type: MemoryKind = "shm",
        critic_memory_type: MemoryKind = "shm",
        memory_inputs: tuple[str, ...] | list[str] = ("action", "observation"),
        obs_embed_dim: int = 64,
        action_embed_dim: int = 16,
        reward_embed_dim: int = 16,
        rnn_hidden_size: int = 128,
        memory_size: int = 32,
        bank_size: int = 128,
        calibration: Calibration = "random",
        memory_clamp: float | None = 100.0,
        memory_decay: float = 1.0,
        scan_impl: ScanImpl = "auto",
    ):
        if not isinstance(action_space, (spaces.Box, spaces.Discrete)):
            raise ValueError(f"ShmSACPolicy supports Box and Discrete action spaces, got {type(action_space).__name__}")
        super().__init__(
            observation_space,
            action_space,
            features_extractor_class,
            features_extractor_kwargs,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            squash_output=isinstance(action_space, spaces.Box),
            normalize_images=normalize_images,
        )
        shm_options = dict(
            memory_size=memory_size,
            bank_size=bank_size,
            calibration=calibration,
            memory_clamp=memory_clamp,
            memory_decay=memory_decay,
            scan_impl=scan_impl,
        )
        check_memory_options(actor_memory_type, critic_memory_type, rnn_hidden_size, **shm_options)
        memory_inputs = tuple(memory_inputs)
        if not memory_inputs or any(name not in MEMORY_INPUTS for name in memory_inputs):
            raise ValueError(f"memory_inputs must be a non-empty subset of {MEMORY_INPUTS}, got {memory_inputs!r}")
        for name, value in (
            ("obs_embed_dim", obs_embed_dim),
            ("action_embed_dim", action_embed_dim),
            ("reward_embed_dim", reward_embed_dim),
            ("n_critics", n_critics),
        ):
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if net_arch is None:
            net_arch = [128, 128]
        if isinstance(net_arch, dict):
            actor_arch, critic_arch = net_arch["pi"], net_arch["qf"]
        else:
            actor_arch = critic_arch = net_arch
        self.net_arch = net_arch
        self.actor_arch, self.critic_arch = list(actor_arch), list(critic_arch)
        self.activation_fn = activation_fn
        self.n_critics = n_critics
        self.actor_memory_type, self.critic_memory_type = actor_memory_type, critic_memory_type
        self.memory_inputs = memory_inputs
        self.obs_embed_dim, self.action_embed_dim, self.reward_embed_dim = obs_embed_dim, action_embed_dim, reward_embed_dim
        self.rnn_hidden_size = rnn_hidden_size
        self.shm_options = shm_options
        self._build(lr_schedule)

    def _network_kwargs(self, memory: MemoryKind) -> dict[str, Any]:
        features_extractor = self.make_features_extractor()
        return dict(
            observation_space=self.observation_space,
            action_space=self.action_space,
            features_extractor=features_extractor,
            features_dim=features_extractor.features_dim,
            normalize_images=self.normalize_images,
            memory=memory,
            memory_inputs=self.memory_inputs,
            obs_embed_dim=self.obs_embed_dim,
            action_embed_dim=self.action_embed_dim,
            reward_embed_dim=self.reward_embed_dim,
            rnn_hidden_size=self.rnn_hidden_size,
            shm_options=self.shm_options,
        )

    def make_actor(self) -> RecurrentActor:
        """:return: a new recurrent actor"""
        return RecurrentActor(self.actor_arch, self.activation_fn, **self._network_kwargs(self.actor_memory_type)).to(
            self.device
        )

    def make_critic(self) -> RecurrentCritic:
        """:return: a new recurrent critic"""
        return RecurrentCritic(
            self.critic_arch, self.activation_fn, self.n_critics, **self._network_kwargs(self.critic_memory_type)
        ).to(self.device)

    def _build(self, lr_schedule: Schedule) -> None:
        self.actor = self.make_actor()
        optimizer_class: Any = self.optimizer_class  # any torch optimizer (Optimizer's own signature has no lr)
        self.actor.optimizer = optimizer_class(self.actor.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)
        self.critic = self.make_critic()
        self.critic.optimizer = optimizer_class(self.critic.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)
        # The target has its own memory, recomputed over every sampled window
        self.critic_target = self.make_critic()
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.set_training_mode(False)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch,
            activation_fn=self.activation_fn,
            n_critics=self.n_critics,
            actor_memory_type=self.actor_memory_type,
            critic_memory_type=self.critic_memory_type,
            memory_inputs=self.memory_inputs,
            obs_embed_dim=self.obs_embed_dim,
            action_embed_dim=self.action_embed_dim,
            reward_embed_dim=self.reward_embed_dim,
            rnn_hidden_size=self.rnn_hidden_size,
            **self.shm_options,
        )
        return data

    def set_training_mode(self, mode: bool) -> None:
        """
        Put the actor and the critic (not the target) in training or evaluation mode.

        :param mode: if true, set to training mode, else set to evaluation mode
        """
        self.actor.set_training_mode(mode)
        self.critic.set_training_mode(mode)
        self.training = mode

    @property
    def buffer_action_dim(self) -> int:
        """Size of an action in buffer form (1 for Discrete: the index)."""
        return 1 if isinstance(self.action_space, spaces.Discrete) else get_action_dim(self.action_space)

    def initial_state(self, n_envs: int) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """
        :param n_envs: number of environments
        :return: the actor's empty memory ``(n_envs, *state_shape)``, zero previous actions (n_envs, action_dim) and rewards
        """
        memory = self.actor.memory.initial_state(n_envs, device=self.device)
        return memory, th.zeros(n_envs, self.buffer_action_dim, device=self.device), th.zeros(n_envs, device=self.device)

    def step(
        self,
        obs: PyTorchObs,
        memory: th.Tensor,
        prev_actions: th.Tensor,
        prev_rewards: th.Tensor,
        episode_starts: th.Tensor,
        deterministic: bool = False,
    ) -> tuple[th.Tensor, th.Tensor]:
        """
        One actor step (rollouts and :meth:`predict`).

        :param obs: ``(n_envs, *obs_shape)``
        :param memory: the actor's memory, ``(n_envs, *state_shape)``
        :param prev_actions: the previous actions in buffer form, (n_envs, action_dim)
        :param prev_rewards: the previous rewards, (n_envs,)
        :param episode_starts: (n_envs,) 1.0 where an episode starts (memory, previous action and reward emptied)
        :param deterministic: the distribution's mode instead of a sample
        :return: actions in buffer form (n_envs, action_dim) and the new memory
        """
        latent, memory = self.actor.latent_step(obs, prev_actions, prev_rewards, memory, episode_starts)
        return self.actor.act(latent, deterministic), memory

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        """The action at an episode's first step (empty memory); :meth:`predict` carries the memory across steps."""
        memory, prev_actions, prev_rewards = self.initial_state(self._n_envs(observation))
        starts = th.ones(prev_rewards.shape[0], device=self.device)
        return self.step(observation, memory, prev_actions, prev_rewards, starts, deterministic)[0]

    @staticmethod
    def _n_envs(observation: PyTorchObs) -> int:
        return (next(iter(observation.values())) if isinstance(observation, dict) else observation).shape[0]

    def _check_state(self, state: Any, n_envs: int) -> tuple[np.ndarray, np.ndarray]:
        memory_shape = (n_envs, *self.actor.memory.state_shape)
        action_shape = (n_envs, self.buffer_action_dim)
        hint = "pass the state returned by the previous predict() call, or None at the start of the episodes"
        if not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise ValueError(
                f"state must be a tuple (memory, prev_actions) with shapes {memory_shape} and {action_shape}: {hint}"
            )
        memory, prev_actions = np.asarray(state[0]), np.asarray(state[1])
        if memory.shape != memory_shape or prev_actions.shape != action_shape:
            raise ValueError(
                f"state has shapes {memory.shape} and {prev_actions.shape}, expected {memory_shape} (the actor's "
                f"{self.actor_memory_type} memory) and {action_shape} (previous actions) for n_envs={n_envs}: {hint}"
            )
        return memory, prev_actions

    def predict(  # type: ignore[override]  # takes reward= too (a memory that reads rewards)
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        reward: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """
        Get the policy action from an observation and the actor's state (like RecurrentPPO / ShmPPO's ``predict``).

        :param observation: the input observation, (n_envs, ...) or a single observation
        :param state: ``(memory, prev_actions)`` returned by the previous call; None starts new episodes
        :param episode_start: (n_envs,) True where an episode starts (memory, previous action and reward emptied);
            None for all False
        :param deterministic: Whether or not to return deterministic actions.
        :param reward: (n_envs,) the reward of the previous step, needed when the memory reads rewards
            (``"reward"`` in ``memory_inputs``) at steps that do not start an episode
        :return: the model's action and the next state
        """
        self.set_training_mode(False)
        obs_tensor, vectorized_env = self.obs_to_tensor(observation)
        n_envs = self._n_envs(obs_tensor)
        starts = np.zeros(n_envs, dtype=bool) if episode_start is None else np.asarray(episode_start, dtype=bool).reshape(-1)
        if starts.shape != (n_envs,):
            raise ValueError(f"episode_start has {starts.shape[0]} entries, expected one per environment ({n_envs})")
        memory, prev_actions, prev_rewards = self.initial_state(n_envs)
        if state is None:
            starts = np.ones(n_envs, dtype=bool)
        else:
            memory_np, actions_np = self._check_state(state, n_envs)
            memory = th.as_tensor(memory_np, dtype=th.float32, device=self.device)
            prev_actions = th.as_tensor(actions_np, device=self.device)
        if "reward" in self.memory_inputs and not starts.all():
            if reward is None:
                raise ValueError(
                    "This policy's memory reads the previous reward (memory_inputs includes 'reward'): pass reward= "
                    "(the rewards of the previous step) to predict()"
                )
            prev_rewards = th.as_tensor(np.asarray(reward, dtype=np.float32).reshape(n_envs), device=self.device)
        with th.no_grad():
            starts_tensor = th.as_tensor(starts, dtype=th.float32, device=self.device)
            buffer_actions, memory = self.step(obs_tensor, memory, prev_actions, prev_rewards, starts_tensor, deterministic)
        buffer_actions_np = buffer_actions.cpu().numpy()
        if isinstance(self.action_space, spaces.Box):
            actions = self.unscale_action(buffer_actions_np)
        else:
            actions = buffer_actions_np.reshape(-1)
        if not vectorized_env:
            actions = actions.squeeze(axis=0)
        return actions, (memory.cpu().numpy(), buffer_actions_np)


class ShmSACCnnPolicy(ShmSACPolicy):
    """:class:`ShmSACPolicy` with a NatureCNN features extractor (image observations); same parameters."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(*args, **kwargs)


class ShmSACMultiInputPolicy(ShmSACPolicy):
    """:class:`ShmSACPolicy` with a CombinedExtractor (Dict observations); same parameters."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", CombinedExtractor)
        super().__init__(*args, **kwargs)
