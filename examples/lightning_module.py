"""GreedyLR in PyTorch Lightning, on scikit-learn's breast-cancer data.

    pip install 'greedylr[lightning,compare]'   # scikit-learn, for its data set
    python examples/lightning_module.py
    python examples/lightning_module.py --devices 2     # ddp_spawn on 2 CPU processes

Two things: return GreedyLR as an ordinary ``"interval": "step"`` scheduler, and add
``GreedyLRCallback``. The callback feeds it the mean training loss of each optimizer step
(over the ``accumulate_grad_batches`` micro-batches), and GreedyLR averages it across the
ranks itself: ``self.log(...)`` needs no ``sync_dist=True`` for the ranks to agree.
"""

from __future__ import annotations

import argparse
from typing import Any

import lightning.pytorch as pl
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler
from torch.utils.data import DataLoader, TensorDataset

from greedylr import GreedyLR
from greedylr.integrations.lightning import GreedyLRCallback


class Classifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(30, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2)
        )

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.AdamW(self.parameters(), lr=1e-3)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": GreedyLR(optimizer, patience=5, window=5),
                "interval": "step",
            },
        }


def main(devices: int = 1, epochs: int = 10) -> None:
    x, y = load_breast_cancer(return_X_y=True)
    data = TensorDataset(
        torch.tensor(StandardScaler().fit_transform(x), dtype=torch.float32), torch.tensor(y)
    )
    pl.seed_everything(0)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp_spawn" if devices > 1 else "auto",
        max_epochs=epochs,
        accumulate_grad_batches=2,
        callbacks=[GreedyLRCallback()],  # logs greedylr/lr to every Lightning logger
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    model = Classifier()
    trainer.fit(model, DataLoader(data, batch_size=32, shuffle=True))
    print(
        f"final lr {float(trainer.callback_metrics['greedylr/lr']):.3g}, "
        f"train_loss {float(trainer.callback_metrics['train_loss']):.3f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    main(args.devices, args.epochs)
