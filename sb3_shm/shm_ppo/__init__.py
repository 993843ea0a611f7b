from sb3_shm.shm_ppo.policies import CnnShmPolicy, MlpShmPolicy, MultiInputShmPolicy
from sb3_shm.shm_ppo.shm_ppo import ShmPPO

__all__ = ["CnnShmPolicy", "MlpShmPolicy", "MultiInputShmPolicy", "ShmPPO"]
