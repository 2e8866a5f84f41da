"""``ZooCLI``: the LightningCLI behind ``facezoo fit|validate|test|predict``."""

from __future__ import annotations

from collections.abc import Sequence

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI


class ZooCLI(LightningCLI):
    """LightningCLI with facezoo's defaults: subclass mode for model and data, models own their
    optimisers (``configure_optimizers`` over ``OptimizerCallable`` init args), and a summary of
    where a run's checkpoint, logs and rendered samples are after ``fit``."""

    def __init__(self, args: Sequence[str] | None = None, run: bool = True, **kwargs) -> None:
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("auto_configure_optimizers", False)
        kwargs.setdefault("parser_kwargs", {"prog": "facezoo"})
        super().__init__(
            LightningModule,
            LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            args=args,
            run=run,
            **kwargs,
        )

    def after_fit(self) -> None:
        log_dir = self.trainer.log_dir  # a collective under DDP: every rank must ask
        if self.trainer.is_global_zero:
            from zoo.run_summary import print_run_summary

            print_run_summary(self.trainer, self.model, self.datamodule, log_dir)
