"""RaSA: Rank-Sharing Low-Rank Adaptation (He et al., ICLR 2025) and the pipeline that reproduces it."""

__version__ = "0.1.0"
