"""Actor-critic policies whose recurrent core is a Stable Hadamard Memory instead of an LSTM."""

import warnings
from typing import Any, Literal, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    MlpExtractor,
    NatureCNN,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.common.utils import get_device
from torch import nn

from sb3_shm.common.memory.scan import ScanImpl
from sb3_shm.common.memory.shm import (
    Calibration,
    ShmCell,
    all_finite,
    check_memory_arguments,
    is_integer,
    memory_is_bounded,
    unbounded_memory_hint,
)
from sb3_shm.common.recurrent.type_aliases import ShmReplay, ShmStates


class ShmMlpExtractor(MlpExtractor):
    """
    SB3's :class:`MlpExtractor` after an optional trunk: hidden layers (``Linear`` + activation) applied to the
    memory's output and shared by the policy and value networks, ``trunk -> (pi layers, vf layers)``.

    :param feature_dim: size of the memory's output
    :param trunk: sizes of the shared hidden layers (empty: none, SB3's MlpExtractor)
    :param net_arch: the policy and value networks after the trunk (as :class:`MlpExtractor`)
    :param activation_fn: activation after each layer
    :param device: PyTorch device
    """

    def __init__(
        self,
        feature_dim: int,
        trunk: list[int],
        net_arch: list[int] | dict[str, list[int]],
        activation_fn: type[nn.Module],
        device: th.device | str = "auto",
    ) -> None:
        layers: list[nn.Module] = []
        for size in trunk:
            layers += [nn.Linear(feature_dim, size), activation_fn()]
            feature_dim = size
        super().__init__(feature_dim, net_arch, activation_fn, device)
        # No parameters when trunk is empty: the state dict of checkpoints saved before this option is unchanged
        self.trunk = nn.Sequential(*layers).to(get_device(device))

    def forward_trunk(self, features: th.Tensor) -> th.Tensor:
        """:return: the trunk's output (the features themselves without a trunk), the input of both networks"""
        return self.trunk(features)

    def forward(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        shared = self.forward_trunk(features)
        return self.forward_actor(shared), self.forward_critic(shared)


CriticMemory = Literal["separate", "shared", "joint", "none"]
CRITIC_MEMORIES = ("separate", "shared", "joint", "none")
# The deprecated flags (shared_memory, enable_critic_memory, critic_trains_memory) of each critic_memory mode
_FLAGS_TO_CRITIC_MEMORY = {
    (False, True, False): "separate",
    (True, False, False): "shared",
    (True, False, True): "joint",
    (False, False, False): "none",
}


def resolve_critic_memory(
    critic_memory: str | None = None,
    shared_memory: bool | None = None,
    enable_critic_memory: bool | None = None,
    critic_trains_memory: bool | None = None,
    warn: bool = True,
) -> CriticMemory:
    """
    The critic's memory mode, from ``critic_memory`` or the three flags it replaces (deprecated: they encode the same
    four modes, and five of their eight combinations are invalid). The one validation of this option: the policy,
    the RL Zoo's config check and the sampler all call it.

    :param critic_memory: ``"separate"``, ``"shared"``, ``"joint"``, ``"none"``, or None (the default, "separate")
    :param shared_memory: deprecated flag, None when not given
    :param enable_critic_memory: deprecated flag, None when not given
    :param critic_trains_memory: deprecated flag, None when not given
    :param warn: emit the DeprecationWarning for the flags
    :return: the mode
    :raises ValueError: for an unknown mode, the flags and the mode together, or an invalid combination of flags
    """
    flags = {
        "shared_memory": shared_memory,
        "enable_critic_memory": enable_critic_memory,
        "critic_trains_memory": critic_trains_memory,
    }
    given = {name: value for name, value in flags.items() if value is not None}
    if not given:
        if critic_memory is None:
            return "separate"
        if not (isinstance(critic_memory, str) and critic_memory in CRITIC_MEMORIES):
            raise ValueError(f"Unknown critic_memory {critic_memory!r}: choose one of {CRITIC_MEMORIES}")
        return cast(CriticMemory, critic_memory)
    if critic_memory is not None:
        raise ValueError(f"Pass critic_memory alone, without the flags it replaces ({', '.join(given)})")
    shared = bool(given.get("shared_memory", False))
    key = (shared, bool(given.get("enable_critic_memory", not shared)), bool(given.get("critic_trains_memory", False)))
    mode = _FLAGS_TO_CRITIC_MEMORY.get(key)
    if mode is None:
        raise ValueError(
            f"{', '.join(f'{name}={value}' for name, value in given.items())} is not a valid critic memory: use "
            "critic_memory='separate' (its own memory), 'shared' (the actor's, trained by the policy loss), 'joint' "
            "(the actor's, trained by both losses) or 'none'"
        )
    if warn:
        warnings.warn(f"{', '.join(given)} are deprecated: use critic_memory={mode!r}", DeprecationWarning, stacklevel=3)
    return cast(CriticMemory, mode)


class ShmActorCriticPolicy(ActorCriticPolicy):
    """
    Recurrent actor-critic policy with a Stable Hadamard Memory (SHM) between the features extractor and the MLPs:
    ``obs -> features extractor -> ShmCell -> [trunk] -> mlp_extractor -> action / value heads``.

    The knobs mirror sb3-contrib's ``RecurrentActorCriticPolicy`` (``lstm_*`` -> ``memory_*``), and so do the methods
    marked ``type: ignore[override]``: they take the memory state and the episode starts besides the observation.

    The calibration index of each step is drawn from torch's global RNG (``th.randint``), in rollouts and in
    :meth:`predict` alike, so ``set_random_seed`` (or ``ShmPPO(seed=...)``) makes ``predict`` reproducible.

    :param observation_space: Observation space
    :param action_space: Action space
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: The specification of the policy and value networks (after the memory).
    :param activation_fn: Activation function
    :param ortho_init: Whether to use orthogonal initialization (features extractor, MLPs and heads; the memory keeps
        its own initialization)
    :param use_sde: Whether to use State Dependent Exploration or not
    :param log_std_init: Initial value for the log standard deviation
    :param full_std: Whether to use (n_features x n_actions) parameters for the std instead of only (n_features,)
        when using gSDE
    :param use_expln: Use ``expln()`` function instead of ``exp()`` to ensure a positive standard deviation
    :param squash_output: Whether to squash the output using a tanh function (gSDE)
    :param features_extractor_class: Features extractor to use.
    :param features_extractor_kwargs: Keyword arguments to pass to the features extractor.
    :param share_features_extractor: If True, the features extractor is shared between the policy and value networks.
    :param normalize_images: Whether to normalize images or not, dividing by 255.0 (True by default)
    :param optimizer_class: The optimizer to use, ``th.optim.Adam`` by default
    :param optimizer_kwargs: Additional keyword arguments, excluding the learning rate, to pass to the optimizer
    :param memory_size: H, the memory of each environment is an H x H matrix
    :param memory_input_dim: features go through ``ReLU(Linear(features_dim, memory_input_dim))`` before the memory
        (the authors' set-up; the memory's LayerNorm would erase the magnitude of low-dimensional raw features);
        None feeds the features to the memory directly
    :param bank_size: L, number of learned calibration rows ``Theta``
    :param calibration: ``"random"`` (as the paper describes it; the authors' meta-RL code), ``"fixed"`` (what the
        authors' POPGym code ran) or ``"none"``, see :class:`ShmCell`
    :param memory_clamp: bound on |M| applied at every step (the authors' guard), None to disable. Without it, random
        or fixed calibration with ``memory_decay > 0.5`` leaves the memory unbounded: a UserWarning, and a
        FloatingPointError if it overflows (``docs/guide/memory.md`` states the bound of each option)
    :param memory_decay: constant forgetting factor gamma in ``C_t = gamma * (1 + tanh(...))``, in (0, 1]; 1 is the
        paper's cell. Values 0.7-0.9 let the memory track the recent past from the start (e.g. velocities in the
        NoVel tasks); keep 1 for tasks that must hold a cue for long. See :class:`ShmCell`.
    :param critic_memory: what the critic remembers with (see :func:`resolve_critic_memory`): ``"separate"`` (the
        default: its own memory, as RecurrentPPO's ``enable_critic_lstm``), ``"shared"`` (the actor's memory, trained
        by the policy loss only, as RecurrentPPO's ``shared_lstm``), ``"joint"`` (the actor's memory, trained by the
        value loss too, as CleanRL's recurrent PPO; why: the value of the last phase of a recall task depends on the
        cue, so the value loss teaches the memory to keep the cue long before the policy gradient alone would,
        VisualMatch in ``docs/results.md``) or ``"none"`` (no memory: a linear map of the features)
    :param memory_output_dim: size of the memory's output layer ``W_out`` (the authors' POPGym model: 1024); None
        (the default) for H. The trunk or the MLPs read this many features.
    :param trunk: sizes of hidden layers (``Linear`` + ``activation_fn``) applied to the memory's output and shared by
        the actor and the critic, before ``net_arch``'s ``pi`` / ``vf`` layers (the authors' POPGym model: ``[64]``, one
        trunk trained by both losses). Needs ``critic_memory="joint"``. None or empty: no trunk.
    :param shared_memory: deprecated, use ``critic_memory`` (``True`` with ``enable_critic_memory=False``: "shared")
    :param enable_critic_memory: deprecated, use ``critic_memory`` (``True``: "separate"; ``False`` alone: "none")
    :param critic_trains_memory: deprecated, use ``critic_memory`` (``True`` with a shared memory: "joint")
    :param scan_impl: implementation of the whole-sequence recurrence used in training
        (``"auto"``: ``"fused"`` on CPU, ``"triton"`` on CUDA, when installed; or ``"sequential"``, ``"chunked"``,
        ``"scan"``, ``"loop"``; see :mod:`sb3_shm.common.memory.scan`)
    :param check_observations: raise a ValueError naming the environment (and the Dict key) when an observation
        holds NaN or inf, in rollouts (:meth:`forward`, :meth:`predict_values`) and in :meth:`predict`, instead of
        letting it poison the memory. One reduction over the observations per step; False skips it (the
        memory's own finiteness check still stops a NaN, with a less specific message).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        use_sde: bool = False,
        log_std_init: float = 0.0,
        full_std: bool = True,
        use_expln: bool = False,
        squash_output: bool = False,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        share_features_extractor: bool = True,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        memory_size: int = 32,
        memory_input_dim: int | None = 64,
        bank_size: int = 128,
        calibration: Calibration = "random",
        memory_clamp: float | None = 100.0,
        memory_decay: float = 1.0,
        critic_memory: CriticMemory | None = None,
        memory_output_dim: int | None = None,
        trunk: list[int] | None = None,
        scan_impl: ScanImpl = "auto",
        check_observations: bool = True,
        shared_memory: bool | None = None,
        enable_critic_memory: bool | None = None,
        critic_trains_memory: bool | None = None,
    ):
        check_memory_arguments(memory_size, bank_size, calibration, memory_clamp, scan_impl, memory_decay)
        if memory_input_dim is not None and not (is_integer(memory_input_dim) and memory_input_dim >= 1):
            raise ValueError(f"memory_input_dim must be an integer >= 1 or None (no embedding), got {memory_input_dim!r}")
        _check_features_extractor(type(self), observation_space, features_extractor_class)
        critic_memory = resolve_critic_memory(critic_memory, shared_memory, enable_critic_memory, critic_trains_memory)
        if critic_memory in ("shared", "joint") and not share_features_extractor:
            raise ValueError(
                f"critic_memory={critic_memory!r} needs share_features_extractor=True: one memory reads one feature vector."
            )
        if memory_output_dim is not None and not (is_integer(memory_output_dim) and memory_output_dim >= 1):
            raise ValueError(f"memory_output_dim must be an integer >= 1 or None (H), got {memory_output_dim!r}")
        trunk = list(trunk or [])
        if not all(is_integer(size) and size >= 1 for size in trunk):
            raise ValueError(f"trunk must be a list of layer sizes (integers >= 1), got {trunk!r}")
        if trunk and critic_memory != "joint":
            raise ValueError(
                f"trunk={trunk} is shared by the actor and the critic, so it needs their shared memory trained by both "
                f"losses: set critic_memory='joint' (got {critic_memory!r}), or put the layers in "
                "net_arch=dict(pi=..., vf=...)"
            )
        memory_size = int(memory_size)
        # Read by _build_mlp_extractor (called by ActorCriticPolicy.__init__)
        self.memory_output_dim = int(memory_output_dim or memory_size)
        self.trunk = [int(size) for size in trunk]
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch,
            activation_fn,
            ortho_init,
            use_sde,
            log_std_init,
            full_std,
            use_expln,
            squash_output,
            features_extractor_class,
            features_extractor_kwargs,
            share_features_extractor,
            normalize_images,
            optimizer_class,
            optimizer_kwargs,
        )
        self.memory_size = memory_size
        self.critic_memory = critic_memory
        # What the forward passes branch on
        self.shared_memory = critic_memory in ("shared", "joint")
        self.critic_trains_memory = critic_memory == "joint"
        self.check_observations = check_observations
        memory_kwargs: dict[str, Any] = dict(
            memory_size=memory_size,
            embed_dim=memory_input_dim,
            output_dim=self.memory_output_dim,
            bank_size=bank_size,
            calibration=calibration,
            clamp=memory_clamp,
            scan_impl=scan_impl,
            decay=memory_decay,
        )
        if not memory_is_bounded(calibration, memory_clamp, memory_decay):
            warnings.warn(unbounded_memory_hint(calibration, float(memory_decay)), UserWarning, stacklevel=2)
        with warnings.catch_warnings():
            # the cells' own copy of the warning above: one per policy, not one per cell
            warnings.filterwarnings("ignore", message="with memory_clamp=None", category=UserWarning)
            self.memory_actor = ShmCell(self.features_dim, **memory_kwargs)
            self.memory_critic = ShmCell(self.features_dim, **memory_kwargs) if critic_memory == "separate" else None
        # Without a memory, the critic still maps the features to the size the value MLP expects
        self.critic = nn.Linear(self.features_dim, self.memory_output_dim) if critic_memory == "none" else None
        # Setup optimizer with initial learning rate (again: the memories were created after ActorCriticPolicy's)
        # as SB3's policies: optimizer_class is typed as the base Optimizer, whose constructor takes no lr
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[call-arg]  # see above

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        cell = self.memory_actor
        data.update(
            memory_size=cell.memory_size,
            memory_input_dim=cell.embed_dim,
            bank_size=cell.bank_size,
            calibration=cell.calibration,
            memory_clamp=cell.clamp,
            memory_decay=cell.decay,
            critic_memory=self.critic_memory,
            memory_output_dim=cell.output_dim,
            trunk=self.trunk,
            scan_impl=cell.scan_impl,
            check_observations=self.check_observations,
        )
        return data

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor: ShmMlpExtractor = ShmMlpExtractor(
            self.memory_output_dim,
            trunk=self.trunk,
            net_arch=self.net_arch,
            activation_fn=self.activation_fn,
            device=self.device,
        )

    def initial_state(self, n_envs: int) -> ShmStates:
        """
        :param n_envs: number of environments
        :return: empty memories, each (n_envs, H, H)
        """
        memory = self.memory_actor.initial_state(n_envs, device=self.device)
        return ShmStates(memory, memory.clone())

    def sample_theta_indices(self, n: int) -> th.Tensor:
        """:return: (n,) calibration indices for one step of n environments (shared by actor and critic memory)."""
        return self.memory_actor.sample_theta_indices(n, device=self.device)

    @staticmethod
    def _process_sequence(
        features: th.Tensor,
        memory: th.Tensor,
        episode_starts: th.Tensor,
        theta_idx: th.Tensor,
        cell: ShmCell,
    ) -> tuple[th.Tensor, th.Tensor]:
        """
        Run the memory over n_seq sequences (n_seq = n_envs and T = 1 during rollouts).

        :param features: (n_seq * T, D)
        :param memory: (n_seq, H, H)
        :param episode_starts: (n_seq * T,)
        :param theta_idx: (n_seq * T,)
        :param cell: the memory cell
        :return: output (n_seq * T, H) and the last memory (n_seq, H, H)
        """
        n_seq = memory.shape[0]
        if features.shape[0] == n_seq:
            return cell.step(features, memory, episode_starts, theta_idx)
        # (n_seq * T, D) -> (n_seq, T, D)
        output, memory = cell(
            features.reshape(n_seq, -1, features.shape[-1]),
            memory,
            episode_starts.reshape(n_seq, -1),
            theta_idx.reshape(n_seq, -1),
        )
        # (n_seq, T, H) -> (n_seq * T, H)
        return output.reshape(-1, output.shape[-1]), memory

    def _latents(
        self,
        obs: PyTorchObs,
        states: ShmStates,
        episode_starts: th.Tensor,
        theta_idx: th.Tensor,
    ) -> tuple[th.Tensor, th.Tensor, ShmStates]:
        """Features -> memories -> (latent_pi, latent_vf, new states), shared by forward and evaluate_actions."""
        features = self.extract_features(obs)
        # one tensor with a shared features extractor, a (pi, vf) pair without
        pi_features, vf_features = features if isinstance(features, tuple) else (features, features)
        latent_pi, memory_pi = self._process_sequence(pi_features, states.pi, episode_starts, theta_idx, self.memory_actor)
        # the trunk (only with critic_memory="joint", else the identity) belongs to the actor's memory output
        latent_pi = self.mlp_extractor.forward_trunk(latent_pi)
        if self.memory_critic is not None:
            latent_vf, memory_vf = self._process_sequence(
                vf_features, states.vf, episode_starts, theta_idx, self.memory_critic
            )
        elif self.critic_trains_memory:
            latent_vf, memory_vf = latent_pi, memory_pi
        elif self.shared_memory:
            # Re-use the actor's memory but do not backpropagate the critic's loss into it
            latent_vf, memory_vf = latent_pi.detach(), memory_pi.detach()
        else:
            assert self.critic is not None, "critic_memory='none' builds it"
            latent_vf, memory_vf = self.critic(vf_features), memory_pi
        return (
            self.mlp_extractor.forward_actor(latent_pi),
            self.mlp_extractor.forward_critic(latent_vf),
            ShmStates(memory_pi, memory_vf),
        )

    def forward(  # type: ignore[override]
        self,
        obs: PyTorchObs,
        states: ShmStates,
        episode_starts: th.Tensor,
        deterministic: bool = False,
        theta_idx: th.Tensor | None = None,
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor, ShmStates]:
        """
        One rollout step in all the networks (actor and critic).

        :param obs: Observation, (n_envs, ...)
        :param states: memories before this step
        :param episode_starts: (n_envs,) whether the observations start new episodes (memory reset)
        :param deterministic: Whether to sample or use deterministic actions
        :param theta_idx: (n_envs,) calibration indices; drawn here if None
        :return: action, value, log probability of the action, new memories
        """
        if self.check_observations:
            check_finite_observations(obs)
        if theta_idx is None:
            theta_idx = self.sample_theta_indices(states.pi.shape[0])
        latent_pi, latent_vf, states = self._latents(obs, states, episode_starts, theta_idx)
        values = self.value_net(latent_vf)
        distribution = self._get_action_dist_from_latent(latent_pi)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        actions = actions.reshape((-1, *(self.action_space.shape or ())))
        return actions, values, log_prob, states

    def get_distribution(  # type: ignore[override]
        self,
        obs: PyTorchObs,
        memory: th.Tensor,
        episode_starts: th.Tensor,
        theta_idx: th.Tensor | None = None,
    ) -> tuple[Distribution, th.Tensor]:
        """
        :param obs: Observation, (n_envs, ...)
        :param memory: the actor's memory, (n_envs, H, H)
        :param episode_starts: (n_envs,)
        :param theta_idx: (n_envs,) calibration indices; drawn here if None
        :return: the action distribution and the new actor memory
        """
        if theta_idx is None:
            theta_idx = self.sample_theta_indices(memory.shape[0])
        features = super(ActorCriticPolicy, self).extract_features(obs, self.pi_features_extractor)
        latent_pi, memory = self._process_sequence(features, memory, episode_starts, theta_idx, self.memory_actor)
        latent_pi = self.mlp_extractor.forward_trunk(latent_pi)
        return self._get_action_dist_from_latent(self.mlp_extractor.forward_actor(latent_pi)), memory

    def predict_values(  # type: ignore[override]
        self,
        obs: PyTorchObs,
        memory: th.Tensor,
        episode_starts: th.Tensor,
        theta_idx: th.Tensor | None = None,
    ) -> th.Tensor:
        """
        :param obs: Observation, (n_envs, ...)
        :param memory: the critic's memory (the actor's when it is shared), (n_envs, H, H)
        :param episode_starts: (n_envs,)
        :param theta_idx: (n_envs,) calibration indices; drawn here if None
        :return: the estimated values, (n_envs, 1)
        """
        if self.check_observations:
            check_finite_observations(obs)
        if theta_idx is None:
            theta_idx = self.sample_theta_indices(memory.shape[0])
        features = super(ActorCriticPolicy, self).extract_features(obs, self.vf_features_extractor)
        if self.memory_critic is not None:
            latent_vf, _ = self._process_sequence(features, memory, episode_starts, theta_idx, self.memory_critic)
        elif self.shared_memory:
            latent_vf, _ = self._process_sequence(features, memory, episode_starts, theta_idx, self.memory_actor)
            latent_vf = self.mlp_extractor.forward_trunk(latent_vf)
        else:
            assert self.critic is not None, "critic_memory='none' builds it"
            latent_vf = self.critic(features)
        return self.value_net(self.mlp_extractor.forward_critic(latent_vf))

    def evaluate_actions(  # type: ignore[override]
        self, obs: PyTorchObs, actions: th.Tensor, replay: ShmReplay, episode_starts: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        """
        Recompute whole sequences with the memories and calibration indices of the rollout.

        :param obs: (n_seq * T, ...)
        :param actions: (n_seq * T, ...)
        :param replay: memories at the sequence starts and the rollout's calibration indices
        :param episode_starts: (n_seq * T,)
        :return: values, log likelihood of the actions and entropy of the action distribution, each (n_seq * T,)
        """
        latent_pi, latent_vf, _ = self._latents(obs, replay.memory, episode_starts, replay.theta_idx)
        distribution = self._get_action_dist_from_latent(latent_pi)
        return self.value_net(latent_vf), distribution.log_prob(actions), distribution.entropy()

    def _predict(  # type: ignore[override]
        self,
        observation: PyTorchObs,
        memory: th.Tensor,
        episode_starts: th.Tensor,
        deterministic: bool = False,
    ) -> tuple[th.Tensor, th.Tensor]:
        """Actions and the new actor memory for one step (the critic is not needed to act)."""
        distribution, memory = self.get_distribution(observation, memory, episode_starts)
        return distribution.get_actions(deterministic=deterministic), memory

    def _check_state(self, state: Any, n_envs: int) -> np.ndarray:
        expected = (n_envs, self.memory_size, self.memory_size)
        hint = "pass the state returned by the previous predict() call, or None to start with an empty memory"
        if not (isinstance(state, (tuple, list)) and len(state) == 1):
            raise ValueError(f"state must be a tuple (memory_pi,) holding an array of shape {expected}: {hint}")
        memory = np.asarray(state[0])
        if memory.shape != expected:
            raise ValueError(
                f"state memory has shape {memory.shape}, expected {expected} "
                f"(n_envs={n_envs}, memory_size={self.memory_size}): {hint}"
            )
        return memory

    def predict(  # type: ignore[override]
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """
        Get the policy action from an observation and the memory state.

        :param observation: the input observation, (n_envs, ...) or a single observation
        :param state: the state returned by the previous call: ``(memory_pi,)``, the actor's memory (n_envs, H, H);
            None for an empty memory. Like RecurrentPPO's ``predict``, only the actor runs: the critic's memory is not
            needed to act.
        :param episode_start: (n_envs,) True where an episode starts (the memory is reset); None for all False
        :param deterministic: Whether or not to return deterministic actions.
        :return: the model's action and the next state
        """
        self.set_training_mode(False)
        obs, vectorized_env = self.obs_to_tensor(observation)
        if self.check_observations:
            check_finite_observations(obs)
        n_envs = (obs[next(iter(obs.keys()))] if isinstance(obs, dict) else obs).shape[0]

        if state is None:
            memory = self.memory_actor.initial_state(n_envs, device=self.device)
        else:
            memory = th.as_tensor(self._check_state(state, n_envs), dtype=th.float32, device=self.device)
        if episode_start is None:
            episode_start = np.zeros(n_envs, dtype=bool)
        episode_start = np.asarray(episode_start).reshape(-1)
        if episode_start.shape != (n_envs,):
            raise ValueError(f"episode_start has {episode_start.shape[0]} entries, expected one per environment ({n_envs})")

        with th.no_grad():
            episode_starts = th.as_tensor(episode_start, dtype=th.float32, device=self.device)
            action_tensor, memory = self._predict(obs, memory, episode_starts, deterministic=deterministic)
        new_state = (memory.cpu().numpy(),)

        actions = action_tensor.cpu().numpy().reshape((-1, *(self.action_space.shape or ())))
        if isinstance(self.action_space, spaces.Box):
            if self.squash_output:
                actions = self.unscale_action(actions)
            else:
                actions = np.clip(actions, self.action_space.low, self.action_space.high)
        if not vectorized_env:
            actions = actions.squeeze(axis=0)
        return actions, new_state


class ShmActorCriticCnnPolicy(ShmActorCriticPolicy):
    """:class:`ShmActorCriticPolicy` with a NatureCNN features extractor (image observations); same parameters."""

    def __init__(self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN, **kwargs: Any):
        # *args stop before features_extractor_class, which is keyword-only here
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)  # type: ignore[misc]


class ShmMultiInputActorCriticPolicy(ShmActorCriticPolicy):
    """:class:`ShmActorCriticPolicy` with a CombinedExtractor (Dict observations); same parameters."""

    def __init__(self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor, **kwargs: Any):
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)  # type: ignore[misc]  # as above


def check_finite_observations(obs: th.Tensor | dict[str, th.Tensor]) -> None:
    """
    Raise a ValueError naming the environment(s) (and the Dict key) whose observation holds NaN or inf.

    :param obs: a batch of observations, (n_envs, ...), or a dict of them; integer observations cannot hold NaN
    """
    for key, value in obs.items() if isinstance(obs, dict) else [(None, obs)]:
        if value.is_floating_point() and not all_finite(value):
            bad = th.nonzero(~th.isfinite(value).reshape(value.shape[0], -1).all(dim=1)).flatten().tolist()
            name = "observation" if key is None else f"observation[{key!r}]"
            raise ValueError(
                f"The {name} of environment(s) {bad} holds NaN or inf, which the memory would keep until the episode "
                "ends: fix the environment or replace them in a wrapper (e.g. np.nan_to_num in "
                "gymnasium.wrappers.TransformObservation). policy_kwargs=dict(check_observations=False) turns this "
                "check off."
            )


def _check_features_extractor(
    policy_class: type, observation_space: spaces.Space, features_extractor_class: type[BaseFeaturesExtractor]
) -> None:
    """
    Refuse a Dict observation space with a features extractor that needs one array (FlattenExtractor, NatureCNN), as
    Stable-Baselines3's ``BaseAlgorithm`` refuses ``MlpPolicy`` / ``CnnPolicy`` with Dict observations: otherwise the
    first step fails with ``'dict' object has no attribute 'flatten'``.

    :param policy_class: the policy being built (named in the message)
    :param observation_space: its observation space
    :param features_extractor_class: its features extractor
    """
    if isinstance(observation_space, spaces.Dict) and issubclass(features_extractor_class, (FlattenExtractor, NatureCNN)):
        raise ValueError(
            f"You must use `MultiInputShmPolicy` when working with dict observation space, not {policy_class.__name__} "
            f"with {features_extractor_class.__name__} (MlpShmPolicy / CnnShmPolicy take one array): use "
            "MultiInputShmPolicy, or a features extractor for Dict observations"
        )
