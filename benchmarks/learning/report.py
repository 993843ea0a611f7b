"""
Read the learning benchmark's logs and write the learning curves (one PNG per task) and ``docs/results.md``.

For each run (``LOG/<task>/<algo>/seed<seed>/``, written by ``run.py``) it reads the zoo's ``evaluations.npz``
(deterministic evaluations during training) and ``run_info.json`` (budget, wall time). The score of a run is its last
evaluation: the success rate on Visual Match / Key-to-Door, the episode return elsewhere (POPGym returns are
normalised to [-1, 1] by POPGym). Tables give mean +- std over seeds; curves give the mean over seeds with a band of
+- one std. Runs shorter than the task's budget (smoke runs, ``run.py -n``) are reported as such and never count
towards the comparison. Tasks without runs are listed as pending: the page never shows a number that no run produced.

    python benchmarks/learning/report.py -f benchmarks/learning/logs --export benchmarks/learning/results
    python benchmarks/learning/report.py -f benchmarks/learning/results      # the committed runs behind docs/results.md
    python benchmarks/learning/report.py -f /tmp/smoke --out /tmp/smoke/results.md --img-dir /tmp/smoke/plots

``--export DIR`` copies what the report reads (``run_info.json`` and ``evaluations.npz`` of every run, a few KB each) to
``DIR`` with the same layout: that compact copy is committed, the logs (models, monitor files) are not.
"""

import argparse
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import package_hyperparams
from tasks import ALGOS, METRIC_LABELS, OFF_POLICY_ALGOS, SEEDS, TASKS, ZOO_ALGOS, Task

ROOT = Path(__file__).resolve().parents[2]
RUN_COMMAND = (
    "python benchmarks/learning/run.py --tasks all --algos shm_ppo ppo_lstm ppo --seeds 0 1 2 -f benchmarks/learning/logs"
)
OFF_POLICY_COMMAND = (
    "python benchmarks/learning/run.py --tasks "
    + " ".join(task.name for task in TASKS.values() if task.algos == OFF_POLICY_ALGOS)
    + " --algos shm_sac shm_sac_gru --seeds 0 1 2 -f benchmarks/learning/logs"
)
REPORT_COMMAND = "python benchmarks/learning/report.py -f benchmarks/learning/logs --export benchmarks/learning/results"
NOTES = Path(__file__).resolve().parent / "notes.md"


@dataclass
class Run:
    seed: int
    timesteps: np.ndarray  # (n_evaluations,)
    scores: np.ndarray  # (n_evaluations,) mean over the evaluation episodes
    n_timesteps: int  # budget of the run
    wall_time_s: float | None
    full: bool  # ran the task's whole budget
    hyperparams: dict | None  # the zoo entry it trained with (run_info.json; None in runs older than that record)

    @property
    def final(self) -> float:
        return float(self.scores[-1])


def load_run(folder: Path, task: Task, algo: str, seed: int) -> Run | None:
    """:return: the run in ``folder``, or None if it has not finished (or has no evaluation)."""
    info_path = folder / "run_info.json"
    if not info_path.exists():
        return None
    info = json.loads(info_path.read_text())
    # one run per folder: the zoo's <zoo algo>/<env id>_<n>/ (any env id: a run may use an alias of the task's env)
    evaluations = sorted(folder.glob(f"{ZOO_ALGOS.get(algo, algo)}/*_*/evaluations.npz"))
    if info.get("returncode") != 0 or not evaluations:
        return None
    data = np.load(evaluations[-1])
    if task.metric == "success":
        if "successes" not in data or data["successes"].size == 0:
            return None
        per_episode = data["successes"].astype(float)
    else:
        per_episode = data["results"]
    n_timesteps = int(info["n_timesteps"])
    return Run(seed, data["timesteps"], per_episode.mean(axis=1), n_timesteps, info.get("wall_time_s"),
               n_timesteps >= task.n_timesteps, info.get("hyperparams"))  # fmt: skip


def memory_setup(hyperparams: dict) -> str:
    """
    :param hyperparams: a ShmPPO zoo entry
    :return: which model and which memory options it trains, e.g. "authors' POPGym model; calibration fixed, no clamp"
    """
    kwargs = str(hyperparams.get("policy_kwargs", ""))

    def option(name: str, default: str) -> str:
        match = re.search(rf"{name}\s*=\s*'?([\w.]+)'?", kwargs)
        return match.group(1) if match else default

    model = "authors' POPGym model" if "TimeEncodingExtractor" in kwargs else "MLP policy"
    clamp = option("memory_clamp", "100")
    parts = [f"calibration {option('calibration', 'random')}", "no clamp" if clamp == "None" else f"clamp {clamp}"]
    if option("memory_decay", "1") not in ("1", "1.0"):
        parts.append(f"memory_decay {option('memory_decay', '1')}")
    parts.append(f"critic_memory {option('critic_memory', 'separate')}")
    if isinstance(hyperparams.get("ent_coef"), str):  # a schedule, e.g. lin_0.05
        parts.append(f"ent_coef {hyperparams['ent_coef']}")
    return f"{model}; " + ", ".join(parts)


def shm_setup(runs: list[Run], task: Task) -> str:
    """
    :return: the ShmPPO set-up of a task's runs, from their run_info.json; for runs older than that record, from the
        package's current entry, marked "(current entry)"
    """
    recorded = sorted({memory_setup(run.hyperparams) for run in runs if run.hyperparams is not None})
    if recorded:
        return " / ".join(recorded)
    with open(package_hyperparams()) as file:
        entries = yaml.safe_load(file)
    entry = entries.get(task.env_id) or entries.get(task.hyperparams_key)
    return f"{memory_setup(entry)} (current entry)" if entry else "-"


def sac_setup(runs: list[Run], task: Task) -> str:
    """:return: the memories and update settings of a task's ShmSAC runs (from run_info.json), and the task's overrides"""
    entries = [run.hyperparams for run in runs if run.hyperparams is not None]
    if not entries:
        return "-"
    kwargs = str(entries[0].get("policy_kwargs", ""))
    memories = {name: re.search(rf"{name}_memory_type\s*=\s*'(\w+)'", kwargs) for name in ("actor", "critic")}
    parts = [f"{name} {match.group(1) if match else 'shm'}" for name, match in memories.items()]
    parts += [f"{key} {entries[0][key]}" for key in ("batch_size", "sequence_length", "gradient_steps") if key in entries[0]]
    overridden = f" (this task's: {', '.join(task.overrides)})" if task.overrides else ""
    return "ShmSAC entry; " + ", ".join(parts) + overridden


def target_cell(task: Task, runs: list[Run]) -> str:
    """:return: whether the task's first algorithm meets the task's target, "-" without a target"""
    if task.target is None:
        return "-"
    if not runs:
        return f">= {task.target:.2f}: pending"
    mean = float(np.mean([run.final for run in runs]))
    seeds = f"{len(runs)} seed{'s' if len(runs) > 1 else ''}"
    return f">= {task.target:.2f}: {'met' if mean >= task.target else '**not met**'} ({mean:.2f}, {seeds})"


def collect(log_folder: Path) -> dict[str, dict[str, list[Run]]]:
    """:return: runs[task][algo] = finished runs, by seed"""
    runs: dict[str, dict[str, list[Run]]] = {}
    for task in TASKS.values():
        for algo in task.algos:
            base = log_folder / task.name / algo
            found = [load_run(folder, task, algo, int(folder.name[4:])) for folder in sorted(base.glob("seed*"))]
            runs.setdefault(task.name, {})[algo] = [run for run in found if run is not None]
    return runs


def curve(runs: list[Run]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and std over seeds, on the evaluation steps every run has (the shortest run's)."""
    length = min(len(run.timesteps) for run in runs)
    scores = np.stack([run.scores[:length] for run in runs])  # (n_seeds, length)
    return runs[0].timesteps[:length], scores.mean(axis=0), scores.std(axis=0)


def plot_task(task: Task, by_algo: dict[str, list[Run]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.6), dpi=100)
    for algo, runs in by_algo.items():
        if not runs:
            continue
        steps, mean, std = curve(runs)
        line = ax.plot(steps, mean, label=f"{ALGOS[algo]} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")[0]
        ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(METRIC_LABELS[task.metric])
    ax.set_title(f"{task.env_id}: mean ± std over seeds")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def score_cell(runs: list[Run], metric: str) -> str:
    finals = np.array([run.final for run in runs])
    digits = 2 if metric in ("success", "popgym") else 1
    return f"{finals.mean():.{digits}f} +- {finals.std():.{digits}f}"


def wall_cell(runs: list[Run]) -> str:
    walls = [run.wall_time_s for run in runs if run.wall_time_s is not None]
    return f"{np.mean(walls) / 60:.1f} min" if walls else "?"


def run_cell(runs: list[Run], metric: str) -> str:
    """:return: the table cell of an algorithm on a task: score, seeds and wall time, or "pending" with no run yet"""
    seeds = f"{len(runs)} seed{'s' if len(runs) > 1 else ''}"
    return f"{score_cell(runs, metric)} ({seeds}, {wall_cell(runs)})" if runs else "pending"


def compare(shm: list[Run], other: list[Run], name: str = "RecurrentPPO") -> str:
    """ShmPPO against ``name`` on the final score: within one std counts as matching (issue 6)."""
    a, b = np.array([run.final for run in shm]), np.array([run.final for run in other])
    gap = a.mean() - b.mean()
    if min(len(a), len(b)) < len(SEEDS):
        side = "higher" if gap > 0 else "lower" if gap < 0 else "equal"
        return f"ShmPPO {side} than {name} on {min(len(a), len(b))} seed(s): no verdict below {len(SEEDS)} seeds"
    if abs(gap) <= max(a.std(), b.std()):
        return f"matches {name} (within one std)"
    return f"beats {name}" if gap > 0 else f"**loses to {name}**"


def verdict(task: Task, by_algo: dict[str, list[Run]]) -> str:
    """The table's last cell: ShmPPO against each RecurrentPPO variant that ran on the task."""
    if "ppo_lstm" not in task.algos:
        return "RecurrentPPO not run on this task"
    parts = [
        compare(by_algo["shm_ppo"], by_algo[algo], ALGOS[algo])
        for algo in ("ppo_lstm", "ppo_lstm_joint")
        if algo in task.algos and by_algo["shm_ppo"] and by_algo[algo]
    ]
    return "; ".join(parts)


def write_report(runs: dict[str, dict[str, list[Run]]], out: Path, img_dir: Path, log_folder: Path) -> None:
    lines = [
        "# Learning results",
        "",
        "ShmPPO against RecurrentPPO (`ppo_lstm`, sb3-contrib) and PPO without memory, trained through the RL Zoo with",
        "the same step budget per task. Written by `benchmarks/learning/report.py`: every number below comes from the",
        "logs of `benchmarks/learning/run.py`.",
        "",
    ]
    full = {t: {a: [r for r in rs if r.full] for a, rs in by_algo.items()} for t, by_algo in runs.items()}
    short = {t: {a: [r for r in rs if not r.full] for a, rs in by_algo.items()} for t, by_algo in runs.items()}
    expected = sum(len(task.algos) for task in TASKS.values()) * len(SEEDS)
    n_full = sum(len(rs) for by_algo in full.values() for rs in by_algo.values())
    if n_full < expected:
        lines += [
            "```{important}",
            f"**The full runs are pending: {n_full} of the {expected} runs (each task's algorithms x 3 seeds) have",
            "finished at their full budget.** Tasks without finished runs have no scores below; nothing here is",
            "estimated or copied from the paper.",
            "```",
            "",
        ]
    lines += [
        "## How to replicate",
        "",
        "```bash",
        'pip install -e ".[zoo,popgym,bench,fast]"',
        RUN_COMMAND + "    # add --jobs 2 on 2 cores",
        REPORT_COMMAND,
        "```",
        "",
        "`run.py --dry-run` prints every `python -m rl_zoo3.train` command. Hyperparameters: ShmPPO's from the package",
        "(`sb3_shm/hyperparams/shm_ppo.yml`), RecurrentPPO's and PPO's from `benchmarks/learning/hyperparams/`. Both",
        "recurrent agents were tuned with the same `--optimize` budget on CartPoleNoVel only",
        "(`benchmarks/learning/optimize.py`, see the analysis); the other entries are not tuned.",
        "",
        "## Tasks and budgets",
        "",
        "| Task | Env id | Steps per run | Score | Evaluation | ShmPPO / ShmSAC set-up |",
        "|---|---|---|---|---|---|",
    ]
    on_policy = [algo for algo in ALGOS if algo not in OFF_POLICY_ALGOS]
    on_policy_tasks = [task for task in TASKS.values() if set(task.algos) & set(on_policy)]
    off_policy_tasks = [task for task in TASKS.values() if set(task.algos) <= set(OFF_POLICY_ALGOS)]
    for task in TASKS.values():
        set_up = shm_setup(full[task.name].get("shm_ppo", []), task) if task in on_policy_tasks else ""
        set_up = set_up or sac_setup(full[task.name].get("shm_sac", []), task)
        lines.append(
            f"| {task.name} | `{task.env_id}` | {task.n_timesteps:,} | {METRIC_LABELS[task.metric]} (last evaluation) | "
            f"{task.eval_episodes} deterministic episodes every {task.eval_freq:,} steps | {set_up} |"
        )
    lines += ["", "## Final scores", ""]
    lines += ["Mean +- std over seeds of each run's last evaluation; wall time per run; - where the task does not run it.", ""]
    header = ["Task", *(ALGOS[algo] for algo in on_policy), "Steps", "ShmPPO vs RecurrentPPO"]
    lines += ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for task in on_policy_tasks:
        by_algo = full[task.name]
        cells = [run_cell(by_algo[algo], task.metric) if algo in task.algos else "-" for algo in on_policy]
        lines.append(f"| {task.name} | " + " | ".join(cells) + f" | {task.n_timesteps:,} | {verdict(task, by_algo)} |")
    lines.append("")
    if off_policy_tasks:
        lines += [
            "## ShmSAC (off-policy, issue 20)",
            "",
            "ShmSAC with the package's `shm_sac.yml` entry (the authors' memories: GRU actor, SHM critic) and the same",
            "agent with GRU memories in both networks, at budgets of their own (an off-policy agent takes far fewer env",
            "steps and far more CPU per step than PPO). Made by:",
            "",
            "```bash",
            OFF_POLICY_COMMAND + "    # add --jobs 2 on 2 cores",
            "```",
            "",
        ]
        header = ["Task", *(ALGOS[algo] for algo in OFF_POLICY_ALGOS), "Steps", "Target (ShmSAC)"]
        lines += ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
        for task in off_policy_tasks:
            by_algo = full[task.name]
            cells = [run_cell(by_algo[algo], task.metric) if algo in task.algos else "-" for algo in OFF_POLICY_ALGOS]
            target = target_cell(task, by_algo[task.algos[0]])
            lines.append(f"| {task.name} | " + " | ".join(cells) + f" | {task.n_timesteps:,} | {target} |")
        lines.append("")

    plotted = [task for task in TASKS.values() if any(full[task.name].values())]
    if plotted:
        lines += ["## Learning curves", ""]
        for task in plotted:
            path = img_dir / f"{task.name}.png"
            plot_task(task, full[task.name], path)
            lines += [f"![{task.name}]({os.path.relpath(path, out.parent)})", ""]

    smoke = [(t, a, r) for t, by_algo in short.items() for a, rs in by_algo.items() for r in rs]
    if smoke:
        lines += [
            "## Short runs (not results)",
            "",
            "Runs shorter than their task's budget (`run.py -n`, pipeline checks). They say nothing about the methods.",
            "",
            "| Task | Algorithm | Seed | Steps | Last evaluation | Wall time |",
            "|---|---|---|---|---|---|",
        ]
        for task_name, algo, run in smoke:
            lines.append(
                f"| {task_name} | {ALGOS[algo]} | {run.seed} | {run.n_timesteps:,} | {run.final:.2f} | "
                f"{(run.wall_time_s or 0):.0f} s |"
            )
        lines.append("")

    if NOTES.exists():
        lines += ["## Analysis", "", NOTES.read_text().strip(), ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print(f"wrote {out} ({n_full} full runs of {expected}, {len(smoke)} short runs) from {log_folder}")


def export(log_folder: Path, dest: Path) -> int:
    """Copy every run's ``run_info.json`` and ``evaluations.npz`` from ``log_folder`` to ``dest`` (same layout)."""
    copied = 0
    for path in [*log_folder.rglob("run_info.json"), *log_folder.rglob("evaluations.npz")]:
        target = dest / path.relative_to(log_folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        copied += 1
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-f", "--log-folder", type=Path, default=Path(__file__).resolve().parent / "logs")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md")
    parser.add_argument("--img-dir", type=Path, default=ROOT / "docs" / "_static" / "img" / "results")
    parser.add_argument("--export", type=Path, default=None, help="also copy the runs' compact results to this folder")
    args = parser.parse_args()
    if args.export is not None:
        print(f"exported {export(args.log_folder.resolve(), args.export.resolve())} files to {args.export}")
    write_report(collect(args.log_folder.resolve()), args.out.resolve(), args.img_dir.resolve(), args.log_folder)


if __name__ == "__main__":
    main()
