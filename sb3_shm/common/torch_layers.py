"""Features extractors for memory policies."""

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class TimeEncodingExtractor(BaseFeaturesExtractor):
    """
    The SHM authors' POPGym input layer (popgym's ``BaseModel``: ``feature_map`` then ``apply_embedding`` with
    ``embedding="sine"``, ``embedding_mode="add"``, ``scale_embedding=True``)::

        x   = LayerNorm(Linear(obs, features_dim))       # no affine
        out = x * (1 - s);  out[:encoding_size] += s * pe(t)

    with ``s`` a learned scalar (init 0.5, used clamped to [0, 1]) and ``pe(t)`` the sine encoding of the episode step,
    which must be the LAST ``encoding_size`` entries of the observation, as the env wrapper
    :class:`sb3_shm.envs.SinePositionalEncoding` ``(size=encoding_size, max_period=1024)`` appends them.

    Why the step comes from an env wrapper and not a counter in the policy: a counter would become part of the
    recurrent state (``predict``'s state, the rollout buffer); with the wrapper the state stays the memory alone.

    Deviation: popgym clamps ``s.data`` in place before each use; here the forward pass uses ``s.clamp(0, 1)`` (same
    value, the parameter itself may drift outside [0, 1] where its gradient is then 0).

    :param observation_space: a 1-D ``Box`` whose last ``encoding_size`` entries are the step encoding
    :param features_dim: size of the output (the authors: 128)
    :param encoding_size: number of encoding entries at the end of the observation (the authors: 128); at most
        ``features_dim``
    """

    def __init__(self, observation_space: spaces.Space, features_dim: int = 128, encoding_size: int = 128) -> None:
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(
                f"TimeEncodingExtractor needs a 1-D Box observation space ending with the step encoding, got "
                f"{observation_space}: wrap the env in sb3_shm.envs.SinePositionalEncoding"
            )
        obs_dim = observation_space.shape[0] - encoding_size
        if obs_dim < 1:
            raise ValueError(
                f"TimeEncodingExtractor: the observation has {observation_space.shape[0]} entries, not more than "
                f"encoding_size={encoding_size}: wrap the env in sb3_shm.envs.SinePositionalEncoding(size={encoding_size})"
            )
        if not 1 <= encoding_size <= features_dim:
            raise ValueError(f"encoding_size must be in [1, features_dim={features_dim}], got {encoding_size}")
        super().__init__(observation_space, features_dim)
        self.obs_dim = obs_dim
        self.encoding_size = encoding_size
        self.linear = nn.Linear(obs_dim, features_dim)
        self.norm = nn.LayerNorm(features_dim, elementwise_affine=False)
        # s, the strength of the encoding (popgym: embedding_strength)
        self.strength = nn.Parameter(th.tensor(0.5))

    def forward(self, observations: th.Tensor) -> th.Tensor:
        """
        :param observations: (B, obs_dim + encoding_size), the step encoding last
        :return: features (B, features_dim)
        """
        obs, encoding = observations.split([self.obs_dim, self.encoding_size], dim=-1)
        strength = self.strength.clamp(0.0, 1.0)
        features = self.norm(self.linear(obs)) * (1.0 - strength)  # (B, features_dim)
        # (B, encoding_size) padded with zeros to (B, features_dim): the encoding goes to the first entries
        encoding = nn.functional.pad(encoding * strength, (0, self.features_dim - self.encoding_size))
        return features + encoding
