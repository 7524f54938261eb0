"""`starsort sort SRC --scheduler tcp://HOST:8786`: the analysis of an archive spread over
machines, through Dask's distributed scheduler. Optional: `pip install 'starsort[cluster]'`.

    pool.py   on the coordinator (the machine running `sort`): a `Pool` with the local
              pool's interface, so the service's loop, the one SQLite writer, bursts,
              filing, its journal and XMP are exactly the local ones
    task.py   on each Dask worker: the analysis stages, their models loaded once per worker
              process by a worker plugin, a photo read through the path map
"""
