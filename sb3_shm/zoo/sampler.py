"""
Optuna samplers for ``rl_zoo3.train --optimize``: the search space of each algorithm, and the converters that turn a
trial's parameters back into hyperparameters (``--trial-id``). Public: the learning benchmark reuses the PPO part.
"""

from typing import Any


def sample_ppo_part(trial: Any) -> dict[str, Any]:
    """
    PPO's hyperparameters of the ShmPPO sampler, also used by the learning benchmark's RecurrentPPO sampler so that
    both recurrent agents are tuned over the same PPO space (``benchmarks/learning/optimize.py``).

    Rollouts are kept to at most 512 steps per env, and ``batch_size <= n_steps`` (see :func:`convert_ppo_part`) so
    that ShmPPO's training sequences (``gcd(n_steps, batch_size) = batch_size`` steps) stay long.
    """
    return {
        "n_steps_pow": trial.suggest_int("n_steps_pow", 5, 9),
        "batch_size_pow": trial.suggest_int("batch_size_pow", 4, 9),
        "one_minus_gamma": trial.suggest_float("one_minus_gamma", 0.0001, 0.03, log=True),
        "one_minus_gae_lambda": trial.suggest_float("one_minus_gae_lambda", 0.0001, 0.1, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 3e-3, log=True),
        "ent_coef": trial.suggest_float("ent_coef", 1e-8, 0.1, log=True),
        "clip_range": trial.suggest_categorical("clip_range", [0.1, 0.2, 0.3]),
        "n_epochs": trial.suggest_categorical("n_epochs", [1, 5, 10, 20]),
        "max_grad_norm": trial.suggest_float("max_grad_norm", 0.3, 2.0),
        "net_arch": trial.suggest_categorical("net_arch", ["tiny", "small"]),
        "activation_fn": trial.suggest_categorical("activation_fn", ["tanh", "relu"]),
    }


def convert_ppo_part(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """
    Pop :func:`sample_ppo_part`'s keys from ``params``.

    :return: the PPO hyperparameters and the policy_kwargs they set (``net_arch``, ``activation_fn``)
    """
    from torch import nn

    n_steps = 2 ** params.pop("n_steps_pow")
    hyperparams = {
        "n_steps": n_steps,
        "batch_size": min(2 ** params.pop("batch_size_pow"), n_steps),
        "gamma": 1 - params.pop("one_minus_gamma"),
        "gae_lambda": 1 - params.pop("one_minus_gae_lambda"),
        **{key: params.pop(key) for key in ("learning_rate", "ent_coef", "clip_range", "n_epochs", "max_grad_norm")},
    }
    policy_kwargs = {
        "net_arch": {"tiny": dict(pi=[64], vf=[64]), "small": dict(pi=[64, 64], vf=[64, 64])}[params.pop("net_arch")],
        "activation_fn": {"tanh": nn.Tanh, "relu": nn.ReLU}[params.pop("activation_fn")],
    }
    return hyperparams, policy_kwargs


def sample_shm_ppo_params(trial: Any, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """Sampler for ShmPPO: PPO's hyperparameters (:func:`sample_ppo_part`) plus the memory's (size, calibration mode,
    bank size, decay, and whether actor and critic have separate memories or one trained by both losses)."""
    sampled = {
        **sample_ppo_part(trial),
        "memory_size": trial.suggest_categorical("memory_size", [8, 16, 32, 64]),
        "bank_size": trial.suggest_categorical("bank_size", [16, 64, 128, 512]),
        "calibration": trial.suggest_categorical("calibration", ["random", "fixed", "none"]),
        "memory_decay": trial.suggest_categorical("memory_decay", [0.7, 0.8, 0.9, 0.95, 1.0]),
        "memory_sharing": trial.suggest_categorical("memory_sharing", ["separate", "joint"]),
    }
    hyperparams = convert_shm_ppo_params(sampled)
    trial.set_user_attr("gamma", hyperparams["gamma"])
    trial.set_user_attr("n_steps", hyperparams["n_steps"])
    trial.set_user_attr("batch_size", hyperparams["batch_size"])
    return hyperparams


def convert_shm_ppo_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """Turn sampled (trial.params) values into ShmPPO hyperparameters (also used by ``--trial-id``)."""
    params = dict(sampled_params)
    hyperparams, policy_kwargs = convert_ppo_part(params)
    policy_kwargs.update(
        memory_size=params.pop("memory_size"),
        bank_size=params.pop("bank_size"),
        calibration=params.pop("calibration"),
        # Trials of an older sampler had no decay: the paper's cell
        memory_decay=params.pop("memory_decay", 1.0),
    )
    # memory_sharing's values are critic_memory modes; trials of an older sampler had none: separate memories
    policy_kwargs.update(critic_memory=params.pop("memory_sharing", "separate"))
    # The zoo lays these values over the entry's: an entry's sequence_length (VisualMatch's 256, POPGym's 128) need
    # not divide the sampled n_steps. None is the default, gcd(n_steps, batch_size) = batch_size: the longest allowed.
    hyperparams["sequence_length"] = None
    return {**hyperparams, "policy_kwargs": policy_kwargs, **params}


def sample_shm_sac_params(trial: Any, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Sampler for ShmSAC: rl_zoo3's SAC search space (gamma, learning rate, train frequency, tau, network size), with
    the batch counted in windows (4 to 64), plus the window length and the memories (kind of each, SHM size,
    calibration and decay). Entries need ``learning_starts >= 64`` (the longest sampled window; the default is 1000).
    """
    sampled = {
        "one_minus_gamma": trial.suggest_float("one_minus_gamma", 0.0001, 0.03, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 0.002, log=True),
        "batch_size_pow": trial.suggest_int("batch_size_pow", 2, 6),
        "train_freq": trial.suggest_int("train_freq", 1, 10),
        "tau": trial.suggest_float("tau", 0.001, 0.08, log=True),
        "net_arch": trial.suggest_categorical("net_arch", ["small", "medium"]),
        "sequence_length_pow": trial.suggest_int("sequence_length_pow", 3, 6),
        "actor_memory_type": trial.suggest_categorical("actor_memory_type", ["shm", "gru"]),
        "critic_memory_type": trial.suggest_categorical("critic_memory_type", ["shm", "gru"]),
        "memory_size": trial.suggest_categorical("memory_size", [16, 32, 64]),
        "calibration": trial.suggest_categorical("calibration", ["random", "fixed", "none"]),
        "memory_decay": trial.suggest_categorical("memory_decay", [0.7, 0.9, 1.0]),
    }
    hyperparams = convert_shm_sac_params(sampled)
    trial.set_user_attr("gamma", hyperparams["gamma"])
    trial.set_user_attr("batch_size", hyperparams["batch_size"])
    return hyperparams


def convert_shm_sac_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """Turn sampled (trial.params) values into ShmSAC hyperparameters (also used by ``--trial-id``)."""
    from rl_zoo3.hyperparams_opt import convert_offpolicy_params

    params = dict(sampled_params)
    memory = {name: params.pop(name) for name in ("actor_memory_type", "critic_memory_type", "memory_size", "calibration")}
    memory["memory_decay"] = params.pop("memory_decay")
    sequence_length = 2 ** params.pop("sequence_length_pow")
    hyperparams = convert_offpolicy_params(params)  # gamma, batch_size, gradient_steps = train_freq, net_arch
    hyperparams["policy_kwargs"].update(memory)
    return {**hyperparams, "sequence_length": sequence_length}
