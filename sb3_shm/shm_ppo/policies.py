from sb3_shm.common.recurrent.policies import (
    ShmActorCriticCnnPolicy,
    ShmActorCriticPolicy,
    ShmMultiInputActorCriticPolicy,
)

MlpShmPolicy = ShmActorCriticPolicy
CnnShmPolicy = ShmActorCriticCnnPolicy
MultiInputShmPolicy = ShmMultiInputActorCriticPolicy
