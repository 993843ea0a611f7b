"""Zoo runs of this package's algorithms (#21): the progress bar by default on a terminal, SIGTERM saves the model as
Ctrl-C does, and ``enjoy`` without a trained agent says so (instead of a hub error)."""

import io
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from sb3_shm import ShmPPO
from sb3_shm.zoo import runs

# A tiny CartPole run on one thread (the progress bar's last line reads "256/256")
TINY = ["--num-threads", "1", "--eval-freq", "-1", "-params", "n_envs:2", "n_epochs:1", "n_steps:32"]
PROGRESS_DONE = "256/256"


def zoo_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1"}
    env.pop(runs.PROGRESS_ENV, None)
    env.update(extra)
    return env


def train_command(folder: Path, n_timesteps: int = 256) -> list[str]:
    zoo = [sys.executable, "-m", "rl_zoo3.train", "--algo", "shm_ppo", "--env", "CartPole-v1", "-f", str(folder)]
    return [*zoo, "-n", str(n_timesteps), *TINY]


def run_on_a_terminal(command: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> str:
    """Run ``command`` with its stdout on a pseudo-terminal; return what it wrote there."""
    env = {**env, "TERM": "xterm-256color", "COLUMNS": "120"}  # rich draws its bar whatever the CI's TERM
    master, slave = os.openpty()
    process = subprocess.Popen(command, stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal closed: the process ended
                break
            if not data:
                break
            chunks.append(data)
        process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    _, stderr = process.communicate()
    assert process.returncode == 0, stderr.decode(errors="replace")[-3000:]
    return b"".join(chunks).decode(errors="replace")


# ------------------------------------------------------------------------------------------------------------
# Progress bar by default on a terminal
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_bar_by_default_on_a_terminal_only(tmp_path):
    on_terminal = run_on_a_terminal(train_command(tmp_path / "tty"), zoo_env(), tmp_path)
    assert PROGRESS_DONE in on_terminal and "━" in on_terminal, on_terminal[-2000:]
    assert (tmp_path / "tty" / "shm_ppo" / "CartPole-v1_1" / "CartPole-v1.zip").is_file()
    # Not in a pipe (CI logs) ...
    piped = subprocess.run(train_command(tmp_path / "pipe"), capture_output=True, text=True, env=zoo_env(), cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr[-3000:]
    assert PROGRESS_DONE not in piped.stdout + piped.stderr and "━" not in piped.stdout + piped.stderr
    # ... nor on a terminal with SB3_SHM_ZOO_PROGRESS=0
    off = run_on_a_terminal(train_command(tmp_path / "off"), zoo_env(**{runs.PROGRESS_ENV: "0"}), tmp_path)
    assert PROGRESS_DONE not in off and "Saving to" in off


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    "value, tty, expected",
    [("", True, True), ("", False, False), ("0", True, False), ("no", True, False), ("1", False, True), ("yes", False, True)],
)
def test_progress_by_default(monkeypatch, value, tty, expected):
    monkeypatch.setenv(runs.PROGRESS_ENV, value)
    assert runs.progress_by_default(_Stream(tty)) is expected


def test_progress_default_leaves_optimize_and_explicit_choices(monkeypatch):
    monkeypatch.setenv(runs.PROGRESS_ENV, "1")
    manager = types.SimpleNamespace(show_progress=False, optimize_hyperparameters=False)
    runs.set_progress_default(manager)
    assert manager.show_progress
    tuning = types.SimpleNamespace(show_progress=False, optimize_hyperparameters=True)
    runs.set_progress_default(tuning)
    assert not tuning.show_progress  # no bar per trial
    monkeypatch.setenv(runs.PROGRESS_ENV, "0")
    explicit = types.SimpleNamespace(show_progress=True, optimize_hyperparameters=False)
    runs.set_progress_default(explicit)
    assert explicit.show_progress  # -P still wins


# ------------------------------------------------------------------------------------------------------------
# SIGTERM saves the model, as Ctrl-C does
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32", reason="POSIX signals")
def test_sigterm_during_training_saves_the_model(tmp_path):
    process = subprocess.Popen(
        train_command(tmp_path / "logs", n_timesteps=1_000_000),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=zoo_env(),
        cwd=tmp_path,
    )
    seen = []
    try:
        assert process.stdout is not None
        for line in process.stdout:  # SB3 logs a table after each rollout: training has started
            seen.append(line)
            if "total_timesteps" in line:
                break
        else:
            pytest.fail("training did not start:\n" + "".join(seen)[-3000:])
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(seen) + rest
    assert process.returncode == 0, output[-3000:]
    assert "SIGTERM received at step" in output and "Saving to" in output, output[-3000:]
    run = tmp_path / "logs" / "shm_ppo" / "CartPole-v1_1"
    model = ShmPPO.load(run / "CartPole-v1.zip", device="cpu")
    assert 0 < model.num_timesteps < 1_000_000
    assert not list(run.glob(".*.tmp")), "the atomic save left a temporary file"


def test_sigterm_as_ctrl_c_stops_then_interrupts_then_restores():
    before = signal.getsignal(signal.SIGTERM)
    stop = None
    with pytest.raises(KeyboardInterrupt), runs.sigterm_as_ctrl_c(lambda: "at step 7") as received:
        stop = runs.StopOnSignal(received)
        assert stop._on_step()
        os.kill(os.getpid(), signal.SIGTERM)  # the first: a flag, training stops at its next step
        assert received == [True] and not stop._on_step()
        os.kill(os.getpid(), signal.SIGTERM)  # the second: at once, as Ctrl-C
        time.sleep(5)
        pytest.fail("the second SIGTERM did not interrupt")
    assert signal.getsignal(signal.SIGTERM) == before
    with runs.sigterm_as_ctrl_c() as received:
        pass
    assert received == [False] and signal.getsignal(signal.SIGTERM) == before


# ------------------------------------------------------------------------------------------------------------
# enjoy without a trained agent
# ------------------------------------------------------------------------------------------------------------
def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_enjoy_without_a_trained_agent_says_so(tmp_path):
    """The default folder (rl-trained-agents, relative to the working directory) has no agent: no hub trust error."""
    enjoy = [sys.executable, "-m", "rl_zoo3.enjoy", "--algo", "shm_ppo", "--env", "VisualMatch-v0", "--no-render"]
    line = one_error_line(subprocess.run(enjoy, capture_output=True, text=True, env=zoo_env(), cwd=tmp_path, timeout=120))
    assert "AgentNotFoundError" in line and "trained shm_ppo agent for VisualMatch-v0 not found" in line, line
    assert str(tmp_path / "rl-trained-agents") in line, line
    assert "python -m rl_zoo3.train --algo shm_ppo --env VisualMatch-v0" in line and "-f logs" in line, line
    assert "rl-trained-agents" in line.split("Train one", 1)[1], line  # where the shipped agents are
    assert "trust" not in line.lower() and "hub repo" not in line, line
    # A folder with runs of other environments lists them
    (tmp_path / "logs" / "shm_ppo" / "CartPole-v1_2").mkdir(parents=True)
    (tmp_path / "logs" / "shm_ppo" / "CartPole-v1_2" / "CartPole-v1.zip").write_bytes(b"")
    line = one_error_line(
        subprocess.run([*enjoy, "-f", "logs"], capture_output=True, text=True, env=zoo_env(), cwd=tmp_path, timeout=120)
    )
    assert "not found under" in line and "shm_ppo/CartPole-v1_2" in line, line


def test_agent_not_found_message(tmp_path, monkeypatch):
    shipped = tmp_path / "shipped"
    (shipped / "shm_ppo" / "VisualMatch-v0_1").mkdir(parents=True)
    (shipped / "shm_ppo" / "VisualMatch-v0_1" / "VisualMatch-v0.zip").write_bytes(b"")
    monkeypatch.setattr(runs, "SHIPPED_AGENTS", shipped)
    message = runs.agent_not_found_message(str(tmp_path / "logs"), "shm_ppo", "VisualMatch-v0", "upstream reason")
    assert f"no run folder {tmp_path / 'logs' / 'shm_ppo' / 'VisualMatch-v0'}_<N>" in message
    assert f"-f {shipped} (shm_ppo/VisualMatch-v0_1)" in message
    assert "load_from_hub --algo shm_ppo --env VisualMatch-v0" in message
    # The run exists but not what was asked for (e.g. --load-best): rl_zoo3's own reason is kept
    message = runs.agent_not_found_message(str(shipped), "shm_ppo", "VisualMatch-v0", "no best_model.zip")
    assert "(no best_model.zip; trained shm_ppo agents there: shm_ppo/VisualMatch-v0_1)" in message
    assert f"-f {shipped}" not in message  # the folder searched was the shipped one
