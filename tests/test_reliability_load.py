"""Reliability under load: forecasting from several threads, on a multi-process dask cluster, and
through a worker that dies mid-task gives the serial result exactly, never a corrupted one."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from conftest import make_cf_dataset, tiny_model
from xequi.forecast import forecast

torch.set_num_threads(1)

KW = dict(steps=3, window=16, progress=False, device="cpu")


@pytest.fixture(scope="module")
def setup():
    m = tiny_model("resnet", t_in=2, seed=3, widths=(4, 4))
    ds = make_cf_dataset(nt=10, ny=24, nx=20)
    return m, ds


def _same(a, b):
    for n in ("u", "v"):
        np.testing.assert_array_equal(np.asarray(a[n].values), np.asarray(b[n].values))
    np.testing.assert_array_equal(a.init_time.values, b.init_time.values)


@pytest.mark.timeout(60)
def test_threads_share_one_model(setup):
    m, ds = setup
    inits = list(ds.time.values[1:])
    serial = [forecast(ds, m, init_time=t, **KW) for t in inits]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda t: forecast(ds, m, init_time=t, **KW), inits * 2))
    for i, fc in enumerate(threaded):
        _same(fc, serial[i % len(inits)])


def _die_once(block, marker, parent):
    """Kill the worker process running this the first time (marker file), pass through after.
    Never in the test process itself (dask may call it on empty meta arrays there)."""
    if os.getpid() != parent and block.size and not os.path.exists(marker):
        with open(marker, "w"):
            pass
        os._exit(1)
    return block


@pytest.mark.timeout(120)
def test_local_cluster_and_a_killed_worker(setup, tmp_path):
    distributed = pytest.importorskip("distributed")
    m, ds = setup
    eager = forecast(ds, m, init_time=slice(None, None), **KW)
    marker = str(tmp_path / "died")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=50) as cluster, \
            distributed.Client(cluster) as client:
        lazy = forecast(ds.chunk({"time": 2}), m, init_time=slice(None, None), **KW)
        _same(lazy.compute(), eager)
        # a worker dies in the middle of the run: the scheduler retries the lost tasks
        dying = ds.chunk({"time": 2})
        dying["u"] = dying.u.copy(data=dying.u.data.map_blocks(
            _die_once, marker, os.getpid(), dtype=dying.u.dtype,
            meta=np.array((), dtype=dying.u.dtype)))
        again = forecast(dying, m, init_time=slice(None, None), **KW).compute()
        assert os.path.exists(marker)  # a worker was killed
        _same(again, eager)
        assert len(client.scheduler_info()["workers"]) >= 1
