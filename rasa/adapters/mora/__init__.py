"""MoRA (Jiang et al., 2024), type 6 (rotation-based compression), as a PEFT tuner."""

from .config import MoraConfig, mora_rank
from .layer import Linear, MoraLayer
from .model import MoraModel

__all__ = ["Linear", "MoraConfig", "MoraLayer", "MoraModel", "mora_rank"]
