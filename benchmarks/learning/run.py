"""
Run the learning benchmark through the RL Zoo: ``python -m rl_zoo3.train`` for every (task, algorithm, seed).

Each run writes the zoo's usual files (model, monitor files, ``evaluations.npz``) under
``LOG/<task>/<algo>/seed<seed>/<zoo algo>/<env>_1/`` and a ``run_info.json`` beside them (command, budget, wall time,
exit status). A run whose ``run_info.json`` says it finished is skipped, so the script resumes after an interruption.
Each task runs the algorithms it lists (``Task.algos``): ``ppo_lstm_joint`` (RecurrentPPO with ``joint_lstm.py``'s
policy, zoo algo ``ppo_lstm``) runs on the one-map VisualMatch tasks only.

Hyperparameters: ShmPPO's and ShmSAC's come from the package (``sb3_shm/hyperparams/shm_ppo.yml``, ``shm_sac.yml``),
the others' from ``benchmarks/learning/hyperparams/<algo>.yml``. The script writes the file each run uses to
``LOG/confs/<task>/``, with the benchmark's env ids mapped to the entry they share (``VisualMatch-60-v0`` ->
``VisualMatch-v0``) and the task's ``overrides`` applied, and passes it as ``--conf-file``. The step budget (``-n``)
and evaluation settings are the task's (``tasks.py``), the same for every algorithm of a task.

    python benchmarks/learning/run.py --tasks all --algos shm_ppo ppo_lstm ppo --seeds 0 1 2 -f benchmarks/learning/logs
    python benchmarks/learning/run.py --tasks CartPoleNoVel --seeds 0 -n 2048 -f /tmp/smoke    # a quick check
"""

import argparse
import copy
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tasks import ALGOS, HYPERPARAMS_DIR, PACKAGE_ALGOS, SEEDS, TASKS, ZOO_ALGOS, ZOO_ARGS, Task


# Recorded with each run: they change wall times (e.g. numba's threading layer)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER", "OMP_WAIT_POLICY")


def package_hyperparams(algo: str = "shm_ppo") -> Path:
    """
    :return: sb3_shm's ``<algo>.yml`` (``algo`` one of ``PACKAGE_ALGOS``), the file the zoo uses for ``--algo <algo>``
        (found without importing torch)
    """
    import importlib.util

    spec = importlib.util.find_spec("sb3_shm")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("sb3_shm is not installed: pip install -e '.[zoo]'")
    return Path(next(iter(spec.submodule_search_locations))) / "hyperparams" / f"{algo}.yml"


def hyperparams_file(algo: str) -> Path:
    return package_hyperparams(algo) if algo in PACKAGE_ALGOS else HYPERPARAMS_DIR / f"{algo}.yml"


def write_conf(algo: str, task: Task, conf_dir: Path) -> Path:
    """
    Write the ``--conf-file`` of ``algo`` on ``task``: its entry for the task's env id, under that id. One file per
    task and algorithm, so that run.py processes running other tasks with the same log folder never overwrite it.
    """
    source = hyperparams_file(algo)
    with open(source) as file:
        entries = yaml.safe_load(file)
    key = task.env_id if task.env_id in entries else task.hyperparams_key
    if key not in entries:
        raise SystemExit(f"{source} has no entry for {task.env_id} (nor {task.hyperparams_key})")
    conf = {task.env_id: {**copy.deepcopy(entries[key]), **task.overrides}}  # a copy: no YAML anchors in the file
    conf_dir = conf_dir / task.name
    conf_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / f"{algo}.yml"
    with open(path, "w") as file:
        file.write(f"# Written by benchmarks/learning/run.py from {source}\n")
        if task.overrides:
            file.write(f"# with the task's overrides (tasks.py): {task.overrides}\n")
        yaml.safe_dump(conf, file, sort_keys=False)
    return path


def run_dir(log_folder: Path, task: Task, algo: str, seed: int) -> Path:
    return log_folder / task.name / algo / f"seed{seed}"


def is_done(folder: Path) -> bool:
    info = folder / "run_info.json"
    return info.exists() and json.loads(info.read_text()).get("returncode") == 0


def train_command(task: Task, algo: str, seed: int, folder: Path, conf: Path, args: argparse.Namespace) -> list[str]:
    n_timesteps = args.n_timesteps or task.n_timesteps
    eval_freq = args.eval_freq or max(n_timesteps // task.n_evaluations, 1)
    return [
        sys.executable, "-m", "rl_zoo3.train",
        "--algo", ZOO_ALGOS.get(algo, algo),
        *ZOO_ARGS.get(algo, ()),
        "--env", task.env_id,
        "--seed", str(seed),
        "-f", str(folder),
        "--conf-file", str(conf),
        "-n", str(n_timesteps),
        "--eval-freq", str(eval_freq),
        "--eval-episodes", str(args.eval_episodes or task.eval_episodes),
        "--n-eval-envs", "1",
        "--num-threads", str(args.num_threads),
        "--verbose", "1",
        *(["--env-kwargs", *[f"{key}:{value!r}" for key, value in task.env_kwargs.items()]] if task.env_kwargs else []),
    ]  # fmt: skip


def run_one(task: Task, algo: str, seed: int, conf: Path, args: argparse.Namespace) -> tuple[str, int, float]:
    folder = run_dir(args.log_folder, task, algo, seed)
    label = f"{task.name} {algo} seed {seed}"
    if is_done(folder):
        return f"{label}: done before, skipped", 0, 0.0
    shutil.rmtree(folder, ignore_errors=True)  # an interrupted run starts again from scratch
    folder.mkdir(parents=True)
    command = train_command(task, algo, seed, folder, conf, args)
    with open(conf) as file:
        (hyperparams,) = yaml.safe_load(file).values()  # the entry this run trains with, recorded in run_info.json
    if args.dry_run:
        shutil.rmtree(folder)
        return f"{label}: {shlex.join(command)}", 0, 0.0
    start = time.time()
    # this folder on the path: --gym-packages imports the benchmark's own modules (joint_lstm.py)
    python_path = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path}
    with open(folder / "train.log", "w") as log:
        returncode = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    wall = time.time() - start
    info = dict(
        task=task.name,
        env_id=task.env_id,
        algo=algo,
        seed=seed,
        n_timesteps=int(command[command.index("-n") + 1]),
        task_budget=task.n_timesteps,
        wall_time_s=round(wall, 1),
        returncode=returncode,
        command=shlex.join(command),
        hyperparams=hyperparams,
        parallel_jobs=args.jobs,
        environment={name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ},
        num_threads=args.num_threads,
        machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        finished=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    (folder / "run_info.json").write_text(json.dumps(info, indent=2) + "\n")
    status = "ok" if returncode == 0 else f"FAILED (exit {returncode}, see {folder / 'train.log'})"
    return f"{label}: {status} in {wall:.0f} s", returncode, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["all"], help=f"'all' or some of: {', '.join(TASKS)}")
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=list(ALGOS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("-f", "--log-folder", type=Path, default=Path(__file__).resolve().parent / "logs")
    parser.add_argument("-n", "--n-timesteps", type=int, default=None, help="override every task's budget (smoke runs)")
    parser.add_argument("--eval-freq", type=int, default=None, help="override: evaluate every this many steps")
    parser.add_argument("--eval-episodes", type=int, default=None, help="override: episodes per evaluation")
    parser.add_argument("--jobs", type=int, default=1, help="runs at the same time (each with --num-threads threads)")
    parser.add_argument("--num-threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args()

    names = list(TASKS) if args.tasks == ["all"] else args.tasks
    unknown = [name for name in names if name not in TASKS]
    if unknown:
        parser.error(f"unknown task(s) {unknown}: choose from {list(TASKS)}")
    tasks = [TASKS[name] for name in names]
    args.log_folder = args.log_folder.resolve()
    runs = [(task, algo, seed) for task in tasks for seed in args.seeds for algo in args.algos if algo in task.algos]
    confs = {(task.name, algo): write_conf(algo, task, args.log_folder / "confs") for task, algo, _ in runs}
    print(f"{len(runs)} runs, {args.jobs} at a time, logs in {args.log_folder}", flush=True)

    failures = 0
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_one, task, algo, seed, confs[task.name, algo], args) for task, algo, seed in runs]
        for future in futures:
            message, returncode, _ = future.result()
            failures += returncode != 0
            print(message, flush=True)
    if failures:
        raise SystemExit(f"{failures} run(s) failed")


if __name__ == "__main__":
    main()
