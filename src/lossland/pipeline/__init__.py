"""The workflow side of lossland: from a config to checked jobs and tables.

Nothing here imports Snakemake, and nothing here imports torch at import time
(the Snakefile imports this package on every start; table-only jobs import it too):

* :mod:`.config`: the schema (a base plus one fragment per family, merged) and
  the cross-check; one :class:`~.config.ConfigError` listing every problem;
* :mod:`.runs`: training-run specifications, names and the run table;
* :mod:`.paths`: where every artifact lives under ``results/``;
* :mod:`.tables`: identifying columns and gathering tables, one way each;
* :mod:`.jobs`: what every workflow script starts with (log, device, threads)
  and how it finds the weights of a run at an epoch;
* :mod:`.runner`: one training run from its spec to its files;
* :mod:`.families`: the family registry and one module per experiment family.
"""
