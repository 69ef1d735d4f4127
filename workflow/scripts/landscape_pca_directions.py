"""Rule landscape_pca_directions: PCA of a run's saved checkpoints (Li et al. Sec. 7)."""

from lossland import io
from lossland import landscape_plan as lplan
from lossland.runtime import setup_logging

log = setup_logging(snakemake.log[0])
job = snakemake.params.p["job"]
refs = lplan.weight_refs(job, trajectory=True)
_, states = lplan.load_states(snakemake.input, refs, "cpu")
pca, trajectory = lplan.trajectory_pca(job, [states[role] for role, _ in refs], [r["epoch"] for _, r in refs])
io.save_tensors(lplan.direction_tensors(pca), snakemake.output.directions)
io.write_parquet(trajectory, snakemake.output.trajectory, io.provenance({"job": job}))
log.info("%s: explained variance ratio %s", job["name"], ", ".join(f"{r:.3f}" for r in pca.explained_variance_ratio))
