"""RaSA (Rank-Sharing Low-Rank Adaptation) as a PEFT tuner."""

from .config import RasaConfig
from .layer import Linear, RasaLayer, SharedPools
from .model import RasaModel

__all__ = ["Linear", "RasaConfig", "RasaLayer", "RasaModel", "SharedPools"]
