"""Rule deep_linear_students: deep linear students of a noisy teacher from one kind of init."""

import time

from lossland import io
from lossland.pipeline import jobs
from lossland.pipeline.families import entropy as lentropy

log, _ = jobs.start(snakemake.log[0], threads=snakemake.threads)  # float64 and tiny: always on the CPU
p = snakemake.params.p
began = time.perf_counter()
tables = lentropy.run_students(p, progress=True)
for name, table in tables.items():
    io.write_parquet(table, snakemake.output[name], io.provenance(p))
s = tables["solutions"]
log.info("%s: %d students, Spearman(entropy, generalisation error) %.3f (%.1f s)", p["init"], len(s),
         lentropy.spearman(s["entropy"], s["gen_error"]), time.perf_counter() - began)
