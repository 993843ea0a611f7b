"""
``python -m sb3_shm.zoo COMMAND [ARGS...]``: run an RL Zoo script with ``--algo shm_ppo`` available,
without relying on the ``.pth`` file (the import hook is installed explicitly).

    python -m sb3_shm.zoo train --algo shm_ppo --env CartPoleNoVel-v1
    python -m sb3_shm.zoo enjoy --algo shm_ppo --env CartPoleNoVel-v1 -f rl-trained-agents/
"""

import runpy
import sys

COMMANDS = {
    "train": "rl_zoo3.train",
    "enjoy": "rl_zoo3.enjoy",
    "record_video": "rl_zoo3.record_video",
    "record_training": "rl_zoo3.record_training",
    "load_from_hub": "rl_zoo3.load_from_hub",
    "push_to_hub": "rl_zoo3.push_to_hub",
    "plot_train": "rl_zoo3.plots.plot_train",
    "plot_from_file": "rl_zoo3.plots.plot_from_file",
    "all_plots": "rl_zoo3.plots.all_plots",
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        usage = f"usage: python -m sb3_shm.zoo {{{','.join(COMMANDS)}}} [ARGS...]"
        if argv and argv[0] not in ("-h", "--help"):
            sys.exit(f"{usage}\nerror: unknown command {argv[0]!r}")
        print(usage)
        return
    from sb3_shm.zoo import install_hook
    from sb3_shm.zoo.cli import algo_requested, install_excepthook

    install_hook(force=True)
    if algo_requested(argv[1:]):
        install_excepthook()
    module = COMMANDS[argv[0]]
    sys.argv = [f"{sys.argv[0]} {argv[0]}", *argv[1:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
