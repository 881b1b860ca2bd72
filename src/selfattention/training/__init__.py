"""Loss, schedule, checkpoints and the training loop."""

from selfattention.training.checkpoint import average_checkpoints
from selfattention.training.config import DataConfig, RunConfig, TrainConfig, load_run_config
from selfattention.training.trainer import Trainer, TrainingError, train

__all__ = [
    "DataConfig",
    "RunConfig",
    "TrainConfig",
    "Trainer",
    "TrainingError",
    "average_checkpoints",
    "load_run_config",
    "train",
]
