"""Studies at scale (docs/SWEEPS.md): an edge like the CLI and the API.

* :mod:`.study`: read and check a study (YAML), expand it into points;
* :mod:`.evaluate`: run a chunk of points through the public API (vectorised estimate groups);
* :mod:`.executors`: where chunks run (this process, a process pool, Ray);
* :mod:`.runner`: chunk, skip what a killed run finished, run, write parts and the manifest;
* :mod:`.store`: the Parquet dataset and its fixed schema;
* :mod:`.query`: DuckDB views, SQL and named summaries.
"""
