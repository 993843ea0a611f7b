from sb3_shm.shm_sac.policies import CnnShmPolicy, MlpShmPolicy, MultiInputShmPolicy
from sb3_shm.shm_sac.shm_sac import ShmSAC

__all__ = ["CnnShmPolicy", "MlpShmPolicy", "MultiInputShmPolicy", "ShmSAC"]
