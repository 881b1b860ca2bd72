"""Loss, schedule, checkpoints and the training loop."""

from selfattention.training.config import DataConfig, RunConfig, TrainConfig, load_run_config
from selfattention.training.trainer import Trainer, TrainingError, average_checkpoints, train

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
