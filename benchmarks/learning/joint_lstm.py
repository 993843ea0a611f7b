"""
RecurrentPPO with one LSTM trained by both losses: the LSTM counterpart of ShmPPO's ``critic_memory="joint"``.

sb3-contrib's ``shared_lstm=True`` gives the critic the actor's LSTM output but detaches it, so the value loss never
trains the LSTM. ``JointLstmPolicy`` keeps the sharing and drops the detach in ``evaluate_actions`` (the only place
that computes gradients; rollouts run without them). Importing this module registers it as ``MlpJointLstmPolicy``
of ``RecurrentPPO``, so the RL Zoo can use it through ``--gym-packages``:

    python -m rl_zoo3.train --algo ppo_lstm --env VisualMatch-v0 --gym-packages benchmarks.learning.joint_lstm \\
        --conf-file benchmarks/learning/hyperparams/ppo_lstm_joint.yml --env-kwargs "door_colours:[0, 1, 2]"

A probe for the learning benchmark's analysis (is the value-trained memory, rather than SHM, what made VisualMatch
learnable?), not part of the package.
"""

import torch as th
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.common.recurrent.type_aliases import RNNStates


class JointLstmPolicy(RecurrentActorCriticPolicy):
    """``RecurrentActorCriticPolicy`` with ``shared_lstm=True`` whose value loss also trains the shared LSTM."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.update(shared_lstm=True, enable_critic_lstm=False)
        super().__init__(*args, **kwargs)

    def evaluate_actions(
        self, obs: th.Tensor, actions: th.Tensor, lstm_states: RNNStates, episode_starts: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        features = self.extract_features(obs)
        latent, _ = self._process_sequence(features, lstm_states.pi, episode_starts, self.lstm_actor)
        distribution = self._get_action_dist_from_latent(self.mlp_extractor.forward_actor(latent))
        values = self.value_net(self.mlp_extractor.forward_critic(latent))  # no detach: the value loss trains the LSTM
        return values, distribution.log_prob(actions), distribution.entropy()


RecurrentPPO.policy_aliases["MlpJointLstmPolicy"] = JointLstmPolicy
