"""edgeghost: GhostNetV3-Small from training to a microcontroller, exact and measured end to end."""

__version__ = "0.1.0"
