from sb3_shm.common.memory.scan import shm_sequence, shm_step
from sb3_shm.common.memory.shm import ShmCell, ShmGates

__all__ = ["ShmCell", "ShmGates", "shm_sequence", "shm_step"]
