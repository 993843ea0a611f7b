"""
Tune ShmPPO and RecurrentPPO with the same budget: ``rl_zoo3.train --optimize`` for each, with the same number of
trials, steps per trial, Optuna sampler and pruner, evaluation and seed, over the same PPO search space.

rl_zoo3's own ``ppo_lstm`` sampler is its PPO sampler (batch sizes down to 4 and rollouts up to 4096 steps: trials of
tens of minutes on a CPU) and samples nothing of the LSTM. Here RecurrentPPO gets ShmPPO's PPO space
(:func:`sb3_shm.zoo.sampler.sample_ppo_part`) plus its memory's size (``lstm_hidden_size``), as ShmPPO gets its
memory's options; the change lives in this script's processes only. ShmPPO's entries come from the package's
``shm_ppo.yml``, RecurrentPPO's from ``benchmarks/learning/hyperparams/ppo_lstm.yml`` (the non-sampled settings:
``n_envs``, ``normalize``, policy).

    python benchmarks/learning/optimize.py --env CartPoleNoVel-v1 --n-trials 10 -n 20000 -f /tmp/optimize

The two studies run at the same time, one core each (``--jobs 1`` runs them one after the other). Each writes the
zoo's usual study report (``LOG/<algo>/report_*.csv``); the script prints the best trial of each at the end.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ALGOS = ("shm_ppo", "ppo_lstm")
LSTM_HIDDEN_SIZES = [16, 32, 64, 128, 256]


def sample_ppo_lstm_params(trial: Any, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """RecurrentPPO: ShmPPO's PPO space plus the LSTM's hidden size (a critic LSTM of its own, like ShmPPO's)."""
    from sb3_shm.zoo.sampler import sample_ppo_part

    hyperparams = convert_ppo_lstm_params(
        {**sample_ppo_part(trial), "lstm_hidden_size": trial.suggest_categorical("lstm_hidden_size", LSTM_HIDDEN_SIZES)}
    )
    for key in ("gamma", "n_steps", "batch_size"):
        trial.set_user_attr(key, hyperparams[key])
    return hyperparams


def convert_ppo_lstm_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """Sampled values (``trial.params``) -> RecurrentPPO hyperparameters."""
    from sb3_shm.zoo.sampler import convert_ppo_part

    params = dict(sampled_params)
    hyperparams, policy_kwargs = convert_ppo_part(params)
    policy_kwargs.update(lstm_hidden_size=params.pop("lstm_hidden_size"), enable_critic_lstm=True)
    return {**hyperparams, "policy_kwargs": policy_kwargs, **params}


def zoo_main(zoo_args: list[str]) -> None:
    """Run ``rl_zoo3.train`` in this process with the matched RecurrentPPO sampler."""
    from rl_zoo3 import hyperparams_opt
    from rl_zoo3.train import train

    hyperparams_opt.HYPERPARAMS_SAMPLER["ppo_lstm"] = sample_ppo_lstm_params
    hyperparams_opt.HYPERPARAMS_CONVERTER["ppo_lstm"] = convert_ppo_lstm_params
    sys.argv = ["rl_zoo3.train", *zoo_args]
    train()


def zoo_command(algo: str, args: argparse.Namespace) -> list[str]:
    """:return: the rl_zoo3.train arguments of one study"""
    command = [
        "--algo", algo, "--env", args.env, "-f", str(args.log_folder), "-optimize",
        "--n-trials", str(args.n_trials), "-n", str(args.n_timesteps), "--sampler", "tpe", "--pruner", "median",
        "--n-startup-trials", str(args.n_startup_trials), "--eval-episodes", str(args.eval_episodes),
        "--n-evaluations", str(args.n_evaluations), "--no-optim-plots", "--num-threads", "1", "--seed", str(args.seed),
    ]  # fmt: skip
    if algo == "ppo_lstm":
        command += ["--conf-file", str(HERE / "hyperparams" / "ppo_lstm.yml")]
    return command


def best_trials(log_folder: Path, algo: str, env: str) -> str:
    """:return: a line with the best trial of the newest study report of ``algo`` on ``env``"""
    import pandas as pd

    reports = sorted((log_folder / algo).glob(f"report_{env}_*.csv"), key=lambda path: path.stat().st_mtime)
    if not reports:
        return f"{algo}: no study report in {log_folder / algo}"
    frame = pd.read_csv(reports[-1])
    done = frame[frame["state"] == "COMPLETE"].sort_values("value", ascending=False)
    if done.empty:
        return f"{algo}: no completed trial ({len(frame)} trials, {reports[-1].name})"
    best = done.iloc[0]
    params = {
        key.removeprefix("params_"): getattr(best[key], "item", lambda value=best[key]: value)()
        for key in frame.columns
        if key.startswith("params_")
    }
    return (
        f"{algo}: {len(done)} of {len(frame)} trials completed, best {best['value']:.1f} (trial {best['number']}), "
        f"{params} ({reports[-1].name})"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--zoo":
        zoo_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPoleNoVel-v1")
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    parser.add_argument("--n-trials", type=int, default=10)
    parser.add_argument("-n", "--n-timesteps", type=int, default=20_000, help="steps per trial")
    parser.add_argument("--n-startup-trials", type=int, default=5, help="random trials before TPE")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--n-evaluations", type=int, default=2, help="evaluations per trial (pruning points)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="studies at the same time")
    parser.add_argument("-f", "--log-folder", type=Path, default=HERE / "optimize_logs")
    args = parser.parse_args()
    args.log_folder.mkdir(parents=True, exist_ok=True)
    pending = [(algo, [sys.executable, __file__, "--zoo", *zoo_command(algo, args)]) for algo in args.algos]
    running, wall = {}, {}
    while pending or running:
        while pending and len(running) < args.jobs:
            algo, command = pending.pop(0)
            print("$", " ".join(command[3:]), flush=True)
            log = open(args.log_folder.parent / f"{args.log_folder.name}_{algo}.log", "w")
            running[algo] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log, time.perf_counter())
        for algo, (process, log, start) in list(running.items()):
            if process.poll() is not None:
                log.close()
                wall[algo] = time.perf_counter() - start
                print(f"{algo}: exit {process.returncode} after {wall[algo]:.0f} s (log {log.name})", flush=True)
                del running[algo]
        time.sleep(2)
    for algo in args.algos:
        print(best_trials(args.log_folder, algo, args.env), f"[{wall[algo]:.0f} s]")


if __name__ == "__main__":
    main()
