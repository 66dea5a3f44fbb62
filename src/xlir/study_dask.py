"""The study's stages on dask.distributed: `xlir study CONFIG --executor dask --scheduler ADDR`
(a running cluster) or `--executor dask-local:N` (a LocalCluster of N worker processes here).

The study is a graph of plain-data stages (xlir.study_plan: train -> retrieve -> fuse; the xQG
generator's training from the start, generation after it, each augmented index after the
generation and the runs of the systems it may augment, the dev choice after the augmented runs
on the select task); each is submitted as one Dask task that depends on the futures of the
stages it reads, with the resources the config gives its kind (`resources: {train: {GPU: 1}}`,
`xqg` for every xQG kind; workers declare theirs, `dask worker --resources GPU=1`).
A worker runs a stage exactly as the serial loop does (`Study.run_stage`): a stage whose
outputs exist is skipped, every output is written atomically, so a stage whose worker was
lost is rerun by Dask from what is on disk (a training stage from its last checkpoint) and
leaves nothing torn. The study folder, XLIR_HOME (prepared models) and the data mirror must be
the same paths on every worker: a shared filesystem (README, "More than one machine").
The client process holds the study folder's lock, writes the bookkeeping files and logs the
progress as the futures complete; workers never write study.json.

This module is imported only when a Dask executor is asked for: the default serial study
imports no Dask.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path

from xlir.config import from_dict, to_dict
from xlir.errors import ConfigError, XlirError
from xlir.study import Stage, Study, StudyConfig
from xlir.study_config import XQG_KINDS

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = "10s"


class _WorkerStudy(Study):
    """The Study as a worker sees it: stages record their progress for the client instead of
    logging it and writing study.json (which the client alone writes)."""

    def __init__(self, config: StudyConfig, out: str | Path):
        super().__init__(config, out)
        self.records: list[tuple[str, str, bool, float]] = []
        self._started = time.time()

    def progress(self, stage: str, target: str, skipped: bool, seconds: float | None = None) -> None:
        now = time.time()
        self.records.append((stage, target, skipped, now - self._started))
        self._started = now

    def _write_status(self, finished: bool) -> None:
        pass


def run_stage(config: dict, root: str, stage: Stage, *inputs) -> list[tuple[str, str, bool, float]]:
    """The Dask task of one stage (`inputs`: the futures of its dependencies, resolved by Dask
    before it starts; only their completion matters). -> (kind, target, skipped, seconds) of
    every stage it ran (the xqg stage reports its generator, questions and each index)."""
    if not logging.getLogger("xlir").handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            datefmt="%H:%M:%S")
    study = _WorkerStudy(from_dict(StudyConfig, config), root)
    study.run_stage(stage)
    return study.records


def _resources(config: dict[str, dict[str, float]], kind: str) -> dict[str, float] | None:
    """What a stage of `kind` asks of its worker: resources.<kind>, else for an xQG stage
    resources.xqg (every xQG kind)."""
    return config.get(kind) or (config.get("xqg") if kind in XQG_KINDS else None) or None


class DaskExecutor:
    """Submits a study's stages to a Dask cluster: a scheduler `address`, or a LocalCluster of
    `local_workers` processes started here (each given cores // N torch threads)."""

    def __init__(self, address: str | None = None, local_workers: int | None = None):
        if (address is None) == (local_workers is None):
            raise ConfigError("a Dask executor needs a scheduler address or a local worker count")
        if local_workers is not None and local_workers < 1:
            raise ConfigError(f"--executor dask-local:N needs N >= 1, got {local_workers}")
        self.address, self.local_workers = address, local_workers
        self.client = self.cluster = None

    @classmethod
    def from_cli(cls, executor: str, scheduler: str | None) -> DaskExecutor | None:
        """`serial` -> None; `dask` (with --scheduler); `dask-local:N`."""
        if executor == "serial":
            if scheduler:
                raise ConfigError("--scheduler needs --executor dask")
            return None
        if executor == "dask":
            if not scheduler:
                raise ConfigError("--executor dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
            return cls(address=scheduler)
        name, _, n = executor.partition(":")
        if name == "dask-local" and n.isdigit() and not scheduler:
            return cls(local_workers=int(n))
        raise ConfigError(f"--executor {executor!r}: expected serial, dask (with --scheduler) "
                          "or dask-local:N")

    def connect(self, resources: dict[str, dict[str, float]] | None = None) -> DaskExecutor:
        """Connect (or start the local cluster) before anything of the study is written: an
        unreachable scheduler is one error naming it, and nothing else starts."""
        import dask
        from distributed import Client, LocalCluster

        if self.address is not None:
            try:
                self.client = Client(self.address, timeout=CONNECT_TIMEOUT)
            except Exception as e:  # OSError, TimeoutError, ValueError for a malformed address
                reason = " ".join(str(e).split()) or type(e).__name__
                raise XlirError(f"--scheduler {self.address}: cannot reach the Dask scheduler "
                                f"({reason})") from None
            return self
        threads = max(1, (os.cpu_count() or 1) // self.local_workers)
        declared: dict[str, float] = {}  # each worker can hold any one stage's resources
        for need in (resources or {}).values():
            for name, amount in need.items():
                declared[name] = max(declared.get(name, 0), amount)
        environ = {f"distributed.nanny.pre-spawn-environ.{k}": threads
                   for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        with dask.config.set(environ):
            self.cluster = LocalCluster(n_workers=self.local_workers, threads_per_worker=1,
                                        processes=True, dashboard_address=None,
                                        resources=declared or None)
        self.client = Client(self.cluster)
        return self

    def run(self, study: Study) -> None:
        """Submit every stage with its dependencies; log progress as they finish. The first
        stage that fails cancels the rest and raises its error (outputs already written stay:
        the same command resumes)."""
        from distributed import as_completed

        if self.client is None:
            self.connect(study.config.resources)
        config, root = to_dict(study.config), str(Path(study.root).resolve())
        study.workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        run_id = uuid.uuid4().hex[:8]
        futures: dict[str, object] = {}
        for stage in study.stages():
            futures[stage.key] = self.client.submit(
                run_stage, config, root, stage, *[futures[d] for d in stage.deps],
                key=f"xlir-{run_id}-{stage.key}", pure=False,
                resources=_resources(study.config.resources, stage.kind))
        log.info("submitted %d stages to %d Dask workers", len(futures), study.workers)
        try:
            for future in as_completed(list(futures.values())):
                for kind, target, skipped, seconds in future.result():
                    study.progress(kind, target, skipped, seconds)
        except BaseException:
            self.client.cancel(list(futures.values()))
            raise

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None
