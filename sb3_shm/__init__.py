import os

import sb3_shm.envs  # noqa: F401  (registers VisualMatch-v0, KeyToDoor-v0, Wind-v0, PointRobot-v0, POPGym-*)
from sb3_shm.callbacks import MemoryDiagnosticsCallback
from sb3_shm.common.memory import ShmCell
from sb3_shm.shm_ppo import CnnShmPolicy, MlpShmPolicy, MultiInputShmPolicy, ShmPPO
from sb3_shm.shm_sac import ShmSAC

# Read version from file
version_file = os.path.join(os.path.dirname(__file__), "version.txt")
with open(version_file) as file_handler:
    __version__ = file_handler.read().strip()

__all__ = [
    "CnnShmPolicy",
    "MemoryDiagnosticsCallback",
    "MlpShmPolicy",
    "MultiInputShmPolicy",
    "ShmCell",
    "ShmPPO",
    "ShmSAC",
    "__version__",
]
