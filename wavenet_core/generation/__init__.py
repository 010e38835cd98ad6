"""Fast WaveNet generation: caller-owned queue state, backends, sampling, naive reference."""

from wavenet_core.generation.naive import naive_generate
from wavenet_core.generation.sampling import counter_uniform, sample_codes
from wavenet_core.generation.state import GenerationState
from wavenet_core.generation.torch.backend import TorchBackend

__all__ = ["GenerationState", "TorchBackend", "counter_uniform", "naive_generate", "sample_codes"]
