"""Rule landscape_pca_directions: PCA of a run's saved checkpoints (Li et al. Sec. 7)."""

from lossland import io
from lossland.pipeline import jobs
from lossland.pipeline.families import landscape as lland

log, _ = jobs.start(snakemake.log[0], compute=False)
job = snakemake.params.p["job"]
refs = lland.weight_refs(job, trajectory=True)
_, states = lland.load_states(snakemake.input, refs, "cpu")
pca, trajectory = lland.trajectory_pca(job, [states[role] for role, _ in refs], [r["epoch"] for _, r in refs])
io.save_tensors(lland.direction_tensors(pca), snakemake.output.directions)
io.write_parquet(trajectory, snakemake.output.trajectory, io.provenance({"job": job}))
log.info("%s: explained variance ratio %s", job["name"], ", ".join(f"{r:.3f}" for r in pca.explained_variance_ratio))
