from sb3_shm.common.off_policy.policies import ShmSACCnnPolicy, ShmSACMultiInputPolicy, ShmSACPolicy

MlpShmPolicy = ShmSACPolicy
CnnShmPolicy = ShmSACCnnPolicy
MultiInputShmPolicy = ShmSACMultiInputPolicy
