"""``deepcac2 train``: train the DeepCAC2 U-Net on generated synthetic series."""

from __future__ import annotations

import argparse
from pathlib import Path

from deepcac2.argtypes import non_negative_float, non_negative_int, positive_float, positive_int
from deepcac2.pipeline.dev.unet_train import TrainConfig, train
from deepcac2.writable import writable_dir


def build_parser(parser: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    parser.add_argument("--out", required=True, help="folder for model.pt and model_card.json")
    parser.add_argument("--seed", type=non_negative_int, default=d.seed)
    parser.add_argument("--train-series", type=positive_int, default=d.train_series)
    parser.add_argument("--val-series", type=non_negative_int, default=d.val_series)
    parser.add_argument("--steps", type=positive_int, default=d.steps)
    parser.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    parser.add_argument("--lr", type=positive_float, default=d.lr)
    parser.add_argument(
        "--features", default=",".join(map(str, d.features)), help="encoder widths, e.g. 64,128,256,512"
    )
    parser.add_argument(
        "--noise", type=non_negative_float, default=d.noise_sd_hu, help="noise SD of the synthetic series (HU)"
    )
    parser.add_argument(
        "--time-limit", type=positive_float, default=d.time_limit_s, help="stop training after this many seconds"
    )
    parser.add_argument("--threads", type=positive_int, default=d.threads)


def main(args: argparse.Namespace) -> int:
    writable_dir(args.out, "the model folder (--out)")  # before minutes of training, not after
    cfg = TrainConfig(
        seed=args.seed,
        train_series=args.train_series,
        val_series=args.val_series,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        features=tuple(int(f) for f in args.features.split(",")),
        noise_sd_hu=args.noise,
        time_limit_s=args.time_limit,
        threads=args.threads,
    )
    report = train(cfg, Path(args.out))
    print(f"model_id {report['model_id']}; validation Dice mean {report['val_dice_mean']}")
    return 0
