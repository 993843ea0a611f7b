"""``python -m sb3_shm.demo``: quiet, and it compares ShmPPO with memoryless PPO on the same task and budget (#21)."""

import os
import subprocess
import sys

from sb3_shm import demo


def test_demo_is_quiet_and_compares_with_memoryless_ppo(capsys):
    results = demo.main(["--timesteps", "1024", "--eval-episodes", "8"])
    output = capsys.readouterr().out
    assert [result.agent for result in results] == ["ShmPPO", "PPO"]
    # No SB3 log tables (verbose=0), no progress bar: a line per agent, then the table
    assert "rollout/" not in output and "time/" not in output and "|" not in output, output
    assert len(output.splitlines()) < 15, output
    assert "ShmPPO (memory)" in output and "PPO (memoryless)" in output
    table = output[output.index("\nagent ") + 1 :].splitlines()
    assert table[0].split()[:3] == ["agent", "success", "return"] and "chance" in table[0] and "time" in table[0]
    assert table[1].startswith("ShmPPO") and table[2].startswith("PPO")
    assert "50% / +0.00" in table[1] and "50% / +0.00" in table[2]  # chance level of 2 cues
    for result in results:
        assert 0.0 <= result.success_rate <= 1.0 and -1.0 <= result.mean_return <= 1.0 and result.seconds > 0


def test_format_table_chance_level():
    table = demo.format_table([demo.DemoResult("ShmPPO", 1.0, 1.0, 12.0), demo.DemoResult("PPO", 0.0, 0.5, 4.0)], n_cues=4)
    assert "25% / -0.50" in table  # 4 cues: success 1/4, return 2/4 - 1
    assert "100%" in table and "+1.00" in table and "12s" in table


def test_demo_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "sb3_shm.demo", "--timesteps", "512", "--eval-episodes", "4"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ShmPPO" in result.stdout and "PPO (memoryless)" in result.stdout
