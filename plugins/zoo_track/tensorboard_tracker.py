"""The ``tensorboard`` tracker: TensorBoard event files in the run directory.

- every history column (``train_loss``, ``val_loss``, ``val_<metric>``, ``lr``, ``time``, a procedure's
  own columns) as a scalar, step = epoch, flushed after each epoch (``tensorboard --logdir runs`` shows a
  run while it trains);
- the run's config as hyperparameters (the hparams plugin's session start: ``recipe``, ``dataset``,
  ``model.hidden``, ``train.lr``, ...) when the run starts, and at the end its results as scalars
  (``final_val_loss``, ``final_test_accuracy``, ..., ``best_epoch``), which the HPARAMS tab shows beside
  them, with the session's end;
- the run's pictures (``curves.png``, ...) as images at the end.

No experiment summary is written: TensorBoard then builds the hparams table from every run under
``--logdir`` (a summary per run would make it pick one run's columns for all).

A resumed run writes with ``purge_step`` set to the first epoch it sends, so whatever the killed process
wrote after its last checkpoint is discarded by TensorBoard: each epoch appears once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .base import Tracker, config_params, final_metrics, note, pictures, require


class TensorBoardTracker(Tracker):
    """Writes the run's TensorBoard events into ``RUN_DIR/<dir>`` (or ``<dir>/<run name>`` for an absolute
    ``dir``, such as a logdir shared by several projects)."""

    label = "TensorBoard"

    def __init__(self, dir: str = "tensorboard", images: bool = True) -> None:  # noqa: A002 - the parameter's name
        super().__init__()
        require("torch.utils.tensorboard", "tensorboard", self.label)
        self.dir, self.images = dir, images
        self.writer: Any = None
        self.started = False  # the hparams session start is written once per run
        self.path: Path | None = None

    def state(self) -> dict[str, Any]:
        return {"started": self.started}

    def restore(self, state: dict[str, Any]) -> None:
        self.started = bool(state.get("started", False))

    def logdir(self, run_dir: Path) -> Path:
        d = Path(self.dir).expanduser()
        return d / Path(run_dir).name if d.is_absolute() else Path(run_dir) / d

    def open(self, trainer: Any) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = self.logdir(trainer.run_dir)
        # a resumed run: TensorBoard drops what an earlier process wrote from this step on (written after the
        # checkpoint this run continues from, and about to be written again)
        purge = self.sent + 1 if self.sent or trainer.epoch else None
        self.writer = SummaryWriter(log_dir=str(self.path), purge_step=purge, flush_secs=30)
        if not self.started:
            self._write(session_start(trainer.cfg, trainer.run_dir), 0)
            self.started = True
        self.writer.flush()
        root = self.path.parent if Path(self.dir).expanduser().is_absolute() else Path(trainer.run_dir).parent
        note(trainer, f"TensorBoard: events in {self.path} (tensorboard --logdir {root})")

    def log_epoch(self, trainer: Any, row: dict[str, float]) -> None:
        step = int(row["epoch"])
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(key, float(value), global_step=step)
        self.writer.flush()

    def finish(self, trainer: Any, run: Any) -> None:
        step = trainer.epoch
        for key, value in final_metrics(run).items():
            self.writer.add_scalar(key, value, global_step=step)
        if self.images:
            for path in pictures(trainer):
                self._write(image_summary(f"pictures/{path.stem}", path), step)
        self._write(session_end(), step)
        self.writer.flush()

    def abort(self, trainer: Any, exc: BaseException) -> None:
        # no session end: a run that is resumed later ends its session then (TensorBoard keeps the first one)
        self.writer.flush()

    def close(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.close()

    def _write(self, summary: Any, step: int) -> None:
        self.writer._get_file_writer().add_summary(summary, step)


# -- summaries ------------------------------------------------------------------------------


def _hparams_summary(tag: str, data: Any) -> Any:
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.plugins.hparams import metadata

    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME,
                                                                  content=data.SerializeToString()))
    return Summary(value=[Summary.Value(tag=tag, metadata=meta)])


def session_start(cfg: dict[str, Any], run_dir: Path) -> Any:
    """The hparams plugin's session start: the run's config values (numbers, text, booleans)."""
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    info = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time(), group_name=Path(run_dir).name)
    for key, value in config_params(cfg).items():
        if isinstance(value, bool):
            info.hparams[key].bool_value = value
        elif isinstance(value, (int, float)):
            info.hparams[key].number_value = float(value)
        else:
            info.hparams[key].string_value = str(value)
    data = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, session_start_info=info)
    return _hparams_summary(metadata.SESSION_START_INFO_TAG, data)


def session_end() -> Any:
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    info = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS, end_time_secs=time.time())
    data = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, session_end_info=info)
    return _hparams_summary(metadata.SESSION_END_INFO_TAG, data)


def image_summary(tag: str, png: Path) -> Any:
    """A PNG file as an image summary, its bytes as they are (no decoding and re-encoding)."""
    from PIL import Image
    from tensorboard.compat.proto.summary_pb2 import Summary

    data = Path(png).read_bytes()
    with Image.open(png) as img:
        width, height = img.size
        channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}.get(img.mode, 4)
    return Summary(value=[Summary.Value(tag=tag, image=Summary.Image(height=height, width=width, colorspace=channels,
                                                                      encoded_image_string=data))])
