from sb3_shm.common.memory.scan import shm_sequence, shm_step
from sb3_shm.common.memory.shm import ShmCell

__all__ = ["ShmCell", "shm_sequence", "shm_step"]
